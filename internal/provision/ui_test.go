package provision

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestLiveStatusMatchesStatus: the one-query view model equals the one Status builds, in every
// kind of state (never provisioned, ready with a receipt and actions, pending, destroyed).
func TestLiveStatusMatchesStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	compare := func(what string) {
		t.Helper()
		want, err := b.svc.Status(ctx, id)
		require.NoError(t, err)
		got, err := b.svc.LiveStatus(ctx, id)
		require.NoError(t, err)
		// Running durations and stuck times are measured at each call.
		for _, s := range [][]StepView{want.Steps, got.Steps} {
			for i := range s {
				s[i].Duration = s[i].Duration.Truncate(time.Hour)
			}
		}
		want.Stuck, got.Stuck = nil, nil
		require.Equal(t, want, got, what)
	}
	compare("never provisioned")
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusReady)
	compare("ready")
	got, err := b.svc.LiveStatus(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, got.Receipt)
	require.NotEmpty(t, got.Actions)
	require.NotEmpty(t, got.HostKeyFingerprint)
	require.True(t, got.Terminal)
	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusDestroyed)
	compare("destroyed")

	_, err = b.svc.LiveStatus(ctx, 999999)
	require.ErrorIs(t, err, ErrNotFound)
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
