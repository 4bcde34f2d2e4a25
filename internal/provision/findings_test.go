package provision

import (
	"context"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestFindingActionsRefuseWhatDoesNotFit: an admin's action on a finding that does not exist,
// is of the other kind or is already resolved gets a clear error and changes nothing; the
// open finding explains itself and what its button does.
func TestFindingActionsRefuseWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	w, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)

	// An orphan: our labels, no subscription.
	res, _, err := b.hc.Server.Create(ctx, hcloud.ServerCreateOpts{Name: b.name(777777), ServerType: &hcloud.ServerType{Name: b.cfg.ServerType},
		Image: &hcloud.Image{Name: b.cfg.Image}, StartAfterCreate: hcloud.Ptr(false),
		Labels: map[string]string{LabelManagedBy: LabelManagedByValue, LabelInstallation: b.inst(t), LabelSubscription: "777777"}})
	require.NoError(t, err)
	// Another installation's server and an unlabelled one are none of this installation's business.
	for name, labels := range map[string]map[string]string{
		"other-installation": {LabelManagedBy: LabelManagedByValue, LabelInstallation: "someone-else", LabelSubscription: "1"},
		"handmade":           nil,
	} {
		_, _, err := b.hc.Server.Create(ctx, hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: b.cfg.ServerType},
			Image: &hcloud.Image{Name: b.cfg.Image}, StartAfterCreate: hcloud.Ptr(false), Labels: labels})
		require.NoError(t, err)
	}
	r, err := w.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, ReconcileResult{Servers: 1, Orphans: 1}, r, "only this installation's servers count")

	findings, err := b.svc.Findings(ctx)
	require.NoError(t, err)
	require.Len(t, findings, 1)
	f := findings[0]
	require.Equal(t, "orphan", f.Kind)
	require.Equal(t, res.Server.ID, f.HetznerServerID)
	require.Nil(t, f.SubscriptionID)
	require.Contains(t, f.Explanation, "no live subscription owns it")
	require.Contains(t, f.Explanation, "Destroy deletes it in Hetzner")

	open, err := b.svc.OpenFinding(ctx, f.ID)
	require.NoError(t, err)
	require.Equal(t, f, *open)
	_, err = b.svc.OpenFinding(ctx, f.ID+1000)
	require.ErrorIs(t, err, db.ErrNotFound)

	auditCount := func() int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('orphan.destroy', 'ghost.mark_gone')`).Scan(&n))
		return n
	}
	// Wrong kind and unknown IDs: refused, nothing resolved, nothing audited.
	require.ErrorIs(t, b.svc.MarkGhostGone(ctx, f.ID, admin), ErrInvalidState)
	require.ErrorIs(t, b.svc.MarkGhostGone(ctx, f.ID+1000, admin), db.ErrNotFound)
	require.ErrorIs(t, b.svc.DestroyOrphan(ctx, f.ID+1000, admin), db.ErrNotFound)
	_, err = b.svc.OpenFinding(ctx, f.ID)
	require.NoError(t, err, "still open")
	require.Zero(t, auditCount())

	// Destroy resolves the finding at once (the deletion is a job), audited once.
	require.NoError(t, b.svc.DestroyOrphan(ctx, f.ID, admin))
	_, err = b.svc.OpenFinding(ctx, f.ID)
	require.ErrorIs(t, err, db.ErrNotFound, "resolved findings are not open")
	require.ErrorIs(t, b.svc.DestroyOrphan(ctx, f.ID, admin), ErrInvalidState)
	require.Equal(t, 1, auditCount())
	var resolution string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT resolution FROM reconcile_findings WHERE id = $1`, f.ID).Scan(&resolution))
	require.Equal(t, "deletion requested by "+actorLabel(admin), resolution)
	findings, err = b.svc.Findings(ctx)
	require.NoError(t, err)
	require.Empty(t, findings)
	_, ok := b.sim.Server(res.Server.ID)
	require.True(t, ok, "no worker runs here: the server waits for the job")
}
