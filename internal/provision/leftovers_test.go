package provision

import (
	"context"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/testkit"
)

// A creating step that runs out of time after a crash kept it from recording its SSH key and
// server fails, then records both: failed keeps, and shows, everything already created, and
// Destroy then removes it all.
func TestOverdueCreatingRecordsWhatItMade(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	name := b.name(id)

	// What a crashed worker left: the key uploaded and the server created, neither recorded.
	key, _, err := b.hc.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: name, Labels: labelsFor(b.inst(t), b.sub(t, id)),
		PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl left@over"})
	require.NoError(t, err)
	res, _, err := b.hc.Server.Create(ctx, hcloud.ServerCreateOpts{Name: name, Labels: labelsFor(b.inst(t), b.sub(t, id)),
		ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"},
		Location: &hcloud.Location{Name: "fsn1"}, SSHKeys: []*hcloud.SSHKey{key}})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating',
		ssh_public_key = 'pub', ssh_private_key = '\x00', ssh_host_key_public = 'hpub', ssh_host_key_private = '\x00',
		callback_token_hash = sha256('token'), step_started_at = now() - interval '1 hour' WHERE id = $1`, id)
	require.NoError(t, err)

	b.startWorker(t) // its sweeper finds the subscription without a job and runs its step
	sub := b.waitStatus(t, id, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusCreating, *sub.FailedStep)
	// The failure is recorded first; what was made is recorded right after it.
	testkit.Eventually(t, "the leftovers recorded", func() bool {
		sub = b.sub(t, id)
		return sub.HetznerSshKeyID != nil && sub.HetznerServerID != nil
	})
	require.Contains(t, *sub.ProvisioningError, "CREATE_DEADLINE")
	require.NotNil(t, sub.HetznerSshKeyID)
	require.Equal(t, key.ID, *sub.HetznerSshKeyID)
	require.NotNil(t, sub.HetznerServerID)
	require.Equal(t, res.Server.ID, *sub.HetznerServerID)

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	require.Empty(t, b.sim.Servers())
	require.Empty(t, b.sim.SSHKeys())
}
