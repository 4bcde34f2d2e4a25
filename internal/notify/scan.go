package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rachelcloud/admin/internal/provision"
)

// Scan runs the detectors that read the database: provisioning failed, stuck past its step's
// expected time, the server limit reached, and the reconciler's open findings (orphans, ghosts).
// The other kinds are raised by their own packages (health, billing, preflight) with [Notifier.Sync],
// [Notifier.Open] and [Notifier.Resolve].
func (n *Notifier) Scan(ctx context.Context) error {
	return errors.Join(n.scanFailed(ctx), n.scanStuck(ctx), n.scanFindings(ctx))
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
	if len(limit) > 1 {
		limit = limit[:1]
	}
	return errors.Join(n.Sync(ctx, KindProvisionFailed, failed), n.Sync(ctx, KindServerLimit, limit))
}

func (n *Notifier) scanStuck(ctx context.Context) error {
	rows, err := n.q.NotifyWorkingSubscriptions(ctx, n.pool)
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
