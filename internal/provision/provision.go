// Package provision creates, watches, repairs and destroys the subscribers' Hetzner VPSes.
//
// The state of every provisioning lives in PostgreSQL (subscriptions.provisioning_status and the
// tables around it); River jobs in the same database move it forward:
//
//	pending → creating → cloud_init → injecting_secrets → ready
//	any     → destroying → destroyed          failed (keeps failed_step) → Retry resumes there
//
// Package state holds the transition table: every move is defined there, nowhere else.
//
// One step job per subscription runs at a time (River unique jobs). A step records what it created
// before it waits on anything, so a worker killed at any instant is replaced without a second
// server or a leaked key. Waiting costs no goroutine: the action poller ([Worker]) reads every
// in-flight Hetzner action of every subscription in batched requests and wakes the job when its
// actions are done; the VPS's callback ([Service.HandleCallback]) wakes it after cloud-init.
//
// [Service] is what the web layer calls; [Worker] runs the jobs.
package provision

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/db"
)

// Labels and names of what the service creates in Hetzner.
const (
	LabelManagedBy      = "managed-by"
	LabelManagedByValue = "rachel-cloud"
	LabelSubscription   = "subscription"
	// LabelInstallation carries the installation ID (generated once, stored in the database):
	// nothing without this installation's ID is ever adopted, deleted or reported by it.
	LabelInstallation = "installation"
	// LabelTag carries the subscription's own random tag: after a restore that rolled the ID
	// sequence back, a server of an earlier subscription with the same ID is not this one's.
	LabelTag = "subscription-tag"
)

// ServerName is the deterministic RFC 1123 name of a subscription's server (and of its SSH key),
// so that a repeated create meets uniqueness_error instead of making a second server. It carries
// the installation ID, so installations sharing a Hetzner project never meet on a name; at most
// 7+12+5+19 = 43 characters, one DNS label.
func ServerName(installation string, subscriptionID int64) string {
	return fmt.Sprintf("rachel-%s-sub-%d", installation, subscriptionID)
}

// FirewallName is the installation's one shared firewall admitting inbound SSH only.
func FirewallName(installation string) string { return "rachel-" + installation + "-ssh-only" }

// Actor is who pressed the button, for the audit log and the event timeline.
type Actor = audit.Actor

// actorLabel names the actor in the event timeline.
func actorLabel(a Actor) string {
	if a.Email == "" {
		return "admin"
	}
	return a.Email
}

// ErrInvalidState means the action is not allowed in the subscription's current state.
var ErrInvalidState = errors.New("action not allowed in the current provisioning state")

// ErrCallbackRejected means a VPS callback was wrong in some way; the handler answers 404.
var ErrCallbackRejected = errors.New("callback rejected")

// Actors recorded by the system itself in the event timeline.
const (
	actorWorker   = "worker"
	actorVPS      = "vps"
	actorDeadline = "deadline"
)

// Timings are the intervals of the worker's loops; tests shrink them together with the
// simulator's time scale.
type Timings struct {
	// PollMin and PollMax bound the action poller's backoff while nothing changes.
	PollMin, PollMax time.Duration
	// Sweep is how often each worker checks deadlines, wakes subscriptions whose job went
	// missing, and rescues jobs of dead workers.
	Sweep time.Duration
	// Retry is the base of the exponential backoff of a step that met a transient error.
	Retry time.Duration
	// InjectRetry is the pause between SSH attempts while the VPS's sshd comes up.
	InjectRetry time.Duration
	// Reconcile is the period of the reconciler.
	Reconcile time.Duration
	// FetchPoll is how often River looks for jobs besides its notifications.
	FetchPoll time.Duration
	// JobTimeout bounds one run of a step job.
	JobTimeout time.Duration
	// SSHTimeout bounds dialing and the handshake with a VPS.
	SSHTimeout time.Duration
	// CallbackGrace is how long after cloud-init finished (its last_update, seen over SSH) the
	// worker still waits for the VPS's own callback before it goes on without it.
	CallbackGrace time.Duration
	// SSHCommand bounds one command on a VPS (0: 60 s). A VPS that stalls has its connection
	// closed then.
	SSHCommand time.Duration
	// SSHKeepalive is the interval of keepalive requests on an SSH connection, and how long an
	// answer may take before the connection is closed as dead (0: 15 s).
	SSHKeepalive time.Duration
}

