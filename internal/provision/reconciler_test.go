package provision

import (
	"context"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
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

	before := b.sim.RequestCount("GET /servers", 0)
	r, err := w.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, ReconcileResult{Servers: 2, Orphans: 1, Ghosts: 1}, r)
	require.Equal(t, 1, b.sim.RequestCount("GET /servers", 0)-before, "one listing")
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
	_, err = w.reconcile(ctx)
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
