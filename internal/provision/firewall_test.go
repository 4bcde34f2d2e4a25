package provision

import (
	"context"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// The shared SSH-only firewall is created once and reused; if it is deleted outside the app, the
// next server create notices and makes a new one.
func TestSharedFirewallRecreatedWhenDeletedOutside(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, first, admin))
	b.waitStatus(t, first, db.ProvisioningStatusReady)
	fws := b.sim.Firewalls()
	require.Len(t, fws, 1)
	old := fws[0].ID
	// Only SSH, only from the configured sources.
	require.Len(t, fws[0].Rules, 1)
	require.Equal(t, "in", fws[0].Rules[0].Direction)
	require.Equal(t, "tcp", fws[0].Rules[0].Protocol)
	require.ElementsMatch(t, []string{"10.0.0.0/8", "2001:db8::/32"}, fws[0].Rules[0].SourceIPs)

	require.NoError(t, b.svc.Destroy(ctx, first, admin))
	b.waitStatus(t, first, db.ProvisioningStatusDestroyed)
	_, err := b.hc.Firewall.Delete(ctx, &hcloud.Firewall{ID: old})
	require.NoError(t, err)

	second := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, second, admin))
	sub := b.waitStatus(t, second, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "error: %v", deref(sub.ProvisioningError))
	fws = b.sim.Firewalls()
	require.Len(t, fws, 1)
	require.NotEqual(t, old, fws[0].ID)
	srv, ok := b.sim.Server(*sub.HetznerServerID)
	require.True(t, ok)
	require.Equal(t, []int64{fws[0].ID}, srv.Firewalls)
}
