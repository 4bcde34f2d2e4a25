// Package billing lets the billing system drive the VPS lifecycle, as a policy an owner switches on:
// a subscription whose billing becomes active and has no server is provisioned; one canceled (or
// past due) is destroyed once its grace period has passed, unless an admin holds it, with a
// notification the day before. Every automatic action is audited with the policy as its actor.
//
// The billing system reports status changes to POST /api/billing/status with a scoped API token
// (only its SHA-256 is stored; it is shown once and can be revoked), idempotently by the
// Idempotency-Key header ([Service.Report]).
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// PolicyActor is the actor of the policy's own actions in the audit log and the timeline.
const PolicyActor = "policy:billing-lifecycle"

// Options adjust a [Service]; tests set the clock.
type Options struct {
	Clock  func() time.Time
	Notify *notify.Notifier // nil: no "destroy tomorrow" notification
	Log    *slog.Logger
	Every  time.Duration // period of the policy job (default 1 min)
	// Batch bounds one run: it destroys at most this many servers, opens at most this many
	// "destroy soon" notifications and resolves at most this many (default [DefaultBatch]); the
	// next runs take the rest. Tests set a small one.
	Batch int
}

// Service applies the policy and answers the billing API.
type Service struct {
	pool *pgxpool.Pool
	q    *db.Queries
	prov *provision.Service
	o    Options
}

// New returns the service; prov carries out provisioning and destroying.
func New(pool *pgxpool.Pool, prov *provision.Service, o Options) *Service {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	return &Service{pool: pool, q: db.New(), prov: prov, o: o}
}

func (s *Service) now() time.Time { return s.o.Clock() }

// Policy is the owner's setting.
type Policy struct {
	Enabled          bool
	CanceledGrace    time.Duration
	PastDueGrace     time.Duration
	UpdatedAt        time.Time
	UpdatedBy        string
	CanceledDays     int
	PastDueGraceDays int
}

// grace is how long a subscription in status may keep its server.
func (p Policy) grace(status string) time.Duration {
	if status == "past_due" {
		return p.PastDueGrace
	}
	return p.CanceledGrace
}

// Policy reads the policy.
func (s *Service) Policy(ctx context.Context) (Policy, error) {
	r, err := s.q.BillingPolicyGet(ctx, s.pool)
	if err != nil {
		return Policy{}, fmt.Errorf("read billing policy: %w", err)
	}
	day := 24 * time.Hour
	return Policy{Enabled: r.Enabled, CanceledGrace: time.Duration(r.CanceledGraceDays) * day,
		PastDueGrace: time.Duration(r.PastDueGraceDays) * day, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
		CanceledDays: int(r.CanceledGraceDays), PastDueGraceDays: int(r.PastDueGraceDays)}, nil
}

// PolicyForm is the settings form.
type PolicyForm struct {
	Enabled      bool `form:"enabled"`
	CanceledDays int  `form:"canceled_grace_days"`
	PastDueDays  int  `form:"past_due_grace_days"`
}

// Validate returns a message per invalid field.
func (f PolicyForm) Validate() map[string]string {
	errs := map[string]string{}
	if f.CanceledDays < 0 || f.CanceledDays > 365 {
		errs["canceled_grace_days"] = "Enter a number of days from 0 to 365."
	}
	if f.PastDueDays < 0 || f.PastDueDays > 365 {
		errs["past_due_grace_days"] = "Enter a number of days from 0 to 365."
	}
	return errs
}

// ErrInvalid means the input was refused; nothing changed.
var ErrInvalid = errors.New("invalid input")

// SetPolicy stores the policy, audited.
func (s *Service) SetPolicy(ctx context.Context, f PolicyForm, actor audit.Actor) error {
	if len(f.Validate()) > 0 {
		return ErrInvalid
	}
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.BillingPolicySet(ctx, tx, db.BillingPolicySetParams{Enabled: f.Enabled,
			CanceledGraceDays: int32(f.CanceledDays), PastDueGraceDays: int32(f.PastDueDays), UpdatedBy: actor.Email}); err != nil {
			return fmt.Errorf("store billing policy: %w", err)
		}
		state := "off"
		if f.Enabled {
			state = "on"
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "billing.policy",
			Detail: fmt.Sprintf("billing lifecycle policy %s; grace canceled %d days, past due %d days", state, f.CanceledDays, f.PastDueDays)})
	})
}

