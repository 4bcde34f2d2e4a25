package notify

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// Scan runs the detectors that read the database: provisioning failed, stuck past its step's
// expected time, the server limit reached (provisionings waiting for it, or failed by it), the
// stored preflight result, and the reconciler's open findings (orphans, ghosts). The other kinds
// are raised by their own packages (health, billing) in bounded batches with [Notifier.OpenBatch]
// and [Notifier.ResolveIDs], the same way.
func (n *Notifier) Scan(ctx context.Context) error {
	return errors.Join(n.scanFailed(ctx), n.scanStuck(ctx), n.scanFindings(ctx), n.scanPreflight(ctx))
}

// scanPreflight opens one incident per reason of a failing preflight (the worker stores the result
// at start and periodically) and resolves them once it passes. No result yet changes nothing.
func (n *Notifier) scanPreflight(ctx context.Context) error {
	res, err := n.q.PreflightGet(ctx, n.pool)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: preflight result: %w", err)
	}
	var conds []Condition
	if !res.Ok {
		for _, r := range res.Reasons {
			h := fnv.New64a()
			h.Write([]byte(r))
			conds = append(conds, Condition{Key: fmt.Sprintf("preflight_failing:%x", h.Sum64()),
				Summary: "Preflight fails, so Provision is refused: " + r})
		}
	}
	return n.Sync(ctx, KindPreflightFailing, conds)
}

// The detectors of the kinds that grow with the fleet (failed, stuck, orphan, ghost) never hold
// the whole picture: each scan resolves, in one statement, up to a batch of the open incidents
// whose condition no longer holds (the query checks each against the database), then opens up
// to a batch of those in the condition that have no open incident yet, in a fixed order (lowest
// ID first; the longest stuck or found first); the rest follow at the next scans. So an incident
// is resolved only when its condition is gone, however many hold, and a scan's work is bounded.

func (n *Notifier) scanFailed(ctx context.Context) error {
	err := inTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.q.NotifyFailedResolve(ctx, tx, db.NotifyFailedResolveParams{Now: n.now(), Lim: n.batch()}); err != nil {
			return fmt.Errorf("notify: resolve provision_failed incidents: %w", err)
		}
		rows, err := n.q.NotifyFailedUnnotified(ctx, tx, n.batch())
		if err != nil {
			return fmt.Errorf("notify: failed subscriptions: %w", err)
		}
		failed := make([]Condition, 0, len(rows))
		for _, r := range rows {
			step := ""
			if r.FailedStep != nil {
				step = string(*r.FailedStep)
			}
			id := r.ID
			failed = append(failed, Condition{Key: fmt.Sprintf("provision_failed:%d", r.ID), SubscriptionID: &id,
				Summary: fmt.Sprintf("Subscription #%d (%s) failed at step %s: %s", r.ID, r.CustomerEmail, step, r.ProvisioningError)})
		}
		_, err = n.openBatch(ctx, tx, KindProvisionFailed, failed)
		return err
	})
	return errors.Join(err, n.scanLimit(ctx))
}

// scanLimit keeps the one server-limit incident: open while provisionings wait for Hetzner's
// server limit or one failed by it.
func (n *Notifier) scanLimit(ctx context.Context) error {
	var limit []Condition
	wait, err := n.q.NotifyLimitWaiting(ctx, n.pool)
	if err != nil {
		return fmt.Errorf("notify: provisionings waiting for the server limit: %w", err)
	}
	if wait.Waiting > 0 {
		// The key is the same as a failure's: one server-limit incident, whichever way it shows.
		limit = append(limit, Condition{Key: "server_limit", Summary: fmt.Sprintf(
			"%d provisioning(s) are waiting for Hetzner's server limit (the first since %s). They go on as servers are destroyed; ask Hetzner to raise the limit to serve them sooner.",
			wait.Waiting, fmtTime(wait.Since))})
	} else {
		first, err := n.q.NotifyFailedByLimit(ctx, n.pool, provision.ReasonLimitReached)
		switch {
		case errors.Is(err, db.ErrNotFound):
		case err != nil:
			return fmt.Errorf("notify: provisionings failed by the server limit: %w", err)
		default:
			limit = append(limit, Condition{Key: "server_limit", Summary: fmt.Sprintf(
				"Hetzner refused to create a server because the project's server limit is reached (first seen on subscription #%d). Ask Hetzner to raise the limit or remove unused servers, then Retry the failed provisionings.", first)})
		}
	}
	return n.Sync(ctx, KindServerLimit, limit)
}

