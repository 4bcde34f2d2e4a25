package provision

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// TestFaultNeverBoots: a VPS whose operating system never boots shows `off` at Hetzner; the
// cloud_init step, finding nothing at the address, asks Hetzner and fails at once with that cause
// on the status page, instead of waiting out CALLBACK_DEADLINE. Retry looks again and fails the
// same way; Destroy removes the server.
func TestFaultNeverBoots(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["CALLBACK_DEADLINE"] = "1h" })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), NeverBoot: true})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCloudInit, "is off at Hetzner: the VPS went down while it booted")
	require.Contains(t, deref(sub.ProvisioningError), "SSH at", "the status page shows this cause, with what SSH saw")

	requireFailed(t, b, b.retryUntilSettled(t, id), db.ProvisioningStatusCloudInit, "is off at Hetzner")
	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	b.assertOnly(t)
}
