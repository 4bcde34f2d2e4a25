package provision

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/riverqueue/river"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
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

// Reconcile compares each project's servers (one label-selector listing per project, with that
// project's token) with the database and records drift as findings: orphans (in Hetzner, unknown
// here or destroyed) and ghosts (live here, gone from the project they are recorded in). It
// never deletes anything.
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
	known := make(map[int64]db.ProvisionListWithServerRow, len(subs))
	for _, s := range subs {
		known[*s.HetznerServerID] = s
	}
	for _, p := range w.projects {
		if err := w.reconcileProject(ctx, p, inst, subs, known, &res); err != nil {
			return res, err
		}
	}
	if _, err := w.q.FindingResolveUnseen(ctx, w.pool, runStart); err != nil {
		return res, fmt.Errorf("reconcile: resolve findings: %w", err)
	}
	w.o.log.Info("reconciled", "servers", res.Servers, "orphans", res.Orphans, "ghosts", res.Ghosts, "projects", len(w.projects))
	return res, nil
}

// reconcileProject compares one project's servers with the subscriptions recorded in it.
func (w *Worker) reconcileProject(ctx context.Context, p *hproject, inst string, subs []db.ProvisionListWithServerRow,
	known map[int64]db.ProvisionListWithServerRow, res *ReconcileResult) error {
	// Only this installation's servers: another installation sharing the Hetzner project keeps
	// its own, and they are neither orphans nor ghosts here.
	servers, err := p.hc.Server.AllWithOpts(ctx, hcloud.ServerListOpts{
		ListOpts: hcloud.ListOpts{LabelSelector: installationSelector(inst), PerPage: 50},
	})
	if err != nil {
		return fmt.Errorf("reconcile: list servers of project %s: %w", p.name, err)
	}
	res.Servers += len(servers)
	inHetzner := make(map[int64]*hcloud.Server, len(servers))
	for _, s := range servers {
		inHetzner[s.ID] = s
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
				if state.HandlesUnrecordedServer(statusOf(sub)) {
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
			ServerName: srv.Name, SubscriptionID: subRef, ServerCreatedAt: &created, ServerType: typ, Project: p.name}); err != nil {
			return fmt.Errorf("reconcile: record orphan %d: %w", srv.ID, err)
		}
		res.Orphans++
	}

	for _, s := range subs {
		if _, ok := inHetzner[*s.HetznerServerID]; ok {
			continue
		}
		if proj := deref(s.HetznerProject); proj != p.name && (proj != "" || p != w.projects[0]) {
			continue // recorded in another project: that project's listing decides
		}
		// Look again: a destroy may have finished since the first read.
		sub, err := w.q.SubscriptionGet(ctx, w.pool, s.ID)
		if err != nil || sub.HetznerServerID == nil || *sub.HetznerServerID != *s.HetznerServerID ||
			statusOf(sub) == state.Destroying {
			continue
		}
		if _, err := w.q.FindingUpsert(ctx, w.pool, db.FindingUpsertParams{Kind: findingGhost, HetznerServerID: *s.HetznerServerID,
			ServerName: deref(s.VpsHostname), SubscriptionID: &s.ID, Project: p.name}); err != nil {
			return fmt.Errorf("reconcile: record ghost %d: %w", *s.HetznerServerID, err)
		}
		res.Ghosts++
	}
	// Firewall drift: a changed SSH_ALLOWED_SOURCES or VPS_SSH_PORT reaches the project's shared
	// firewall even while nothing is being provisioned.
	if row, err := w.q.SharedResourceGet(ctx, w.pool, db.SharedResourceGetParams{Project: p.name, Name: FirewallName(inst)}); err == nil {
		if err := w.creating.syncFirewallRules(ctx, p, row.HetznerID, row.Name, w.creating.firewallRules(), nil); err != nil {
			w.o.log.WarnContext(ctx, "reconcile: firewall rules", "project", p.name, "err", err)
		}
	}
	return nil
}
