package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// Service is what the web layer calls: admin actions, reconcile findings and the VPS callback
// (the status page's read model is package statusview). It never talks to Hetzner itself; it changes state and enqueues
// jobs, each in one transaction with the audit and event rows.
type Service struct {
	pool    *pgxpool.Pool
	cfg     *config.Config
	q       *db.Queries
	river   *river.Client[pgx.Tx]
	o       options
	metrics *stepMetrics
	inst    installationID

	rlMu      sync.Mutex
	rlCached  map[string]RateLimitState // per project, from hetzner_rate_limit
	rlSeen    time.Time
	rlLoading atomic.Bool
}

// NewService returns the service; it inserts jobs with an insert-only River client.
func NewService(pool *pgxpool.Pool, cfg *config.Config, opts ...Option) (*Service, error) {
	o := buildOptions(opts)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: o.log})
	if err != nil {
		return nil, fmt.Errorf("provision service: river client: %w", err)
	}
	return &Service{pool: pool, cfg: cfg, q: db.New(), river: rc, o: o, metrics: newStepMetrics(o.registry)}, nil
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

// lockSubscription reads the subscription FOR UPDATE, mapping a missing row to [db.ErrNotFound].
func (s *Service) lockSubscription(ctx context.Context, tx pgx.Tx, id int64) (db.Subscription, error) {
	sub, err := s.q.SubscriptionGetForUpdate(ctx, tx, id)
	if errors.Is(err, db.ErrNotFound) {
		return sub, fmt.Errorf("subscription %d: %w", id, db.ErrNotFound)
	}
	if err != nil {
		return sub, fmt.Errorf("read subscription %d: %w", id, err)
	}
	return sub, nil
}

func event(ctx context.Context, tx db.DBTX, subID int64, step db.ProvisioningStatus, kind, actor, format string, args ...any) error {
	_, err := db.New().ProvisioningEventInsert(ctx, tx, db.ProvisioningEventInsertParams{
		SubscriptionID: subID, Step: step, Kind: kind, Message: fmt.Sprintf(format, args...), Actor: actor,
	})
	if err != nil {
		return fmt.Errorf("record event of subscription %d: %w", subID, err)
	}
	return nil
}

func auditAction(ctx context.Context, tx db.DBTX, a Actor, action string, customerID, subID *int64, detail string) error {
	a.Email = actorLabel(a)
	return audit.Record(ctx, tx, a, audit.Entry{Action: action, CustomerID: customerID, SubscriptionID: subID, Detail: detail})
}

// transition is one admin action on a subscription: the status change, its event, the audit row
// and the job, in one transaction. The transition table (package state) says whether ev moves,
// keeps (pressed again: nothing changes) or refuses the subscription's state; target picks the
// state it moves to (one of the table's targets) and the event's message, or refuses with an error.
func (s *Service) transition(ctx context.Context, id int64, a Actor, action string, ev state.Event,
	target func(sub db.Subscription) (next state.State, message string, err error)) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		sub, err := s.lockSubscription(ctx, tx, id)
		if err != nil {
			return err
		}
		from := statusOf(sub)
		switch state.Decide(from, ev) {
		case state.Refuse:
			return fmt.Errorf("%s subscription %d in state %s: %w", ev, sub.ID, state.Name(from), ErrInvalidState)
		case state.Keep:
			return nil
		}
		next, msg, err := target(sub)
		if err != nil {
			return err
		}
		if err := state.Check(from, ev, next); err != nil {
			return fmt.Errorf("%s subscription %d: %w", ev, sub.ID, err)
		}
		if _, err := s.q.ProvisionEnter(ctx, tx, db.ProvisionEnterParams{Next: next, ID: id, FromStatus: sub.ProvisioningStatus, Sources: state.Guard(ev)}); err != nil {
			return fmt.Errorf("%s subscription %d: %w", action, id, err)
		}
		if next == state.CloudInit {
			// The callback deadline starts again with the step.
			if err := s.q.ProvisionRestartCallbackWait(ctx, tx, db.ProvisionRestartCallbackWaitParams{ID: id, DeadlineSeconds: s.cfg.CallbackDeadline.Seconds()}); err != nil {
				return fmt.Errorf("%s subscription %d: %w", action, id, err)
			}
		}
		if from == state.Destroyed {
			if err := s.q.ProvisionResetForNewServer(ctx, tx, id); err != nil {
				return fmt.Errorf("reset subscription %d: %w", id, err)
			}
		}
		if err := event(ctx, tx, id, next, "entered", actorLabel(a), "%s", msg); err != nil {
			return err
		}
		if err := auditAction(ctx, tx, a, action, &sub.CustomerID, &id, msg); err != nil {
			return err
		}
		return enqueueStep(ctx, s.river, tx, id)
	})
}