// stuckAfter are the working states with an expected duration (state.Working,
// provision.ExpectedDuration) and, for each, the time before which a step that started in it is
// stuck now.
func (n *Notifier) stuckAfter() (states []string, cutoffs []time.Time) {
	now := n.now()
	for _, st := range state.Working {
		exp := provision.ExpectedDuration(st)
		if exp <= 0 {
			continue
		}
		states, cutoffs = append(states, string(st)), append(cutoffs, now.Add(-exp))
	}
	return states, cutoffs
}

func (n *Notifier) scanStuck(ctx context.Context) error {
	states, cutoffs := n.stuckAfter()
	return inTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.q.NotifyStuckResolve(ctx, tx, db.NotifyStuckResolveParams{Now: n.now(), States: states,
			Cutoffs: cutoffs, Lim: n.batch()}); err != nil {
			return fmt.Errorf("notify: resolve provision_stuck incidents: %w", err)
		}
		var rows []db.NotifyStuckUnnotifiedRow
		for i, st := range states {
			if len(rows) >= int(n.batch()) {
				break
			}
			more, err := n.q.NotifyStuckUnnotified(ctx, tx, db.NotifyStuckUnnotifiedParams{State: db.ProvisioningStatus(st),
				Cutoff: cutoffs[i], Lim: n.batch() - int32(len(rows))})
			if err != nil {
				return fmt.Errorf("notify: subscriptions stuck in %s: %w", st, err)
			}
			rows = append(rows, more...)
		}
		stuck := make([]Condition, 0, len(rows))
		for _, r := range rows {
			if r.ProvisioningStatus == nil || r.StepStartedAt == nil {
				continue
			}
			id := r.ID
			// The key names the step, so a subscription stuck again in a later step is a new incident.
			stuck = append(stuck, Condition{Key: fmt.Sprintf("provision_stuck:%d:%s", r.ID, *r.ProvisioningStatus), SubscriptionID: &id,
				Summary: fmt.Sprintf("Subscription #%d (%s) has been in step %s since %s, longer than the expected %s.",
					r.ID, r.CustomerEmail, *r.ProvisioningStatus, fmtTime(*r.StepStartedAt), provision.ExpectedDuration(*r.ProvisioningStatus))})
		}
		_, err := n.openBatch(ctx, tx, KindProvisionStuck, stuck)
		return err
	})
}

func (n *Notifier) scanFindings(ctx context.Context) error {
	return inTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.q.NotifyFindingsResolve(ctx, tx, db.NotifyFindingsResolveParams{Now: n.now(), Lim: n.batch()}); err != nil {
			return fmt.Errorf("notify: resolve orphan and ghost incidents: %w", err)
		}
		rows, err := n.q.NotifyFindingsUnnotified(ctx, tx, n.batch())
		if err != nil {
			return fmt.Errorf("notify: open findings: %w", err)
		}
		var orphans, ghosts []Condition
		for _, r := range rows {
			c := Condition{Key: fmt.Sprintf("%s:%d", r.Kind, r.HetznerServerID), SubscriptionID: r.SubscriptionID}
			switch Kind(r.Kind) {
			case KindOrphan:
				c.Summary = fmt.Sprintf("Hetzner server %d (%s) is not live in the database and costs money; the Reconcile page can delete it.", r.HetznerServerID, r.ServerName)
				orphans = append(orphans, c)
			case KindGhost:
				c.Summary = fmt.Sprintf("Server %d (%s) is live in the database but gone from Hetzner; the Reconcile page can mark it gone.", r.HetznerServerID, r.ServerName)
				ghosts = append(ghosts, c)
			}
		}
		if _, err := n.openBatch(ctx, tx, KindOrphan, orphans); err != nil {
			return err
		}
		_, err = n.openBatch(ctx, tx, KindGhost, ghosts)
		return err
	})
}

// batch is the scan batch as a query limit.
func (n *Notifier) batch() int32 { return int32(min(n.o.ScanBatch, 1<<30)) }
