// Package notify tells the operators about incidents — a provisioning failed or stuck, drift
// found by the reconciler, preflight failing, an assistant down, the server limit reached, a
// billing destroy due — by email (SMTP) and by a signed webhook.
//
// An incident is a row in notify_incidents, open while its condition holds and keyed so that
// seeing it again changes nothing. Opening and resolving it each record an event. A periodic job
// detects the conditions ([Notifier.Scan]) and coalesces the waiting events into messages
// ([Notifier.Dispatch]): the events of one window go out as one message, a digest when there are
// several, so fifty failures at once make one email, not fifty. Every message is delivered to
// every channel by its own River job, retried with backoff; its outcome is kept for the settings
// page. Everything is in PostgreSQL, so nothing is lost when a process dies.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
)

// Kind is what an incident is about.
type Kind string

// The incident kinds (notify_incidents.kind).
const (
	KindProvisionFailed    Kind = "provision_failed"
	KindProvisionStuck     Kind = "provision_stuck"
	KindOrphan             Kind = "orphan"
	KindGhost              Kind = "ghost"
	KindPreflightFailing   Kind = "preflight_failing"
	KindAssistantDown      Kind = "assistant_down"
	KindServerLimit        Kind = "server_limit"
	KindBillingDestroySoon Kind = "billing_destroy_soon"
)

// titles name each kind in messages.
var titles = map[Kind]string{
	KindProvisionFailed:    "Provisioning failed",
	KindProvisionStuck:     "Provisioning stuck",
	KindOrphan:             "Orphan server in Hetzner",
	KindGhost:              "Server gone from Hetzner",
	KindPreflightFailing:   "Preflight failing",
	KindAssistantDown:      "Assistant down",
	KindServerLimit:        "Server limit reached",
	KindBillingDestroySoon: "Billing destroy due within a day",
}

// Condition is an incident's condition as a detector sees it now.
type Condition struct {
	Key            string // unique while open, e.g. "provision_failed:42"
	Kind           Kind
	SubscriptionID *int64
	Summary        string // one line for people; scrubbed of secrets before it is stored
}

// Options adjust a [Notifier]; tests set the clock and a short retry.
type Options struct {
	Clock      func() time.Time // default time.Now
	RetryBase  time.Duration    // first retry delay of a failed delivery (default 30 s, doubling)
	Tick       time.Duration    // period of the detect-and-dispatch job (default 15 s)
	Log        *slog.Logger
	HTTPClient *http.Client
	// ScanBatch bounds what one scan does per detector: it opens at most this many incidents and
	// resolves at most this many (default [DefaultScanBatch]); the rest follow at the next scans.
	// Tests set a small one to show a condition list longer than a batch is handled right.
	ScanBatch int
}

// Notifier raises and resolves incidents and sends their messages.
type Notifier struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	cfg     *config.Config
	river   *river.Client[pgx.Tx] // insert-only
	o       Options
	scrub   *scrubber
	channel map[string]sender
}

// DefaultScanBatch is [Options.ScanBatch]'s default: at 100,000 subscriptions with 5% failed,
// the 5,000 failures are all open after five scans (about a minute), each scan one INSERT of a
// thousand rows rather than five thousand round trips in one transaction.
const DefaultScanBatch = 1000

// maxAttempts bounds the deliveries of one message to one channel (about a day with the default
// backoff capped at 4 h).
const maxAttempts = 12

// Queue is the River queue of notification jobs.
const Queue = "notify"

// New returns a notifier for the channels configured in cfg (none is fine: messages are then
// recorded but not sent).
func New(pool *pgxpool.Pool, cfg *config.Config, o Options) (*Notifier, error) {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 30 * time.Second
	}
	if o.Tick <= 0 {
		o.Tick = 15 * time.Second
	}
	if o.ScanBatch <= 0 {
		o.ScanBatch = DefaultScanBatch
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: o.Log})
	if err != nil {
		return nil, fmt.Errorf("notify: river client: %w", err)
	}
	n := &Notifier{pool: pool, q: db.New(), cfg: cfg, river: rc, o: o, scrub: newScrubber(cfg),
		channel: map[string]sender{}}
	if cfg.NotifySMTP != nil {
		n.channel[ChannelEmail] = &emailSender{s: cfg.NotifySMTP}
	}
	if !cfg.NotifyWebhookURL.IsZero() {
		n.channel[ChannelWebhook] = &webhookSender{url: cfg.NotifyWebhookURL, secret: cfg.NotifyWebhookSecret,
			client: o.HTTPClient, now: o.Clock}
	}
	return n, nil
}

func (n *Notifier) now() time.Time { return n.o.Clock() }

// Sync makes the open incidents of kind exactly current: opens those not open yet and resolves
// the open ones whose condition no longer holds. Detectors that see the whole picture of a small
// kind use it (a large one opens and resolves in batches, as [Notifier.Scan]'s do).
func (n *Notifier) Sync(ctx context.Context, kind Kind, current []Condition) error {
	return inTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.openBatch(ctx, tx, kind, current); err != nil {
			return err
		}
		keys := make([]string, 0, len(current)) // never nil: NULL would resolve nothing
		for _, c := range current {
			keys = append(keys, c.Key)
		}
		if _, err := n.q.NotifyIncidentResolveAbsent(ctx, tx, db.NotifyIncidentResolveAbsentParams{
			Now: n.now(), Kind: string(kind), Keys: keys}); err != nil {
			return fmt.Errorf("notify: resolve %s incidents: %w", kind, err)
		}
		return nil
	})
}