// next is the one state ev moves sub to.
func next(sub db.Subscription, ev state.Event) (state.State, error) {
	to, ok := state.Next(statusOf(sub), ev)
	if !ok {
		return to, fmt.Errorf("%s subscription %d in state %s: %w", ev, sub.ID, state.Name(statusOf(sub)), ErrInvalidState)
	}
	return to, nil
}

// Provision starts provisioning a never-provisioned or destroyed subscription. Pressing it again
// while a provisioning is under way (or done) changes nothing.
func (s *Service) Provision(ctx context.Context, subscriptionID int64, a Actor) error {
	return s.transition(ctx, subscriptionID, a, "vps.provision", state.Provision, func(sub db.Subscription) (state.State, string, error) {
		if err := s.preflightRefusal(ctx, s.pool); err != nil {
			return "", "", err
		}
		to, err := next(sub, state.Provision)
		return to, "Provisioning requested", err
	})
}

// Retry resumes a failed provisioning (or destroy) at the step that failed ([state.RetryTarget]).
// A failed callback wait resumes at cloud_init, whose step checks over SSH (pinned to the seeded
// host key) whether cloud-init finished, since cloud-init does not call back twice; a late
// callback still counts.
func (s *Service) Retry(ctx context.Context, subscriptionID int64, a Actor) error {
	return s.transition(ctx, subscriptionID, a, "vps.retry", state.Retry, func(sub db.Subscription) (state.State, string, error) {
		if sub.FailedStep == nil {
			return "", "", fmt.Errorf("retry subscription %d without a failed step: %w", sub.ID, ErrInvalidState)
		}
		step := *sub.FailedStep
		hasServer := sub.HetznerServerID != nil && sub.VpsIpAddress != nil
		to := state.RetryTarget(step, hasServer)
		if slices.Contains(state.BeforeServer, to) {
			// A retry that creates a server (a failed create, or a later step whose server is
			// gone) would meet the same refusal the preflight found.
			if err := s.preflightRefusal(ctx, s.pool); err != nil {
				return "", "", err
			}
		}
		switch {
		case to == state.Creating && (step == state.CloudInit || step == state.InjectingSecrets):
			return to, "Retry: the server is gone, creating it again", nil
		case to == state.CloudInit:
			return to, "Retry from step cloud_init: checking over SSH, with the pinned host key, whether cloud-init finished (a late callback is still accepted)", nil
		}
		return to, fmt.Sprintf("Retry from step %s", to), nil
	})
}

// Reinject repeats the secret injection on a ready VPS, after the customer's secrets changed.
func (s *Service) Reinject(ctx context.Context, subscriptionID int64, a Actor) error {
	return s.transition(ctx, subscriptionID, a, "vps.reinject", state.Reinject, func(sub db.Subscription) (state.State, string, error) {
		to, err := next(sub, state.Reinject)
		return to, "Re-injection of secrets requested", err
	})
}

// Destroy deletes the VPS and its SSH key from any state; a provisioning under way stops at its
// next step boundary and the same job turns to destroying. Pressing it twice changes nothing,
// also when the first press's destroy already finished (destroyed), as it does within a few
// queries for a provisioning that has created nothing yet.
func (s *Service) Destroy(ctx context.Context, subscriptionID int64, a Actor) error {
	return s.transition(ctx, subscriptionID, a, "vps.destroy", state.Destroy, func(sub db.Subscription) (state.State, string, error) {
		to, err := next(sub, state.Destroy)
		return to, fmt.Sprintf("Destroy requested (was %s)", statusOf(sub)), err
	})
}

// ReconcileNow enqueues a reconciler run.
func (s *Service) ReconcileNow(ctx context.Context, a Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.river.InsertTx(ctx, tx, reconcileArgs{}, nil); err != nil {
			return fmt.Errorf("enqueue reconcile: %w", err)
		}
		return auditAction(ctx, tx, a, "reconcile.run", nil, nil, "Reconciliation requested")
	})
}

