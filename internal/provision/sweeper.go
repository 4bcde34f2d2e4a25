package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// sweepLoop runs on every worker: callback deadlines, subscriptions whose wake-up got lost, and
// jobs of workers that died.
func (w *Worker) sweepLoop(ctx context.Context) error {
	for {
		for _, f := range []func(context.Context) error{w.failOverdueCallbacks, w.wakeForgotten, w.rescueDeadWorkersJobs} {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				w.o.log.Warn("provisioning sweep", "err", err)
			}
		}
		if err := w.withLockConn(func(c *pgxpool.Conn) error { return c.Ping(ctx) }); err != nil && ctx.Err() == nil {
			// Without its session the liveness lock is gone: others would rescue our jobs.
			return fmt.Errorf("worker session lost: %w", err)
		}
		if !sleep(ctx, w.o.timings.Sweep) {
			return nil
		}
	}
}

// callbackBackstop is how long past CALLBACK_DEADLINE the sweeper waits for the cloud_init step
// to fail a subscription itself (after a last look over SSH, whose findings it reports).
const callbackBackstop = 2 * time.Minute

// failOverdueCallbacks wakes the cloud_init step of the VPSes that did not call back within
// CALLBACK_DEADLINE (it looks over SSH once more and fails with what it saw), and fails those
// whose step still has not run well after that.
func (w *Worker) failOverdueCallbacks(ctx context.Context) error {
	rows, err := w.q.ProvisionCallbackOverdue(ctx, w.pool, state.CloudInit)
	if err != nil {
		return fmt.Errorf("list overdue callbacks: %w", err)
	}
	for _, r := range rows {
		id := r.ID
		if r.CallbackExpiresAt != nil && time.Since(*r.CallbackExpiresAt) < callbackBackstop {
			if err := inTx(ctx, w.pool, func(tx pgx.Tx) error { return enqueueStep(ctx, w.river, tx, id) }); err != nil {
				return err
			}
			continue
		}
		reason := fmt.Sprintf("The VPS did not call back within CALLBACK_DEADLINE (%s), and no worker could check over SSH whether cloud-init finished: cloud-init may have failed, or the VPS cannot reach %s. Retry looks again over SSH; Destroy removes the VPS.",
			w.cfg.CallbackDeadline, w.cfg.PublicBaseURL)
		err := inTx(ctx, w.pool, func(tx pgx.Tx) error {
			if _, err := w.q.ProvisionFail(ctx, tx, db.ProvisionFailParams{ID: id, Step: state.CloudInit, Reason: reason, Sources: state.Guard(state.StepFailed)}); err != nil {
				if errors.Is(err, db.ErrNotFound) {
					return nil
				}
				return err
			}
			return event(ctx, tx, id, db.ProvisioningStatusCloudInit, "error", actorDeadline, "%s", reason)
		})
		if err != nil {
			return fmt.Errorf("fail subscription %d at the callback deadline: %w", id, err)
		}
	}
	return nil
}

// wakeForgotten enqueues a step job for every subscription in a working state ([state.Working])
// that has neither a live job nor a running action to wait for (a wake-up lost in a race, a job
// discarded), and for those past their step's deadline (so the deadline is enforced).
func (w *Worker) wakeForgotten(ctx context.Context) error {
	live, err := w.liveStepJobs(ctx)
	if err != nil {
		return err
	}
	ids, err := w.q.ProvisionListForgotten(ctx, w.pool, db.ProvisionListForgottenParams{
		States:       state.Strings(state.Working),
		IdleSecs:     w.o.timings.Sweep.Seconds(),
		WithLiveJob:  live,
		DeadlineSecs: w.cfg.CreateDeadline.Seconds(),
	})
	if err != nil {
		return fmt.Errorf("list forgotten subscriptions: %w", err)
	}
	for _, id := range ids {
		if err := inTx(ctx, w.pool, func(tx pgx.Tx) error { return enqueueStep(ctx, w.river, tx, id) }); err != nil {
			return err
		}
	}
	return nil
}

