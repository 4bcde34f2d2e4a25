// Package statusview is the admin UI's read model of provisioning: the status page's view model
// (one query per poll), its in-memory cache fed by the database's change announcements, and the
// dashboard's attention list. It only reads; every change goes through package provision, which
// does not know this package.
package statusview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// ServerNamer names a subscription's server (and SSH key) in Hetzner; [provision.Service] does,
// reading the installation ID once per process.
type ServerNamer interface {
	ServerName(ctx context.Context, subscriptionID int64) (string, error)
}

// Reader serves the UI's read model. It reads the database directly (one query per status page),
// keeps polled rows in memory while [Reader.ListenForChanges] runs, and never writes.
type Reader struct {
	pool  *pgxpool.Pool
	q     *db.Queries
	names ServerNamer
	log   *slog.Logger
	// statuses caches the polled status rows while ListenForChanges runs.
	statuses *statusCache
}

// New returns a reader over pool; names gives the servers' names (the provisioning service).
// Without ListenForChanges running, every poll reads the database.
func New(pool *pgxpool.Pool, names ServerNamer, log *slog.Logger) *Reader {
	if log == nil {
		log = slog.Default()
	}
	return &Reader{pool: pool, q: db.New(), names: names, log: log, statuses: newStatusCache()}
}

// Status is everything the status page shows about one subscription's VPS. It holds no secret.
type Status struct {
	SubscriptionID int64
	// ServerName is the name of the subscription's server and SSH key in Hetzner (with the
	// installation ID): what an admin types to confirm Destroy.
	ServerName    string
	CustomerID    int64
	CustomerEmail string
	CustomerName  string
	Plan          string
	BillingStatus string

	// State is the provisioning status; "" when never provisioned.
	State         string
	FailedStep    string
	Error         string
	StepStartedAt *time.Time

	Hostname           string
	IPv4               string
	ServerID           *int64
	SSHKeyID           *int64
	HostKeyFingerprint string // SHA256 fingerprint of the pinned host key
	ProvisionedAt      *time.Time
	DeprovisionedAt    *time.Time

	// Server is what server the subscription actually got (nil before one was created).
	Server *ServerFacts
	// Project is the Hetzner project the subscription's server lives in ("" before placement).
	Project string
	// LimitWait says, while the creating step waits for Hetzner's server limit, how it waits.
	LimitWait string

	Steps   []StepView
	Events  []EventView
	Actions []ActionView
	Receipt *Receipt

	Allowed Allowed
	// Stuck is set when the current step runs longer than it normally takes.
	Stuck *Stuck
	// Terminal means nothing will change without an admin (ready, failed, destroyed, never
	// provisioned): the page can stop polling.
	Terminal bool
}

// ServerFacts is the server a subscription got: type, location, image and the catalog's net
// monthly price in EUR (nil when the catalog had none).
type ServerFacts struct {
	Type, Location, Image string
	PriceMonthly          *float64
}

// serverFacts builds the facts from their columns; nil when no server type was recorded.
func serverFacts(typ, loc, image *string, price pgtype.Numeric) *ServerFacts {
	if typ == nil {
		return nil
	}
	f := &ServerFacts{Type: *typ}
	if loc != nil {
		f.Location = *loc
	}
	if image != nil {
		f.Image = *image
	}
	if price.Valid {
		if v, err := price.Float64Value(); err == nil && v.Valid {
			f.PriceMonthly = &v.Float64
		}
	}
	return f
}

// StepView is one row of the steps timeline.
type StepView struct {
	Step     string
	Started  *time.Time
	Duration time.Duration // so far, for the current step
	State    string        // "done", "current", "failed" or "todo"
}

// EventView is one provisioning event.
type EventView struct {
	At      time.Time
	Step    string
	Kind    string // entered, info, error, completed
	Message string
	Actor   string
}

// ActionView is a Hetzner action of the subscription.
type ActionView struct {
	ID       int64
	Command  string
	Status   string
	Progress int
	Error    string
	Started  time.Time
}

// Receipt is what the last secret injection wrote: paths and hashes, never the secrets. Its
// files are in the format the injection step records them.
type Receipt struct {
	WrittenAt time.Time
	Files     []provision.ReceiptFile
}

// Allowed says which buttons the page offers: the transition table's admin actions that move the
// subscription's state ([state.Allowed]).
type Allowed = state.Actions

// Stuck says how long the current step overran and what an admin can do.
type Stuck struct {
	Over time.Duration
	Hint string
}

// stepOrder is the happy path, for the timeline.
var stepOrder = state.Path