// Hold stops the policy from destroying the subscription's server until released, audited.
func (s *Service) Hold(ctx context.Context, subscriptionID int64, actor audit.Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := s.q.BillingHold(ctx, tx, db.BillingHoldParams{SubscriptionID: subscriptionID, Now: s.now(), HeldBy: actor.Email})
		if err != nil {
			return fmt.Errorf("hold subscription %d: %w", subscriptionID, err)
		}
		if n == 0 {
			return nil // held already (or no such subscription: the handler checked it exists)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "billing.hold", SubscriptionID: &subscriptionID,
			Detail: "Held: the billing policy will not destroy this server"})
	})
}

// Release lifts a hold, audited.
func (s *Service) Release(ctx context.Context, subscriptionID int64, actor audit.Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := s.q.BillingRelease(ctx, tx, subscriptionID)
		if err != nil {
			return fmt.Errorf("release subscription %d: %w", subscriptionID, err)
		}
		if n == 0 {
			return nil
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "billing.release", SubscriptionID: &subscriptionID,
			Detail: "Hold released: the billing policy applies again"})
	})
}

// Countdown is a subscription whose server the policy will destroy (or would, but for a hold).
type Countdown struct {
	SubscriptionID int64
	CustomerEmail  string
	BillingStatus  string
	Since          time.Time
	DestroyAt      time.Time
	Held           bool
	HeldBy         string
	Left           time.Duration // until DestroyAt (≤ 0: due now)
	PolicyOn       bool
}