// Finding is one open reconciler finding, for the UI.
type Finding struct {
	ID              int64
	Kind            string // "orphan" (in Hetzner, not live here) or "ghost" (live here, gone from Hetzner)
	HetznerServerID int64
	ServerName      string
	ServerType      string
	SubscriptionID  *int64
	CustomerEmail   string
	ServerCreatedAt *time.Time
	FirstSeenAt     time.Time
	LastSeenAt      time.Time
	// Project is the Hetzner project the server was (or should be) in.
	Project string
	// Explanation says in words what was found and what the buttons do.
	Explanation string
}

// Findings lists the open reconciler findings, oldest first.
func (s *Service) Findings(ctx context.Context) ([]Finding, error) {
	rows, err := s.q.FindingListOpen(ctx, s.pool, FindingsShown)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	out := make([]Finding, 0, len(rows))
	for _, r := range rows {
		out = append(out, findingOf(r.ReconcileFinding, r.CustomerEmail))
	}
	return out, nil
}

// FindingsShown bounds the open findings a page lists (the oldest first), so a reconciler that
// found many does not make the dashboard and the reconcile page slow.
const FindingsShown = 200

// OpenFinding returns the open finding id ([db.ErrNotFound] when there is none, or it is resolved).
func (s *Service) OpenFinding(ctx context.Context, id int64) (*Finding, error) {
	r, err := s.q.FindingGetOpen(ctx, s.pool, id)
	if errors.Is(err, db.ErrNotFound) {
		return nil, fmt.Errorf("finding %d: %w", id, db.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read finding %d: %w", id, err)
	}
	f := findingOf(r.ReconcileFinding, r.CustomerEmail)
	return &f, nil
}

func findingOf(f db.ReconcileFinding, customerEmail string) Finding {
	fd := Finding{ID: f.ID, Kind: f.Kind, HetznerServerID: f.HetznerServerID, ServerName: f.ServerName,
		ServerType: f.ServerType, SubscriptionID: f.SubscriptionID, CustomerEmail: customerEmail,
		ServerCreatedAt: f.ServerCreatedAt, FirstSeenAt: f.FirstSeenAt, LastSeenAt: f.LastSeenAt, Project: f.Project}
	if f.Kind == findingOrphan {
		fd.Explanation = fmt.Sprintf("Server %s (%d) runs in Hetzner (project %s) and costs money, but no live subscription owns it. Destroy deletes it in Hetzner.", f.ServerName, f.HetznerServerID, f.Project)
	} else {
		fd.Explanation = fmt.Sprintf("The database says server %s (%d) exists in Hetzner project %s, but Hetzner no longer has it there. Mark gone makes the subscription forget it (failed, ready for Retry; or destroyed if it was being destroyed).", f.ServerName, f.HetznerServerID, f.Project)
	}
	return fd
}

// DestroyOrphan deletes an orphan server in Hetzner (through a job), audited.
func (s *Service) DestroyOrphan(ctx context.Context, findingID int64, a Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := s.q.FindingGetForUpdate(ctx, tx, findingID)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("finding %d: %w", findingID, db.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read finding %d: %w", findingID, err)
		}
		if f.Kind != findingOrphan || f.ResolvedAt != nil {
			return fmt.Errorf("destroy orphan of finding %d (%s, resolved %v): %w", findingID, f.Kind, f.ResolvedAt != nil, ErrInvalidState)
		}
		if err := s.q.FindingResolve(ctx, tx, db.FindingResolveParams{ID: f.ID, Resolution: "deletion requested by " + actorLabel(a)}); err != nil {
			return fmt.Errorf("resolve finding %d: %w", f.ID, err)
		}
		if _, err := s.river.InsertTx(ctx, tx, destroyOrphanArgs{FindingID: f.ID, ServerID: f.HetznerServerID, Project: f.Project}, nil); err != nil {
			return fmt.Errorf("enqueue orphan deletion: %w", err)
		}
		return auditAction(ctx, tx, a, "orphan.destroy", nil, f.SubscriptionID,
			fmt.Sprintf("Delete orphan server %s (%d)", f.ServerName, f.HetznerServerID))
	})
}

