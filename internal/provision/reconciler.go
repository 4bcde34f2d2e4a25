package provision

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/db"
)

const (
	findingOrphan = "orphan"
	findingGhost  = "ghost"
)

// reconcileWorker runs the reconciler (periodically and on demand).
type reconcileWorker struct {
	river.WorkerDefaults[reconcileArgs]
	w *Worker
}

func (rw *reconcileWorker) Work(ctx context.Context, _ *river.Job[reconcileArgs]) error {
	return rw.w.Reconcile(ctx)
}

// ReconcileResult counts what one run found.
type ReconcileResult struct{ Servers, Orphans, Ghosts int }

// Reconcile compares the project's servers (one label-selector listing) with the database and
// records drift as findings: orphans (in Hetzner, unknown here or destroyed) and ghosts (live here,
// gone from Hetzner). It never deletes anything.
func (w *Worker) Reconcile(ctx context.Context) error {
	_, err := w.reconcile(ctx)
	return err
}

func (w *Worker) reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	runStart, err := w.q.ReconcileClock(ctx, w.pool)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	// The database first: a server created after this read shows up in Hetzner's listing but
	// belongs to a subscription in creating, which is skipped below.
	subs, err := w.q.ProvisionListWithServer(ctx, w.pool)
	if err != nil {
		return res, fmt.Errorf("reconcile: read subscriptions: %w", err)
	}
	inst, err := w.inst.get(ctx, w.pool)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	// Only this installation's servers: another installation sharing the Hetzner project keeps
	// its own, and they are neither orphans nor ghosts here.
	servers, err := w.hc.Server.AllWithOpts(ctx, hcloud.ServerListOpts{
		ListOpts: hcloud.ListOpts{LabelSelector: installationSelector(inst), PerPage: 50},
	})
	if err != nil {
		return res, fmt.Errorf("reconcile: list servers: %w", err)
	}
	res.Servers = len(servers)
	inHetzner := make(map[int64]*hcloud.Server, len(servers))
	for _, s := range servers {
		inHetzner[s.ID] = s
	}
	known := make(map[int64]db.ProvisionListWithServerRow, len(subs))
	for _, s := range subs {
		known[*s.HetznerServerID] = s
	}

	for _, srv := range servers {
		if _, ok := known[srv.ID]; ok {
			continue
		}
		subID, _ := strconv.ParseInt(srv.Labels[LabelSubscription], 10, 64)
		var subRef *int64
		if subID > 0 {
			sub, err := w.q.SubscriptionGet(ctx, w.pool, subID)
			if err == nil && ownedBy(srv.Labels, inst, sub) {
				subRef = &sub.ID
				switch statusOf(sub) {
				case "pending", "creating", "destroying":
					continue // its step will adopt or delete this server
				}
				if sub.HetznerServerID != nil && *sub.HetznerServerID == srv.ID {
					continue // recorded since our read
				}
			}
		}
		created := srv.Created
		typ := ""
		if srv.ServerType != nil {
			typ = srv.ServerType.Name
		}
		if _, err := w.q.FindingUpsert(ctx, w.pool, db.FindingUpsertParams{Kind: findingOrphan, HetznerServerID: srv.ID,
			ServerName: srv.Name, SubscriptionID: subRef, ServerCreatedAt: &created, ServerType: typ}); err != nil {
			return res, fmt.Errorf("reconcile: record orphan %d: %w", srv.ID, err)
		}
		res.Orphans++
	}

	for _, s := range subs {
		if _, ok := inHetzner[*s.HetznerServerID]; ok {
			continue
		}
		// Look again: a destroy may have finished since the first read.
		sub, err := w.q.SubscriptionGet(ctx, w.pool, s.ID)
		if err != nil || sub.HetznerServerID == nil || *sub.HetznerServerID != *s.HetznerServerID ||
			statusOf(sub) == "destroying" {
			continue
		}
		if _, err := w.q.FindingUpsert(ctx, w.pool, db.FindingUpsertParams{Kind: findingGhost, HetznerServerID: *s.HetznerServerID,
			ServerName: deref(s.VpsHostname), SubscriptionID: &s.ID}); err != nil {
			return res, fmt.Errorf("reconcile: record ghost %d: %w", *s.HetznerServerID, err)
		}
		res.Ghosts++
	}
	if _, err := w.q.FindingResolveUnseen(ctx, w.pool, runStart); err != nil {
		return res, fmt.Errorf("reconcile: resolve findings: %w", err)
	}
	// Firewall drift: a changed SSH_ALLOWED_SOURCES or VPS_SSH_PORT reaches the shared firewall
	// even while nothing is being provisioned.
	if row, err := w.q.SharedResourceGet(ctx, w.pool, FirewallName(inst)); err == nil {
		if err := w.syncFirewallRules(ctx, row.HetznerID, row.Name, w.firewallRules(), nil); err != nil {
			w.o.log.WarnContext(ctx, "reconcile: firewall rules", "err", err)
		}
	}
	w.o.log.Info("reconciled", "servers", res.Servers, "orphans", res.Orphans, "ghosts", res.Ghosts)
	return res, nil
}