// stuckHints say, for each step that can be stuck (one with a [provision.ExpectedDuration]), what
// an admin can check or do once it overran.
var stuckHints = map[db.ProvisioningStatus]string{
	db.ProvisioningStatusPending:          "No worker has picked the job up: check that a worker process runs (Procfile `worker`).",
	db.ProvisioningStatusCreating:         "Hetzner is slow to create the server, or the worker cannot reach Hetzner: check the worker's log and the rate limit. Destroy stops it.",
	db.ProvisioningStatusCloudInit:        "The VPS has not called back yet: cloud-init may still be installing packages, or the VPS cannot reach PUBLIC_BASE_URL. It fails by itself at the callback deadline.",
	db.ProvisioningStatusInjectingSecrets: "The worker cannot finish the SSH injection (sshd not answering?). It fails by itself at the injection deadline; Retry then.",
	db.ProvisioningStatusDestroying:       "Hetzner is slow to delete the server, or the worker cannot reach Hetzner: check the worker's log.",
}

// Status returns the status page's view model from a single query: every open status page polls
// it every 2 s, so it costs one round trip.
func (s *Reader) Status(ctx context.Context, subscriptionID int64) (*Status, error) {
	row, err := s.statusRow(ctx, subscriptionID)
	if err != nil {
		return nil, err
	}
	return s.named(ctx)(statusFromRow(row, time.Now()))
}

// named fills in the server name (the installation ID is read once per process).
func (s *Reader) named(ctx context.Context) func(*Status, error) (*Status, error) {
	return func(st *Status, err error) (*Status, error) {
		if err != nil {
			return nil, err
		}
		if st.ServerName, err = s.names.ServerName(ctx, st.SubscriptionID); err != nil {
			return nil, err
		}
		return st, nil
	}
}

func (s *Reader) statusRow(ctx context.Context, subscriptionID int64) (db.UIStatusGetRow, error) {
	row, err := s.q.UIStatusGet(ctx, s.pool, subscriptionID)
	if errors.Is(err, db.ErrNotFound) {
		return row, fmt.Errorf("subscription %d: %w", subscriptionID, db.ErrNotFound)
	}
	if err != nil {
		return row, fmt.Errorf("read status of subscription %d: %w", subscriptionID, err)
	}
	return row, nil
}

// statusFromRow builds the view model; durations and "stuck" are measured at now.
func statusFromRow(row db.UIStatusGetRow, now time.Time) (*Status, error) {
	p, err := parseStatus(row)
	if err != nil {
		return nil, err
	}
	return p.at(now), nil
}

// parsedStatus is a status row decoded once (its events, actions and receipt, the host key's
// fingerprint): everything the page shows except what is measured at each poll. The polled
// fragment keeps it in memory, so a poll that finds nothing changed decodes nothing.
type parsedStatus struct {
	sub    db.Subscription
	base   Status // without Steps, Allowed, Terminal and Stuck
	events []db.ProvisioningEvent
}

// at is the status as it stands at now: the step durations and whether the current step
// overran. The slices of the result are shared with p and every other result; they are read only.
func (p *parsedStatus) at(now time.Time) *Status {
	st := p.base
	st.Steps = timeline(p.sub, p.events, now)
	deriveActions(&st, p.sub, now)
	return &st
}

