package provision

import (
	"context"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/testkit"
)

func TestReconciler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	w := b.startWorker(t)

	live := b.newSubscription(t)
	ghost := b.newSubscription(t)
	for _, id := range []int64{live, ghost} {
		require.NoError(t, b.svc.Provision(ctx, id, admin))
	}
	for _, id := range []int64{live, ghost} {
		requireReady(t, b, b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed))
	}
	// An orphan: a server with our labels that no live subscription owns.
	res, _, err := b.hc.Server.Create(ctx, hcloud.ServerCreateOpts{Name: b.name(999999), ServerType: &hcloud.ServerType{Name: b.cfg.ServerType},
		Image: &hcloud.Image{Name: b.cfg.Image}, Labels: map[string]string{LabelManagedBy: LabelManagedByValue, LabelInstallation: b.inst(t), LabelSubscription: "999999"}})
	require.NoError(t, err)
	// A ghost: the server vanished behind our back.
	gsub := b.sub(t, ghost)
	require.True(t, b.sim.DeleteServerBehindBack(*gsub.HetznerServerID))

	// One run's listings are counted on its own Hetzner client (hcloud-go's request metrics), not
	// in the simulator: the running workers list too whenever they reconcile by themselves (River
	// inserts the periodic job at the start of each leadership term, which on a busy machine
	// comes seconds after the worker started, and again whenever leadership moves). Such a run
	// happens here on purpose, so the count cannot depend on when it comes.
	reg := prometheus.NewRegistry()
	rec, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithRegistry(reg), WithTimings(SimulatorTimings())) // never started: only reconcile runs
	require.NoError(t, err)
	before := b.sim.RequestCount("GET /servers", 0)
	_, err = w.reconcile(ctx)
	require.NoError(t, err)
	r, err := rec.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, ReconcileResult{Servers: 2, Orphans: 1, Ghosts: 1}, r)
	require.Equal(t, 1, serverListings(t, reg), "one listing")
	require.GreaterOrEqual(t, b.sim.RequestCount("GET /servers", 0)-before, 2, "the running worker's own run listed too")
	require.Len(t, b.sim.Servers(), 2, "the reconciler deletes nothing")

	findings, err := b.svc.Findings(ctx)
	require.NoError(t, err)
	require.Len(t, findings, 2)
	byKind := map[string]Finding{}
	for _, f := range findings {
		byKind[f.Kind] = f
	}
	require.Equal(t, res.Server.ID, byKind["orphan"].HetznerServerID)
	require.Equal(t, *gsub.HetznerServerID, byKind["ghost"].HetznerServerID)

	// Running again records nothing new.
	_, err = rec.reconcile(ctx)
	require.NoError(t, err)
	findings, err = b.svc.Findings(ctx)
	require.NoError(t, err)
	require.Len(t, findings, 2)

	require.NoError(t, b.svc.DestroyOrphan(ctx, byKind["orphan"].ID, admin))
	require.ErrorIs(t, b.svc.DestroyOrphan(ctx, byKind["orphan"].ID, admin), ErrInvalidState)
	testkit.Eventually(t, "orphan deleted", func() bool { _, ok := b.sim.Server(res.Server.ID); return !ok })

	require.NoError(t, b.svc.MarkGhostGone(ctx, byKind["ghost"].ID, admin))
	sub := b.sub(t, ghost)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "deleted outside this app")
	require.Nil(t, sub.HetznerServerID)
	requireReady(t, b, b.retryUntilSettled(t, ghost))
	b.assertOnly(t, live, ghost)

	var audits int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('orphan.destroy', 'ghost.mark_gone')`).Scan(&audits))
	require.Equal(t, 2, audits)
	require.NoError(t, b.svc.ReconcileNow(ctx, admin))
	testkit.Eventually(t, "findings resolved", func() bool {
		f, err := b.svc.Findings(ctx)
		return err == nil && len(f) == 0
	})
}

// serverListings counts the GET /servers requests (the listing; not GET /servers/{id}) a client
// instrumented into reg sent, retries included.
func serverListings(t testing.TB, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "hcloud_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == "get" && labels["api_endpoint"] == "/servers" {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}
