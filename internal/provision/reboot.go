package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/db"
)

// rebootArgs reboots the server of a ready subscription (an admin's confirmed Reboot).
type rebootArgs struct {
	SubscriptionID int64 `json:"subscription_id"`
}

func (rebootArgs) Kind() string { return "provision_reboot" }

func (rebootArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueSteps, MaxAttempts: 10,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates}}
}

// Reboot asks the worker to reboot a ready subscription's server (Hetzner's ACPI reboot), with
// its event and audit row; pressing it again while one is queued changes nothing more.
func (s *Service) Reboot(ctx context.Context, subscriptionID int64, a Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		sub, err := s.lockSubscription(ctx, tx, subscriptionID)
		if err != nil {
			return err
		}
		if statusOf(sub) != db.ProvisioningStatusReady || sub.HetznerServerID == nil {
			return fmt.Errorf("reboot subscription %d in state %s: %w", sub.ID, statusOf(sub), ErrInvalidState)
		}
		res, err := s.river.InsertTx(ctx, tx, rebootArgs{SubscriptionID: sub.ID}, nil)
		if err != nil {
			return fmt.Errorf("enqueue reboot of subscription %d: %w", sub.ID, err)
		}
		if res.UniqueSkippedAsDuplicate {
			return nil
		}
		msg := fmt.Sprintf("Reboot of server %d requested", *sub.HetznerServerID)
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusReady, "info", actorLabel(a), "%s", msg); err != nil {
			return err
		}
		return auditAction(ctx, tx, a, "vps.reboot", &sub.CustomerID, &sub.ID, msg)
	})
}

// rebootWorker sends the reboot and records its action, which the poller follows like the
// others (the status page shows it).
type rebootWorker struct {
	river.WorkerDefaults[rebootArgs]
	w *Worker
}

func (rw *rebootWorker) Work(ctx context.Context, job *river.Job[rebootArgs]) error {
	w := rw.w
	sub, err := w.q.SubscriptionGet(ctx, w.pool, job.Args.SubscriptionID)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read subscription %d: %w", job.Args.SubscriptionID, err)
	}
	if statusOf(sub) != db.ProvisioningStatusReady || sub.HetznerServerID == nil {
		w.o.log.InfoContext(ctx, "reboot not sent: the subscription is no longer ready", "subscription_id", sub.ID, "state", statusOf(sub))
		return nil
	}
	p, err := w.project(sub)
	if err != nil {
		return event(ctx, w.pool, sub.ID, db.ProvisioningStatusReady, "error", actorWorker, "Reboot failed: %v", err)
	}
	action, _, err := p.hc.Server.Reboot(ctx, &hcloud.Server{ID: *sub.HetznerServerID})
	if err != nil {
		herr := hetznerError("reboot the server", err)
		var f *stepFailure
		if errors.As(herr, &f) || job.Attempt >= job.MaxAttempts {
			return event(ctx, w.pool, sub.ID, db.ProvisioningStatusReady, "error", actorWorker, "Reboot failed: %v", herr)
		}
		return herr // transient: River retries with backoff
	}
	err = inTx(ctx, w.pool, func(tx pgx.Tx) error {
		if err := recordActions(ctx, tx, sub.ID, action); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusReady, "info", actorWorker, "Hetzner is rebooting server %d (action %d)", *sub.HetznerServerID, action.ID)
	})
	if err != nil {
		return err
	}
	w.nudgePoller()
	return nil
}
