package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// destroyStep is the destroying step. It needs the database, Hetzner, the installation ID (to
// find by name what a crashed step created), the job queue (a freed server slot wakes the first
// provisioning waiting for one) and the poller's nudge (it watches the delete action).
type destroyStep struct {
	pool        *pgxpool.Pool
	q           *db.Queries
	project     func(db.Subscription) (*hproject, error) // the subscription's Hetzner project
	inst        *installationID
	jobs        inserter
	nudgePoller func()
}

// run deletes the server (waiting for its delete action through the poller), then the
// SSH key; 404 counts as gone. It also finds what a crashed step created without recording.
func (s *destroyStep) run(ctx context.Context, sub db.Subscription) (outcome, error) {
	inst, err := s.inst.get(ctx, s.pool)
	if err != nil {
		return waiting, err
	}
	name := ServerName(inst, sub.ID)
	if sub.HetznerServerID != nil {
		return s.deleteServer(ctx, sub)
	}
	// Everything of the subscription lives in its recorded project.
	p, err := s.project(sub)
	if err != nil {
		return waiting, err
	}
	if sub.CallbackTokenHash != nil {
		// A create may have gone out without its server being recorded.
		srv, _, err := p.hc.Server.GetByName(ctx, name)
		if err != nil {
			return waiting, hetznerError("look up the server", err)
		}
		if srv != nil && ownedBy(srv.Labels, inst, sub) {
			if err := recordServer(ctx, s.pool, sub.ID, srv); err != nil {
				return waiting, err
			}
			return advanced, nil
		}
	}
	if sub.HetznerSshKeyID != nil {
		_, err := p.hc.SSHKey.Delete(ctx, &hcloud.SSHKey{ID: *sub.HetznerSshKeyID})
		if err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
			return waiting, hetznerError("delete the SSH key", err)
		}
		if err := s.q.ProvisionSetSSHKeyID(ctx, s.pool, db.ProvisionSetSSHKeyIDParams{ID: sub.ID}); err != nil {
			return waiting, fmt.Errorf("forget SSH key: %w", err)
		}
	} else if sub.SshPublicKey != nil {
		// An upload may have gone out without its key being recorded.
		key, _, err := p.hc.SSHKey.GetByName(ctx, name)
		if err != nil {
			return waiting, hetznerError("look up the SSH key", err)
		}
		if key != nil && ownedBy(key.Labels, inst, sub) {
			if _, err := p.hc.SSHKey.Delete(ctx, key); err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
				return waiting, hetznerError("delete the SSH key", err)
			}
		}
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.ProvisionDestroyed(ctx, tx, db.ProvisionDestroyedParams{ID: sub.ID, Sources: state.Guard(state.Deleted)}); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("mark destroyed: %w", err)
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusDestroying, "completed", actorWorker, "Server and SSH key deleted"); err != nil {
			return err
		}
		// A server slot may be free now: the first provisioning waiting for it goes on at once.
		if err := wakeLimitWaiter(ctx, s.jobs, tx); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusDestroyed, "entered", actorWorker, "Destroyed; the subscription can be provisioned again")
	})
	return advanced, err
}

// deleteServer deletes the recorded server and waits (through the poller) for its action.
func (s *destroyStep) deleteServer(ctx context.Context, sub db.Subscription) (outcome, error) {
	id := *sub.HetznerServerID
	p, err := s.project(sub)
	if err != nil {
		return waiting, err
	}
	actions, err := s.q.HetznerActionListSince(ctx, s.pool, db.HetznerActionListSinceParams{SubscriptionID: sub.ID, Since: *sub.StepStartedAt})
	if err != nil {
		return waiting, fmt.Errorf("read actions: %w", err)
	}
	var last *db.HetznerAction
	for i := range actions {
		if actions[i].Command == "delete_server" {
			last = &actions[i]
		}
	}
	if last != nil {
		switch hcloud.ActionStatus(last.Status) {
		case hcloud.ActionStatusRunning:
			return waiting, nil
		case hcloud.ActionStatusSuccess:
			if err := s.q.ProvisionClearServer(ctx, s.pool, sub.ID); err != nil {
				return waiting, fmt.Errorf("forget deleted server: %w", err)
			}
			return advanced, event(ctx, s.pool, sub.ID, db.ProvisioningStatusDestroying, "info", actorWorker, "Server %d deleted", id)
		}
		// error: fall through and ask again; a real failure repeats until the deadline.
	}
	res, _, err := p.hc.Server.DeleteWithResult(ctx, &hcloud.Server{ID: id})
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		if err := s.q.ProvisionClearServer(ctx, s.pool, sub.ID); err != nil {
			return waiting, fmt.Errorf("forget deleted server: %w", err)
		}
		return advanced, event(ctx, s.pool, sub.ID, db.ProvisioningStatusDestroying, "info", actorWorker, "Server %d was already gone", id)
	}
	if err != nil {
		return waiting, hetznerError("delete the server", err)
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := recordActions(ctx, tx, sub.ID, res.Action); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusDestroying, "info", actorWorker, "Deleting server %d", id)
	})
	if err != nil {
		return waiting, err
	}
	s.nudgePoller()
	return waiting, nil
}

// destroyOrphanWorker deletes an orphan server an admin chose to delete.
type destroyOrphanWorker struct {
	river.WorkerDefaults[destroyOrphanArgs]
	w *Worker
}

func (dw *destroyOrphanWorker) Work(ctx context.Context, job *river.Job[destroyOrphanArgs]) error {
	w := dw.w
	owner, err := w.q.SubscriptionCountByServer(ctx, w.pool, job.Args.ServerID)
	if err != nil {
		return fmt.Errorf("check server owner: %w", err)
	}
	if owner > 0 {
		w.o.log.Warn("orphan deletion skipped: a subscription owns the server now", "server_id", job.Args.ServerID)
		return nil
	}
	// Only a server of this installation: the finding's ID could name anything by now.
	inst, err := w.inst.get(ctx, w.pool)
	if err != nil {
		return err
	}
	// The finding's project: a token of another project would not see the server.
	p := w.projects[0]
	if job.Args.Project != "" {
		if p, err = w.projectNamed(job.Args.Project); err != nil {
			return err
		}
	}
	srv, _, err := p.hc.Server.GetByID(ctx, job.Args.ServerID)
	if err != nil {
		return fmt.Errorf("look up orphan server %d: %w", job.Args.ServerID, err)
	}
	if srv == nil {
		return nil
	}
	if srv.Labels[LabelManagedBy] != LabelManagedByValue || srv.Labels[LabelInstallation] != inst {
		w.o.log.Warn("orphan deletion refused: the server is not this installation's", "server_id", srv.ID, "installation", srv.Labels[LabelInstallation])
		return nil
	}
	res, _, err := p.hc.Server.DeleteWithResult(ctx, srv)
	if hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete orphan server %d: %w", job.Args.ServerID, err)
	}
	// No subscription owns the server, so there is no row for the poller to follow: wait for the
	// delete action the way hcloud-go offers (a failed action fails the job, which River retries).
	if err := p.hc.Action.WaitFor(ctx, res.Action); err != nil {
		return fmt.Errorf("delete orphan server %d: %w", job.Args.ServerID, err)
	}
	w.o.log.Info("orphan server deleted", "server_id", job.Args.ServerID, "finding_id", job.Args.FindingID)
	return nil
}