// liveStepJobs lists the subscriptions whose step job still will or does run, from River's
// JobList.
func (w *Worker) liveStepJobs(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := w.listJobs(ctx, river.NewJobListParams().Kinds(stepArgs{}.Kind()).States(liveStates...), func(j *rivertype.JobRow) {
		var args stepArgs
		if json.Unmarshal(j.EncodedArgs, &args) == nil {
			ids = append(ids, args.SubscriptionID)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list live step jobs: %w", err)
	}
	return ids, nil
}

// listJobs calls fn for every job River's JobList finds with params, page by page.
func (w *Worker) listJobs(ctx context.Context, params *river.JobListParams, fn func(*rivertype.JobRow)) error {
	params = params.First(1000)
	for {
		res, err := w.river.JobList(ctx, params)
		if err != nil {
			return err
		}
		for _, j := range res.Jobs {
			fn(j)
		}
		if len(res.Jobs) < 1000 || res.LastCursor == nil {
			return nil
		}
		params = params.After(res.LastCursor)
	}
}

// rescueDeadWorkersJobs makes the running jobs of dead workers available again at once.
//
// River's own rescuer (RescueStuckJobsAfter, configured in [NewWorker]) stays the backstop, but it
// cannot tell a dead worker from a slow one: it may only take a job back after the longest time
// the job may legitimately run (its kind's Timeout: two minutes for a step, half an hour for a
// health check), and it runs on the elected leader only, every 30 s, while a killed leader's
// term lasts 15 s more. Under a worker that dies and restarts every few seconds (the fault
// suite's chaos) it would never run, and the step deadlines would fail the subscriptions whose
// job it held. A worker here is known dead when its liveness lock is free (the lock lives in its
// database session, which ends with the process), so its jobs are taken back within a sweep.
// Every kind is rescued, not only this package's: a worker process also runs other packages'
// jobs (notifications, health checks). The jobs are found with River's JobList and moved with
// River's driver (JobRescueMany, the statement River's rescuer runs), so no SQL here touches
// River's tables.
func (w *Worker) rescueDeadWorkersJobs(ctx context.Context) error {
	horizon := time.Now().Add(-w.o.timings.Sweep)
	byWorker := map[string][]int64{}
	err := w.listJobs(ctx, river.NewJobListParams().States(rivertype.JobStateRunning), func(j *rivertype.JobRow) {
		if len(j.AttemptedBy) == 0 || j.AttemptedAt == nil || !j.AttemptedAt.Before(horizon) {
			return
		}
		client := j.AttemptedBy[len(j.AttemptedBy)-1]
		byWorker[client] = append(byWorker[client], j.ID)
	})
	if err != nil {
		return fmt.Errorf("list running jobs: %w", err)
	}
	for client, jobs := range byWorker {
		if client == w.id {
			continue
		}
		var dead bool
		err := w.withLockConn(func(c *pgxpool.Conn) error {
			var err error
			if dead, err = w.q.WorkerLockTry(ctx, c, livenessKey(client)); err != nil {
				return err
			}
			if dead {
				return w.q.WorkerUnlock(ctx, c, livenessKey(client))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("check worker %s: %w", client, err)
		}
		if !dead {
			continue
		}
		if err := w.releaseJobs(ctx, client, jobs, horizon); err != nil {
			return err
		}
		w.o.log.Warn("rescued jobs of a dead worker", "dead_worker_id", client, "jobs", len(jobs))
	}
	return nil
}

// releaseJobs makes the given jobs, which worker client was running (and began before horizon),
// available to any worker again. A job that finished meanwhile is left alone: River's statement
// touches running jobs only.
func (w *Worker) releaseJobs(ctx context.Context, client string, ids []int64, horizon time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	now := time.Now().UTC()
	p := &riverdriver.JobRescueManyParams{StuckHorizon: horizon}
	for _, id := range ids {
		e, err := json.Marshal(rivertype.AttemptError{At: now, Error: fmt.Sprintf("worker %s died while running this job; rescued", client)})
		if err != nil {
			return err
		}
		p.ID = append(p.ID, id)
		p.Error = append(p.Error, e)
		p.FinalizedAt = append(p.FinalizedAt, nil)
		p.ScheduledAt = append(p.ScheduledAt, now)
		p.State = append(p.State, string(rivertype.JobStateAvailable))
	}
	if _, err := w.driver.GetExecutor().JobRescueMany(ctx, p); err != nil {
		return fmt.Errorf("release jobs of worker %s: %w", client, err)
	}
	return nil
}
