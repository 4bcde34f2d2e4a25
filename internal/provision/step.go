package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// stepWorker runs the step job of one subscription.
type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	w *Worker
}

func (sw *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	// Every line this job logs names its subscription, its job and the request that started it.
	attrs := []slog.Attr{slog.Int64("subscription_id", job.Args.SubscriptionID), slog.Int64("job_id", job.ID)}
	if rid := jobRequestID(job.Metadata); rid != "" {
		attrs = append(attrs, slog.String("request_id", rid))
	}
	return sw.w.runSteps(logging.With(ctx, attrs...), job.Args.SubscriptionID, job.Attempt, job.MaxAttempts)
}

func (sw *stepWorker) Timeout(*river.Job[stepArgs]) time.Duration { return sw.w.o.timings.JobTimeout }

// outcome is what a step did: moved the state on (run the next step now), or left the
// subscription waiting for the poller or the callback, or wants to look again after a while.
type outcome struct {
	next   bool
	snooze time.Duration
	// moved: another party (the callback) moved the state on, so this step did not finish.
	moved bool
}

var (
	advanced = outcome{next: true}
	waiting  = outcome{}
)

func snoozeFor(d time.Duration) outcome { return outcome{snooze: d} }

// runSteps moves the subscription on as far as it goes without waiting.
func (w *Worker) runSteps(ctx context.Context, id int64, attempt, maxAttempts int) error {
	for range 12 {
		sub, err := w.q.SubscriptionGet(ctx, w.pool, id)
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read subscription %d: %w", id, err)
		}
		st := statusOf(sub)
		if over := w.overdue(ctx, sub); over != "" {
			w.failStep(ctx, sub.ID, st, over)
			if st == db.ProvisioningStatusCreating {
				w.creating.recordLeftovers(ctx, sub)
			}
			return nil
		}
		if !state.InProgress(st) {
			return nil // the rest wait for an admin
		}
		var out outcome
		switch st {
		case state.Pending:
			err = w.enter(ctx, sub.ID, st, state.Start, "Creating the SSH key and the server")
			out = advanced
		case db.ProvisioningStatusCreating:
			out, err = w.creating.run(ctx, sub)
		case db.ProvisioningStatusCloudInit:
			out, err = w.cloudInit.run(ctx, sub)
		case db.ProvisioningStatusInjectingSecrets:
			out, err = w.inject.run(ctx, sub)
		case state.Destroying:
			out, err = w.destroy.run(ctx, sub)
		default:
			return fmt.Errorf("subscription %d: no step runs state %s", sub.ID, st)
		}
		if err != nil {
			return w.stepError(ctx, sub, st, err, attempt, maxAttempts)
		}
		switch {
		case out.next:
			if st != db.ProvisioningStatusPending && !out.moved {
				w.metrics.stepDone(st, sub.StepStartedAt)
			}
			w.o.log.InfoContext(ctx, "provisioning step done", "step", st)
			continue
		case out.snooze > 0:
			return river.JobSnooze(out.snooze)
		default:
			return nil
		}
	}
	return river.JobSnooze(w.o.timings.PollMin)
}

// stepDeadline is how long a step may take in all.
func (w *Worker) stepDeadline(st db.ProvisioningStatus) time.Duration {
	switch st {
	case db.ProvisioningStatusInjectingSecrets:
		return w.cfg.InjectDeadline
	case db.ProvisioningStatusCloudInit:
		return w.cfg.CallbackDeadline
	}
	return w.cfg.CreateDeadline
}