// Scheduled lists the coming destroys, soonest first, for the dashboard (empty while the policy
// is off).
func (s *Service) Scheduled(ctx context.Context, limit int) ([]Countdown, error) {
	pol, err := s.Policy(ctx)
	if err != nil || !pol.Enabled {
		return nil, err
	}
	rows, err := s.q.BillingEnding(ctx, s.pool, db.BillingEndingParams{Destroyable: state.Guard(state.Destroy), Lim: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list ending subscriptions: %w", err)
	}
	now := s.now()
	out := make([]Countdown, 0, min(len(rows), limit))
	for _, r := range rows {
		if len(out) == limit {
			break
		}
		out = append(out, countdownOf(pol, r, now))
	}
	return out, nil
}

// CountdownOf says when the policy destroys one subscription's server; nil when it will not
// (the policy is off, the billing is fine, or there is no server).
func (s *Service) CountdownOf(ctx context.Context, subscriptionID int64) (*Countdown, error) {
	pol, err := s.Policy(ctx)
	if err != nil || !pol.Enabled {
		return nil, err
	}
	r, err := s.q.BillingLifecycleGet(ctx, s.pool, subscriptionID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read billing of subscription %d: %w", subscriptionID, err)
	}
	if (r.BillingStatus != "canceled" && r.BillingStatus != "past_due") || r.ProvisioningStatus == nil ||
		state.Decide(*r.ProvisioningStatus, state.Destroy) != state.Move {
		return nil, nil
	}
	c := countdownOf(pol, db.BillingEndingRow{ID: r.ID, BillingStatus: r.BillingStatus, StatusSince: r.StatusSince,
		HeldAt: r.HeldAt, HeldBy: r.HeldBy}, s.now())
	return &c, nil
}

func countdownOf(pol Policy, r db.BillingEndingRow, now time.Time) Countdown {
	at := r.StatusSince.Add(pol.grace(r.BillingStatus))
	return Countdown{SubscriptionID: r.ID, CustomerEmail: r.CustomerEmail, BillingStatus: r.BillingStatus,
		Since: r.StatusSince, DestroyAt: at, Held: r.HeldAt != nil, HeldBy: r.HeldBy, Left: at.Sub(now), PolicyOn: pol.Enabled}
}

// DefaultBatch is [Options.Batch]'s default: how many ending subscriptions one run of the policy
// destroys, and how many "destroy soon" notifications it opens and resolves; the next run (a
// minute later) takes the rest.
const DefaultBatch = 5000

// warnBefore is how long before its destroy a subscription's "destroy soon" notification opens.
const warnBefore = 24 * time.Hour

// Result counts what one run of the policy did (Provisioned, Destroyed) and what it found: the
// ending subscriptions held, and those due within a day (Warned; their notifications open over
// as many runs as the batch needs).
type Result struct{ Provisioned, Destroyed, Warned, Held int }

// window are the parameters of the policy's batched queries at now: per billing status, the time
// at or before which a status that began is due (now minus its grace) and the one a day later.
type window struct {
	destroyable               []string
	canceledDue, pastDueDue   time.Time
	canceledWarn, pastDueWarn time.Time
}

func windowAt(pol Policy, now time.Time) window {
	cd, pd := now.Add(-pol.CanceledGrace), now.Add(-pol.PastDueGrace)
	return window{destroyable: state.Guard(state.Destroy), canceledDue: cd, pastDueDue: pd,
		canceledWarn: cd.Add(warnBefore), pastDueWarn: pd.Add(warnBefore)}
}

// Evaluate applies the policy once: provisions active subscriptions without a server, destroys
// the servers whose grace period is over (unless held), and keeps the "destroy within a day"
// notifications current. Each part is bounded by the batch and read by the condition itself (due,
// due within a day and not notified, notified but no longer due within a day), so what one run
// leaves, the next takes, and a notification is resolved only when its condition is gone however
// many subscriptions are ending.
func (s *Service) Evaluate(ctx context.Context) (Result, error) {
	var res Result
	pol, err := s.Policy(ctx)
	if err != nil {
		return res, err
	}
	if !pol.Enabled {
		if s.o.Notify == nil {
			return res, nil
		}
		return res, s.o.Notify.Sync(ctx, notify.KindBillingDestroySoon, nil)
	}
	actor := audit.Actor{Email: PolicyActor}
	ids, err := s.q.BillingToProvision(ctx, s.pool)
	if err != nil {
		return res, fmt.Errorf("billing policy: list active subscriptions without a server: %w", err)
	}
	var errs []error
	for _, id := range ids {
		err := s.prov.Provision(ctx, id, actor)
		if errors.Is(err, provision.ErrInvalidState) || errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err == nil {
			err = s.explain(ctx, id, "billing.policy.provision", "Billing is active and the subscription had no server: provisioning it")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("billing policy: provision subscription %d: %w", id, err))
			continue
		}
		res.Provisioned++
	}

	now := s.now()
	w := windowAt(pol, now)
	due, err := s.q.BillingDue(ctx, s.pool, db.BillingDueParams{Destroyable: w.destroyable,
		CanceledDue: w.canceledDue, PastDueDue: w.pastDueDue, Lim: s.batch()})
	if err != nil {
		return res, errors.Join(append(errs, fmt.Errorf("billing policy: list subscriptions due: %w", err))...)
	}
	for _, r := range due {
		err := s.prov.Destroy(ctx, r.ID, actor)
		if errors.Is(err, provision.ErrInvalidState) || errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err == nil {
			err = s.explain(ctx, r.ID, "billing.policy.destroy", fmt.Sprintf("Billing %s since %s; the grace period of %s is over: destroying the server",
				r.BillingStatus, r.StatusSince.UTC().Format(time.RFC3339), pol.grace(r.BillingStatus)))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("billing policy: destroy subscription %d: %w", r.ID, err))
			continue
		}
		res.Destroyed++
	}
	counts, err := s.q.BillingEndingCounts(ctx, s.pool, db.BillingEndingCountsParams{Destroyable: w.destroyable,
		CanceledDue: w.canceledDue, PastDueDue: w.pastDueDue, CanceledWarn: w.canceledWarn, PastDueWarn: w.pastDueWarn})
	if err != nil {
		errs = append(errs, fmt.Errorf("billing policy: count ending subscriptions: %w", err))
	} else {
		res.Held, res.Warned = int(counts.Held), int(counts.Soon)
	}
	errs = append(errs, s.syncWarnings(ctx, pol, w))
	if res.Provisioned+res.Destroyed > 0 {
		s.o.Log.Info("billing policy applied", "provisioned", res.Provisioned, "destroyed", res.Destroyed)
	}
	return res, errors.Join(errs...)
}