// MarkGhostGone makes the database forget a server Hetzner no longer has: the subscription
// becomes failed at creating (Retry makes a new server), or, while destroying, the destroy goes on
// without it. Audited.
func (s *Service) MarkGhostGone(ctx context.Context, findingID int64, a Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := s.q.FindingGetForUpdate(ctx, tx, findingID)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("finding %d: %w", findingID, db.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read finding %d: %w", findingID, err)
		}
		if f.Kind != findingGhost || f.ResolvedAt != nil {
			return fmt.Errorf("mark ghost gone of finding %d: %w", findingID, ErrInvalidState)
		}
		if err := s.q.FindingResolve(ctx, tx, db.FindingResolveParams{ID: f.ID, Resolution: "marked gone by " + actorLabel(a)}); err != nil {
			return fmt.Errorf("resolve finding %d: %w", f.ID, err)
		}
		var custID *int64
		if f.SubscriptionID != nil {
			sub, err := s.lockSubscription(ctx, tx, *f.SubscriptionID)
			if err != nil {
				return err
			}
			custID = &sub.CustomerID
			if sub.HetznerServerID != nil && *sub.HetznerServerID == f.HetznerServerID {
				if err := s.forgetServer(ctx, tx, sub, a); err != nil {
					return err
				}
			}
		}
		return auditAction(ctx, tx, a, "ghost.mark_gone", custID, f.SubscriptionID,
			fmt.Sprintf("Server %s (%d) confirmed gone from Hetzner", f.ServerName, f.HetznerServerID))
	})
}

func (s *Service) forgetServer(ctx context.Context, tx pgx.Tx, sub db.Subscription, a Actor) error {
	st := statusOf(sub)
	if st == state.Destroying {
		// The destroy goes on without the server.
		if err := s.q.ProvisionClearServer(ctx, tx, sub.ID); err != nil {
			return fmt.Errorf("forget server of subscription %d: %w", sub.ID, err)
		}
		if err := event(ctx, tx, sub.ID, st, "info", actorLabel(a), "The server was already gone from Hetzner"); err != nil {
			return err
		}
		return enqueueStep(ctx, s.river, tx, sub.ID)
	}
	reason := "The server was deleted outside this app (found by the reconciler, confirmed by an admin). Retry creates a new server; Destroy cleans up the rest."
	if _, err := s.q.ProvisionMarkServerGone(ctx, tx, db.ProvisionMarkServerGoneParams{ID: sub.ID, Reason: reason, FromStatus: st, Sources: state.Guard(state.MarkGone)}); err != nil {
		return fmt.Errorf("fail subscription %d: %w", sub.ID, err)
	}
	return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "error", actorLabel(a), "%s", reason)
}

// RateLimit returns the latest rate-limit headers of the first project (HCLOUD_TOKEN's):
// this process's own when it talks to Hetzner, else what a worker stored ([Service.RateLimits]).
func (s *Service) RateLimit() (remaining, limit int, reset time.Time, ok bool) {
	name := config.DefaultProject
	if ps := s.cfg.HCloudProjects(); len(ps) > 0 {
		name = ps[0].Name
	}
	st, ok := s.RateLimits()[name]
	return st.Remaining, st.Limit, st.Reset, ok
}

// RateLimits returns each project's latest rate-limit headers: this process's own for the
// project whose client it was given, else what a worker stored (refreshed in the background, so
// this never blocks). A project no response was seen for yet is missing.
func (s *Service) RateLimits() map[string]RateLimitState {
	s.rlMu.Lock()
	out := make(map[string]RateLimitState, len(s.rlCached)+1)
	for k, v := range s.rlCached {
		out[k] = v
	}
	stale := time.Since(s.rlSeen) > 5*time.Second
	s.rlMu.Unlock()
	if stale && s.rlLoading.CompareAndSwap(false, true) {
		go func() {
			defer s.rlLoading.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rows, err := s.q.RateLimitList(ctx, s.pool)
			s.rlMu.Lock()
			defer s.rlMu.Unlock()
			s.rlSeen = time.Now() // on error: try again in a while, not on every call
			if err == nil {
				m := make(map[string]RateLimitState, len(rows))
				for _, row := range rows {
					m[row.Project] = RateLimitState{Limit: int(row.Lim), Remaining: int(row.Remaining), Reset: row.ResetAt, Seen: row.SeenAt}
				}
				s.rlCached = m
			}
		}()
	}
	if s.o.rl != nil {
		if st, ok := s.o.rl.Latest(); ok {
			name := config.DefaultProject
			if ps := s.cfg.HCloudProjects(); len(ps) > 0 {
				name = ps[0].Name
			}
			out[name] = st
		}
	}
	for _, p := range s.o.projects {
		if p.RateLimit != nil {
			if st, ok := p.RateLimit.Latest(); ok {
				out[p.Name] = st
			}
		}
	}
	return out
}
