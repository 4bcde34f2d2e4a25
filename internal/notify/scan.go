package notify

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// Scan runs the detectors that read the database: provisioning failed, stuck past its step's
// expected time, the server limit reached (provisionings waiting for it, or failed by it), the
// stored preflight result, and the reconciler's open findings (orphans, ghosts). The other kinds
// are raised by their own packages (health, billing) with [Notifier.Sync], [Notifier.Open] and
// [Notifier.Resolve].
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

func (n *Notifier) scanFailed(ctx context.Context) error {
	rows, err := n.q.NotifyFailedSubscriptions(ctx, n.pool)
	if err != nil {
		return fmt.Errorf("notify: failed subscriptions: %w", err)
	}
	var failed, limit []Condition
	for _, r := range rows {
		step := ""
		if r.FailedStep != nil {
			step = string(*r.FailedStep)
		}
		id := r.ID
		failed = append(failed, Condition{Key: fmt.Sprintf("provision_failed:%d", r.ID), SubscriptionID: &id,
			Summary: fmt.Sprintf("Subscription #%d (%s) failed at step %s: %s", r.ID, r.CustomerEmail, step, r.ProvisioningError)})
		if strings.HasPrefix(r.ProvisioningError, provision.ReasonLimitReached) {
			limit = append(limit, Condition{Key: "server_limit", Summary: fmt.Sprintf(
				"Hetzner refused to create a server because the project's server limit is reached (first seen on subscription #%d). Ask Hetzner to raise the limit or remove unused servers, then Retry the failed provisionings.", r.ID)})
		}
	}
	wait, err := n.q.NotifyLimitWaiting(ctx, n.pool)
	if err != nil {
		return fmt.Errorf("notify: provisionings waiting for the server limit: %w", err)
	}
	if wait.Waiting > 0 {
		// The key is the same as a failure's: one server-limit incident, whichever way it shows.
		limit = append([]Condition{{Key: "server_limit", Summary: fmt.Sprintf(
			"%d provisioning(s) are waiting for Hetzner's server limit (the first since %s). They go on as servers are destroyed; ask Hetzner to raise the limit to serve them sooner.",
			wait.Waiting, fmtTime(wait.Since))}}, limit...)
	}
	if len(limit) > 1 {
		limit = limit[:1]
	}
	return errors.Join(n.Sync(ctx, KindProvisionFailed, failed), n.Sync(ctx, KindServerLimit, limit))
}

func (n *Notifier) scanStuck(ctx context.Context) error {
	rows, err := n.q.NotifyWorkingSubscriptions(ctx, n.pool, state.Strings(state.Working))
	if err != nil {
		return fmt.Errorf("notify: working subscriptions: %w", err)
	}
	now := n.now()
	var stuck []Condition
	for _, r := range rows {
		if r.ProvisioningStatus == nil || r.StepStartedAt == nil {
			continue
		}
		exp := provision.ExpectedDuration(*r.ProvisioningStatus)
		if exp <= 0 || now.Sub(*r.StepStartedAt) <= exp {
			continue
		}
		id := r.ID
		// The key names the step, so a subscription stuck again in a later step is a new incident.
		stuck = append(stuck, Condition{Key: fmt.Sprintf("provision_stuck:%d:%s", r.ID, *r.ProvisioningStatus), SubscriptionID: &id,
			Summary: fmt.Sprintf("Subscription #%d (%s) has been in step %s since %s, longer than the expected %s.",
				r.ID, r.CustomerEmail, *r.ProvisioningStatus, fmtTime(*r.StepStartedAt), exp)})
	}
	return n.Sync(ctx, KindProvisionStuck, stuck)
}

func (n *Notifier) scanFindings(ctx context.Context) error {
	rows, err := n.q.NotifyOpenFindings(ctx, n.pool)
	if err != nil {
		return fmt.Errorf("notify: open findings: %w", err)
	}
	var orphans, ghosts []Condition
	for _, r := range rows {
		c := Condition{Key: fmt.Sprintf("%s:%d", r.Kind, r.HetznerServerID), SubscriptionID: r.SubscriptionID}
		switch r.Kind {
		case "orphan":
			c.Summary = fmt.Sprintf("Hetzner server %d (%s) is not live in the database and costs money; the Reconcile page can delete it.", r.HetznerServerID, r.ServerName)
			orphans = append(orphans, c)
		case "ghost":
			c.Summary = fmt.Sprintf("Server %d (%s) is live in the database but gone from Hetzner; the Reconcile page can mark it gone.", r.HetznerServerID, r.ServerName)
			ghosts = append(ghosts, c)
		}
	}
	return errors.Join(n.Sync(ctx, KindOrphan, orphans), n.Sync(ctx, KindGhost, ghosts))
}