// syncWarnings resolves, in one transaction, up to a batch of the "destroy soon" notifications
// whose subscription is no longer due within a day (billing fine again, held, destroyed, due now),
// then opens up to a batch for those due within a day without one, soonest begun first.
func (s *Service) syncWarnings(ctx context.Context, pol Policy, w window) error {
	if s.o.Notify == nil {
		return nil
	}
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		gone, err := s.q.BillingSoonGone(ctx, tx, db.BillingSoonGoneParams{Destroyable: w.destroyable,
			CanceledDue: w.canceledDue, PastDueDue: w.pastDueDue, CanceledWarn: w.canceledWarn, PastDueWarn: w.pastDueWarn, Lim: s.batch()})
		if err != nil {
			return fmt.Errorf("billing policy: destroy-soon notifications no longer due: %w", err)
		}
		if _, err := s.o.Notify.ResolveIDs(ctx, tx, notify.KindBillingDestroySoon, gone); err != nil {
			return fmt.Errorf("billing policy: %w", err)
		}
		rows, err := s.q.BillingSoonUnnotified(ctx, tx, db.BillingSoonUnnotifiedParams{Destroyable: w.destroyable,
			CanceledDue: w.canceledDue, PastDueDue: w.pastDueDue, CanceledWarn: w.canceledWarn, PastDueWarn: w.pastDueWarn, Lim: s.batch()})
		if err != nil {
			return fmt.Errorf("billing policy: subscriptions due within a day: %w", err)
		}
		warn := make([]notify.Condition, 0, len(rows))
		for _, r := range rows {
			id := r.ID
			at := r.StatusSince.Add(pol.grace(r.BillingStatus))
			warn = append(warn, notify.Condition{Key: fmt.Sprintf("billing_destroy_soon:%d", r.ID), SubscriptionID: &id,
				Summary: fmt.Sprintf("Subscription #%d (%s) is %s since %s; the billing policy destroys its server at %s unless an admin holds it.",
					r.ID, r.CustomerEmail, r.BillingStatus, r.StatusSince.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))})
		}
		if _, err := s.o.Notify.OpenBatch(ctx, tx, notify.KindBillingDestroySoon, warn); err != nil {
			return fmt.Errorf("billing policy: %w", err)
		}
		return nil
	})
}

// batch is the batch as a query limit.
func (s *Service) batch() int32 { return int32(min(s.o.Batch, 1<<30)) }

// explain audits why the policy acted (the provisioning service audited the action itself, with
// the policy as its actor).
func (s *Service) explain(ctx context.Context, subID int64, action, detail string) error {
	return audit.Record(ctx, s.pool, audit.Actor{Email: PolicyActor}, audit.Entry{Action: action, SubscriptionID: &subID, Detail: detail})
}

// policyArgs runs the policy once (periodic).
type policyArgs struct{}

func (policyArgs) Kind() string { return "billing_policy" }

func (policyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

const queue = "billing"

type policyWorker struct {
	river.WorkerDefaults[policyArgs]
	s *Service
}

func (w *policyWorker) Work(ctx context.Context, _ *river.Job[policyArgs]) error {
	_, err := w.s.Evaluate(ctx)
	return err
}

// Jobs are the policy's periodic job for the worker's River client ([provision.WithJobs]).
func (s *Service) Jobs() provision.Jobs {
	return provision.Jobs{
		Register: func(w *river.Workers) error { return river.AddWorkerSafely(w, &policyWorker{s: s}) },
		Queues:   map[string]river.QueueConfig{queue: {MaxWorkers: 1}},
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(s.o.Every),
			func() (river.JobArgs, *river.InsertOpts) { return policyArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})},
	}
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
