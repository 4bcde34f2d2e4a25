package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	rows, err := w.pool.Query(ctx, `
		SELECT s.id FROM subscriptions s
		WHERE s.provisioning_status = ANY(CAST($4::text[] AS provisioning_status[]))
		  AND s.updated_at < now() - make_interval(secs => $1)
		  AND NOT EXISTS (
		      SELECT 1 FROM river_job j
		      WHERE j.kind = $2 AND j.state IN ('available', 'pending', 'running', 'retryable', 'scheduled')
		        AND j.args @> jsonb_build_object('subscription_id', s.id))
		  AND (NOT EXISTS (SELECT 1 FROM hetzner_actions a WHERE a.subscription_id = s.id AND a.status = 'running')
		       OR s.step_started_at < now() - make_interval(secs => $3))
		ORDER BY s.id LIMIT 500`,
		w.o.timings.Sweep.Seconds(), stepArgs{}.Kind(), w.cfg.CreateDeadline.Seconds(), state.Strings(state.Working))
	if err != nil {
		return fmt.Errorf("list forgotten subscriptions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
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

// rescueDeadWorkersJobs makes the running jobs of dead workers available again at once, instead
// of after River's RescueStuckJobsAfter. Every kind is rescued, not only this package's: a worker
// process also runs other packages' jobs (notifications, periodic ticks), and those must not wait
// for River's rescuer either. A worker is dead when its liveness lock is free: the lock
// lives in its database session, which ends with the process.
func (w *Worker) rescueDeadWorkersJobs(ctx context.Context) error {
	rows, err := w.pool.Query(ctx, `
		SELECT DISTINCT attempted_by[array_length(attempted_by, 1)]
		FROM river_job
		WHERE state = 'running' AND attempted_by IS NOT NULL
		  AND attempted_at < now() - make_interval(secs => $1)`,
		w.o.timings.Sweep.Seconds())
	if err != nil {
		return fmt.Errorf("list running jobs: %w", err)
	}
	clients, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list running jobs: %w", err)
	}
	for _, client := range clients {
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
		n, err := w.releaseJobsOf(ctx, client)
		if err != nil {
			return err
		}
		w.o.log.Warn("rescued jobs of a dead worker", "dead_worker_id", client, "jobs", n)
	}
	return nil
}

// releaseJobsOf makes the jobs that worker client was running available to any worker again.
func (w *Worker) releaseJobsOf(ctx context.Context, client string) (int64, error) {
	tag, err := w.pool.Exec(ctx, `
		UPDATE river_job SET state = 'available', scheduled_at = now()
		WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`,
		client)
	if err != nil {
		return 0, fmt.Errorf("release jobs of worker %s: %w", client, err)
	}
	return tag.RowsAffected(), nil
}