// overdue says why a step that ran past its deadline fails; "" when it has time left. Injection
// and cloud_init check their own deadlines, to report their last problem. A creating step whose
// Hetzner actions all succeeded is not failed, however late its job runs: it moves on.
func (w *Worker) overdue(ctx context.Context, sub db.Subscription) string {
	st := statusOf(sub)
	if sub.StepStartedAt == nil {
		return ""
	}
	if st == db.ProvisioningStatusCreating && sub.LimitWaitSince != nil {
		return "" // waiting for Hetzner's server limit is not Hetzner being slow: no deadline
	}
	waited := time.Since(*sub.StepStartedAt)
	if waited <= w.stepDeadline(st) {
		return ""
	}
	waitedS := waited.Round(time.Second)
	switch st {
	case db.ProvisioningStatusPending:
		return fmt.Sprintf("No worker started this provisioning within CREATE_DEADLINE (%s): it waited %s in the queue. Are worker processes running and keeping up? Nothing was created in Hetzner; Retry starts again.", w.cfg.CreateDeadline, waitedS)
	case db.ProvisioningStatusCreating:
		if sub.HetznerServerID == nil {
			if sub.HetznerSshKeyID == nil && sub.CallbackTokenHash == nil {
				return fmt.Sprintf("The creating step did not get to Hetzner within CREATE_DEADLINE (%s; %s passed since it began): its job waited for a worker, or Hetzner kept answering errors. Nothing was created in Hetzner yet; Retry goes on.", w.cfg.CreateDeadline, waitedS)
			}
			return fmt.Sprintf("The creating step did not get its server recorded within CREATE_DEADLINE (%s; %s passed since it began): its job waited for a worker, Hetzner kept answering errors, or a worker died before recording what it made. What was created is kept: Retry goes on from there, Destroy removes it.", w.cfg.CreateDeadline, waitedS)
		}
		actions, err := w.q.HetznerActionListSince(ctx, w.pool, db.HetznerActionListSinceParams{SubscriptionID: sub.ID, Since: *sub.StepStartedAt})
		if err == nil && len(actions) > 0 && !slices.ContainsFunc(actions, func(a db.HetznerAction) bool { return a.Status != string(hcloud.ActionStatusSuccess) }) {
			return "" // Hetzner finished in time; only this job came late
		}
		return fmt.Sprintf("Hetzner did not finish creating the server within CREATE_DEADLINE (%s). What was created is kept: Retry waits for it again, Destroy removes it.", w.cfg.CreateDeadline)
	case db.ProvisioningStatusDestroying:
		return fmt.Sprintf("Hetzner did not finish deleting the server within CREATE_DEADLINE (%s). Retry tries again.", w.cfg.CreateDeadline)
	}
	return ""
}

// stepError decides what a step's error means: a permanent failure fails the step now; a
// transient one is retried by River with backoff until the step's deadline or the last attempt.
func (w *Worker) stepError(ctx context.Context, sub db.Subscription, st db.ProvisioningStatus, err error, attempt, maxAttempts int) error {
	if ctx.Err() != nil {
		return err // shutting down or timed out: the next run picks it up
	}
	var f *stepFailure
	if errors.As(err, &f) {
		w.failStep(ctx, sub.ID, st, f.reason)
		if st == db.ProvisioningStatusCreating {
			w.creating.recordLeftovers(ctx, sub)
		}
		return nil
	}
	late := sub.StepStartedAt != nil && sub.LimitWaitSince == nil && time.Since(*sub.StepStartedAt) > w.stepDeadline(st)
	if late || attempt >= maxAttempts-1 {
		w.failStep(ctx, sub.ID, st, fmt.Sprintf("Gave up after repeated errors: %v. Retry tries again; Destroy removes what was created.", err))
		if st == db.ProvisioningStatusCreating {
			w.creating.recordLeftovers(ctx, sub)
		}
		return nil
	}
	w.o.log.WarnContext(ctx, "provisioning step failed, will retry", "step", st, "attempt", attempt, "err", err)
	return err
}

// failStep moves the subscription to failed, keeping the step, if it is still in that step.
func (w *Worker) failStep(ctx context.Context, id int64, st db.ProvisioningStatus, reason string) {
	err := inTx(ctx, w.pool, func(tx pgx.Tx) error {
		p := db.ProvisionFailParams{ID: id, Step: st, Reason: reason, Sources: state.Guard(state.StepFailed)}
		if _, err := w.q.ProvisionFail(ctx, tx, p); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil // the state moved on (destroy, callback): nothing to fail
			}
			return err
		}
		return event(ctx, tx, id, st, "error", actorWorker, "%s", reason)
	})
	if err != nil {
		w.o.log.ErrorContext(ctx, "record provisioning failure", "step", st, "err", err)
		return
	}
	w.metrics.stepFailed(st)
	w.o.log.InfoContext(ctx, "provisioning step failed", "step", st, "reason", reason)
}

// enter moves from one step to the next by the worker's event ev, if the state is still from.
func (w *Worker) enter(ctx context.Context, id int64, from state.State, ev state.Event, message string) error {
	next, ok := state.Next(from, ev)
	if !ok {
		return fmt.Errorf("subscription %d: %s does not move %s", id, ev, state.Name(from))
	}
	return inTx(ctx, w.pool, func(tx pgx.Tx) error {
		_, err := w.q.ProvisionEnter(ctx, tx, db.ProvisionEnterParams{ID: id, Next: next, FromStatus: &from, Sources: state.Guard(ev)})
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("subscription %d %s → %s: %w", id, from, next, err)
		}
		if err := event(ctx, tx, id, from, "completed", actorWorker, "Done"); err != nil {
			return err
		}
		return event(ctx, tx, id, next, "entered", actorWorker, "%s", message)
	})
}