// OpenBatch opens, in dbtx, the incidents of conds (all of kind) that are not open yet, in one
// statement, recording an "opened" event each; it returns how many it opened. A detector of a kind
// that grows with the fleet (billing, health) opens a bounded batch of its unnotified conditions
// per run with it and resolves with [Notifier.ResolveIDs], rather than [Notifier.Sync] a list
// that a limit could cut short.
func (n *Notifier) OpenBatch(ctx context.Context, dbtx db.DBTX, kind Kind, conds []Condition) (int, error) {
	return n.openBatch(ctx, dbtx, kind, conds)
}

// ResolveIDs resolves, in dbtx, the open incidents of kind among ids (their detector found the
// condition gone), in one statement, recording a "resolved" event each; it returns how many.
func (n *Notifier) ResolveIDs(ctx context.Context, dbtx db.DBTX, kind Kind, ids []int64) (int, error) {
	if _, ok := titles[kind]; !ok {
		return 0, fmt.Errorf("notify: unknown incident kind %q", kind)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	done, err := n.q.NotifyIncidentResolveIDs(ctx, dbtx, db.NotifyIncidentResolveIDsParams{Now: n.now(), Ids: ids, Kind: string(kind)})
	if err != nil {
		return 0, fmt.Errorf("notify: resolve %d %s incident(s): %w", len(ids), kind, err)
	}
	return len(done), nil
}

// openBatch opens the incidents of conds (all of kind, whatever their Kind says) that are not open
// yet, in one statement, recording an "opened" event each in the order given; a key given twice
// counts once. It returns how many it opened.
func (n *Notifier) openBatch(ctx context.Context, dbtx db.DBTX, kind Kind, conds []Condition) (int, error) {
	if _, ok := titles[kind]; !ok {
		return 0, fmt.Errorf("notify: unknown incident kind %q", kind)
	}
	if len(conds) == 0 {
		return 0, nil
	}
	p := db.NotifyIncidentOpenBatchParams{Now: n.now(), Kind: string(kind), Keys: make([]string, 0, len(conds)),
		SubscriptionIds: make([]int64, 0, len(conds)), Summaries: make([]string, 0, len(conds))}
	seen := make(map[string]bool, len(conds))
	for _, c := range conds {
		if seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		var sub int64 // 0: none (IDs start at 1)
		if c.SubscriptionID != nil {
			sub = *c.SubscriptionID
		}
		p.Keys, p.SubscriptionIds, p.Summaries = append(p.Keys, c.Key), append(p.SubscriptionIds, sub), append(p.Summaries, n.scrub.clean(c.Summary))
	}
	ids, err := n.q.NotifyIncidentOpenBatch(ctx, dbtx, p)
	if err != nil {
		return 0, fmt.Errorf("notify: open %d %s incident(s): %w", len(p.Keys), kind, err)
	}
	return len(ids), nil
}

// SendTest sends a test message to every channel, audited.
func (n *Notifier) SendTest(ctx context.Context, actor audit.Actor) error {
	if len(n.channel) == 0 {
		return ErrNoChannel
	}
	subject := "[Rachel Cloud] Test notification"
	body := fmt.Sprintf("A test sent by %s from the notification settings at %s.\n%s/settings/notifications",
		actor.Email, n.now().UTC().Format(time.RFC1123), n.cfg.PublicBaseURL)
	return inTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.enqueueMessage(ctx, tx, "test", subject, body, 0); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "notify.test", Detail: "Test notification to " + n.channelList()})
	})
}

// ErrNoChannel means no notification channel is configured.
var ErrNoChannel = errors.New("no notification channel is configured (NOTIFY_SMTP_URL, NOTIFY_WEBHOOK_URL)")

// enqueueMessage stores a message and a delivery job per channel, in tx.
func (n *Notifier) enqueueMessage(ctx context.Context, tx pgx.Tx, kind, subject, body string, events int) (int64, error) {
	subject, body = n.scrub.clean(subject), n.scrub.clean(body)
	id, err := n.q.NotifyMessageInsert(ctx, tx, db.NotifyMessageInsertParams{Now: n.now(), Kind: kind,
		Subject: subject, Body: body, EventCount: int32(events)})
	if err != nil {
		return 0, fmt.Errorf("notify: store message: %w", err)
	}
	for _, ch := range channelOrder {
		if _, ok := n.channel[ch]; !ok {
			continue
		}
		did, err := n.q.NotifyDeliveryInsert(ctx, tx, db.NotifyDeliveryInsertParams{MessageID: id, Channel: ch})
		if err != nil {
			return 0, fmt.Errorf("notify: store delivery: %w", err)
		}
		if _, err := n.river.InsertTx(ctx, tx, deliverArgs{DeliveryID: did}, nil); err != nil {
			return 0, fmt.Errorf("notify: enqueue delivery: %w", err)
		}
	}
	return id, nil
}

// liveStates are the River job states in which a job still will or does run.
var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
