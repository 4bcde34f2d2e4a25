package provision

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestStatus: the one-query view model in each kind of state (never provisioned, ready with a
// receipt and actions, destroyed) and for an unknown subscription.
func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	st, err := b.svc.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "", st.State)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Provision: true}, st.Allowed)
	require.Empty(t, st.Events)

	require.NoError(t, b.svc.Provision(ctx, id, admin))
	b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusReady)
	st, err = b.svc.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "ready", st.State)
	require.NotNil(t, st.Receipt)
	require.Len(t, st.Receipt.Files, 2)
	require.NotEmpty(t, st.Actions)
	require.NotEmpty(t, st.HostKeyFingerprint)
	require.NotEmpty(t, st.IPv4)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Reinject: true, Reboot: true, Destroy: true}, st.Allowed)
	var done []string
	for _, s := range st.Steps {
		if s.State == "done" {
			done = append(done, s.Step)
		}
	}
	require.Equal(t, []string{"pending", "creating", "cloud_init", "injecting_secrets"}, done[:4])

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusDestroyed)
	st, err = b.svc.Status(ctx, id)
	require.NoError(t, err)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Provision: true}, st.Allowed)
	require.NotNil(t, st.DeprovisionedAt)

	_, err = b.svc.Status(ctx, 999999)
	require.ErrorIs(t, err, db.ErrNotFound)
}

// TestAttention: failed subscriptions come first, then those whose step overran its expected
// time, longest first; healthy ones are not listed.
func TestAttention(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	failed, stuckLong, stuckShort, fresh := b.newSubscription(t), b.newSubscription(t), b.newSubscription(t), b.newSubscription(t)
	for _, id := range []int64{failed, stuckLong, stuckShort, fresh} {
		require.NoError(t, b.svc.Provision(ctx, id, admin))
	}
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', failed_step = 'creating', provisioning_error = 'boom' WHERE id = $1`, failed)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'cloud_init', step_started_at = now() - interval '30 minutes' WHERE id = $1`, stuckLong)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET step_started_at = now() - interval '5 minutes' WHERE id = $1`, stuckShort)
	require.NoError(t, err)

	got, err := b.svc.Attention(ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, failed, got[0].SubscriptionID)
	require.Equal(t, "failed", got[0].State)
	require.Equal(t, "creating", got[0].FailedStep)
	require.Nil(t, got[0].Stuck)
	require.Equal(t, stuckLong, got[1].SubscriptionID)
	require.Equal(t, "cloud_init", got[1].State)
	require.InDelta(t, 25*time.Minute, got[1].Stuck.Over, float64(time.Minute))
	require.Contains(t, got[1].Stuck.Hint, "called back")
	require.Equal(t, stuckShort, got[2].SubscriptionID)
	require.Equal(t, "pending", got[2].State)
	require.NotEmpty(t, got[2].CustomerEmail)

	got, err = b.svc.Attention(ctx, 1)
	require.NoError(t, err)
	require.Len(t, got, 2, "at most limit of each kind")
}