// parseStatus decodes a status row.
func parseStatus(row db.UIStatusGetRow) (*parsedStatus, error) {
	sub := db.Subscription{
		ID: row.ID, CustomerID: row.CustomerID, Plan: row.Plan, BillingStatus: row.BillingStatus,
		HetznerServerID: row.HetznerServerID, HetznerSshKeyID: row.HetznerSshKeyID, VpsIpAddress: row.VpsIpAddress,
		VpsHostname: row.VpsHostname, ProvisioningStatus: row.ProvisioningStatus, ProvisioningError: row.ProvisioningError,
		ProvisionedAt: row.ProvisionedAt, DeprovisionedAt: row.DeprovisionedAt, SshHostKeyPublic: row.SshHostKeyPublic,
		FailedStep: row.FailedStep, StepStartedAt: row.StepStartedAt,
	}
	st := &Status{
		SubscriptionID: sub.ID, CustomerID: sub.CustomerID, CustomerEmail: row.CustomerEmail,
		CustomerName: row.CustomerName, Plan: sub.Plan, BillingStatus: sub.BillingStatus,
		State: string(statusOf(sub)), StepStartedAt: sub.StepStartedAt, ServerID: sub.HetznerServerID,
		SSHKeyID: sub.HetznerSshKeyID, ProvisionedAt: sub.ProvisionedAt, DeprovisionedAt: sub.DeprovisionedAt,
	}
	if sub.FailedStep != nil {
		st.FailedStep = string(*sub.FailedStep)
	}
	if sub.ProvisioningError != nil {
		st.Error = *sub.ProvisioningError
	}
	if sub.VpsHostname != nil {
		st.Hostname = *sub.VpsHostname
	}
	if sub.VpsIpAddress != nil {
		st.IPv4 = sub.VpsIpAddress.String()
	}
	if sub.SshHostKeyPublic != nil {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*sub.SshHostKeyPublic)); err == nil {
			st.HostKeyFingerprint = ssh.FingerprintSHA256(pk)
		}
	}

	var events []struct {
		At      time.Time             `json:"at"`
		Step    db.ProvisioningStatus `json:"step"`
		Kind    string                `json:"kind"`
		Message string                `json:"message"`
		Actor   string                `json:"actor"`
	}
	if err := json.Unmarshal(row.Events, &events); err != nil {
		return nil, fmt.Errorf("decode events of subscription %d: %w", sub.ID, err)
	}
	dbEvents := make([]db.ProvisioningEvent, 0, len(events))
	for _, e := range events {
		st.Events = append(st.Events, EventView{At: e.At, Step: string(e.Step), Kind: e.Kind, Message: e.Message, Actor: e.Actor})
		dbEvents = append(dbEvents, db.ProvisioningEvent{SubscriptionID: sub.ID, OccurredAt: e.At, Step: e.Step, Kind: e.Kind, Message: e.Message, Actor: e.Actor})
	}
	st.Server = serverFacts(row.ServerType, row.ServerLocation, row.ServerImage, row.ServerPriceMonthly)
	if row.HetznerProject != nil {
		st.Project = *row.HetznerProject
	}
	if row.LimitWaitSince != nil && statusOf(sub) == db.ProvisioningStatusCreating {
		st.LimitWait = provision.LimitWaitPrefix + "."
		for _, e := range st.Events {
			if strings.HasPrefix(e.Message, provision.LimitWaitPrefix) {
				st.LimitWait = e.Message
			}
		}
	}

	var actions []struct {
		ID        int64     `json:"id"`
		Command   string    `json:"command"`
		Status    string    `json:"status"`
		Progress  int       `json:"progress"`
		Error     *string   `json:"error"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(row.Actions, &actions); err != nil {
		return nil, fmt.Errorf("decode actions of subscription %d: %w", sub.ID, err)
	}
	for _, a := range actions {
		av := ActionView{ID: a.ID, Command: a.Command, Status: a.Status, Progress: a.Progress, Started: a.CreatedAt}
		if a.Error != nil {
			av.Error = *a.Error
		}
		st.Actions = append(st.Actions, av)
	}

	if len(row.Receipt) > 0 {
		var rc struct {
			WrittenAt time.Time               `json:"written_at"`
			Files     []provision.ReceiptFile `json:"files"`
		}
		if err := json.Unmarshal(row.Receipt, &rc); err != nil {
			return nil, fmt.Errorf("decode receipt of subscription %d: %w", sub.ID, err)
		}
		st.Receipt = &Receipt{WrittenAt: rc.WrittenAt, Files: rc.Files}
	}
	return &parsedStatus{sub: sub, base: *st, events: dbEvents}, nil
}

// deriveActions fills what the page may offer, whether it can stop polling, and whether the
// current step overran.
func deriveActions(st *Status, sub db.Subscription, now time.Time) {
	cur := statusOf(sub)
	st.Allowed = state.Allowed(cur, sub.HetznerServerID != nil)
	st.Terminal = state.Terminal(cur)
	if hint, ok := stuckHints[cur]; ok && sub.StepStartedAt != nil && st.LimitWait == "" {
		if over := now.Sub(*sub.StepStartedAt) - provision.ExpectedDuration(cur); over > 0 {
			st.Stuck = &Stuck{Over: over.Round(time.Second), Hint: hint}
		}
	}
}

// timeline lays the latest run's events over the happy path.
func timeline(sub db.Subscription, events []db.ProvisioningEvent, now time.Time) []StepView {
	// The latest run starts at the last "entered pending".
	start := 0
	for i, e := range events {
		if e.Kind == "entered" && e.Step == db.ProvisioningStatusPending {
			start = i
		}
	}
	entered := map[db.ProvisioningStatus]time.Time{}
	for _, e := range events[start:] {
		if e.Kind == "entered" {
			entered[e.Step] = e.OccurredAt
		}
	}
	cur := statusOf(sub)
	failedAt := db.ProvisioningStatus("")
	if cur == db.ProvisioningStatusFailed && sub.FailedStep != nil {
		failedAt = *sub.FailedStep
	}
	out := make([]StepView, 0, len(stepOrder))
	reached := true
	for i, step := range stepOrder {
		v := StepView{Step: string(step), State: "todo"}
		if t, ok := entered[step]; ok {
			t := t
			v.Started = &t
			end := now
			if i+1 < len(stepOrder) {
				if nt, ok := entered[stepOrder[i+1]]; ok && !nt.Before(t) {
					end = nt
				}
			}
			if step != db.ProvisioningStatusReady {
				v.Duration = end.Sub(t)
			}
		}
		switch {
		case step == failedAt:
			v.State = "failed"
			reached = false
		case step == cur:
			v.State = "current"
			if step == db.ProvisioningStatusReady {
				v.State = "done"
			}
			reached = false
		case reached && v.Started != nil:
			v.State = "done"
		}
		out = append(out, v)
	}
	return out
}

// statusOf is the subscription's provisioning state; "" when never provisioned.
func statusOf(s db.Subscription) db.ProvisioningStatus {
	if s.ProvisioningStatus == nil {
		return ""
	}
	return *s.ProvisioningStatus
}