// withDefaults fills the durations a caller left zero.
func (t Timings) withDefaults() Timings {
	if t.SSHCommand <= 0 {
		t.SSHCommand = time.Minute
	}
	if t.SSHKeepalive <= 0 {
		t.SSHKeepalive = 15 * time.Second
	}
	if t.SSHTimeout <= 0 {
		t.SSHTimeout = 10 * time.Second
	}
	return t
}

// DefaultTimings suit real Hetzner.
func DefaultTimings() Timings {
	return Timings{
		PollMin: time.Second, PollMax: 10 * time.Second, Sweep: 2 * time.Second, Retry: time.Second,
		InjectRetry: 2 * time.Second, Reconcile: 10 * time.Minute, FetchPoll: time.Second,
		JobTimeout: 2 * time.Minute, SSHTimeout: 10 * time.Second,
		// phone_home posts at once and retries every 3 s; a callback not here after a few tries
		// is lost or rejected.
		CallbackGrace: 15 * time.Second,
	}.withDefaults()
}

// Option configures a [Service] or a [Worker].
type Option func(*options)

type options struct {
	jobs     []Jobs
	log      *slog.Logger
	hc       *hcloud.Client
	rl       *RateLimitTracker
	projects []HCloudProject
	timings  Timings
	registry prometheus.Registerer
	hook     func(point string)
}

func buildOptions(opts []Option) options {
	o := options{timings: DefaultTimings()}
	for _, f := range opts {
		f(&o)
	}
	o.timings = o.timings.withDefaults()
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.hook == nil {
		o.hook = func(string) {}
	}
	return o
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithHCloudClient sets the Hetzner client of the first configured project (default:
// [NewHCloudClient] from the configuration), with the tracker that its transport feeds (may be
// nil). [WithHCloudProject] sets any project's.
func WithHCloudClient(c *hcloud.Client, rl *RateLimitTracker) Option {
	return func(o *options) { o.hc, o.rl = c, rl }
}

// WithTimings replaces [DefaultTimings].
func WithTimings(t Timings) Option { return func(o *options) { o.timings = t } }

// WithRegistry registers the worker's metrics (and hcloud-go's instrumentation) there.
func WithRegistry(r prometheus.Registerer) Option { return func(o *options) { o.registry = r } }

// Jobs are another package's River workers, queues and periodic jobs, run by the provisioning
// worker's River client: one client per process keeps one leader for every periodic job.
type Jobs struct {
	Register func(*river.Workers) error
	Queues   map[string]river.QueueConfig
	Periodic []*river.PeriodicJob
}

// WithJobs adds j to the worker's River client (notifications, billing policy, health checks).
func WithJobs(j Jobs) Option { return func(o *options) { o.jobs = append(o.jobs, j) } }

// ExpectedDuration is how long step st normally takes; beyond it the step counts as stuck
// (status page, dashboard, notifications). Zero for states that are not steps.
func ExpectedDuration(st db.ProvisioningStatus) time.Duration { return expectedDurations[st] }

// expectedDurations are how long each step normally takes.
var expectedDurations = map[db.ProvisioningStatus]time.Duration{
	db.ProvisioningStatusPending:          time.Minute,
	db.ProvisioningStatusCreating:         3 * time.Minute,
	db.ProvisioningStatusCloudInit:        5 * time.Minute,
	db.ProvisioningStatusInjectingSecrets: 2 * time.Minute,
	db.ProvisioningStatusDestroying:       3 * time.Minute,
}

// WithHook calls fn at named points of the steps; the crash-safety test blocks there to be killed.
func WithHook(fn func(point string)) Option { return func(o *options) { o.hook = fn } }

// status helpers

func statusOf(s db.Subscription) db.ProvisioningStatus {
	if s.ProvisioningStatus == nil {
		return ""
	}
	return *s.ProvisioningStatus
}
