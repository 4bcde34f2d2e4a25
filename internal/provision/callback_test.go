package provision

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/sshkey"
)

func TestCallbackRejections(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	hk, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	other, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	token, hash, err := newCallbackToken()
	require.NoError(t, err)
	require.Len(t, hash, 32)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'cloud_init', step_started_at = now(),
		hetzner_server_id = 4242, vps_ip_address = '127.0.0.9', ssh_host_key_public = $2, ssh_host_key_private = '\x00',
		callback_token_hash = $3, callback_expires_at = now() + interval '1 minute' WHERE id = $1`, id, hk.Public, hash)
	require.NoError(t, err)
	good := url.Values{"instance_id": {"4242"}, "pub_key_ed25519": {hk.Public}, "hostname": {b.name(id)}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	otherToken, _, err := newCallbackToken()
	require.NoError(t, err)
	for name, c := range map[string]struct {
		token string
		form  url.Values
	}{
		"unknown token":    {otherToken, good},
		"malformed token":  {"not-base64!", good},
		"short token":      {token[:20], good},
		"wrong instance":   {token, with("instance_id", "4243")},
		"missing instance": {token, with("instance_id", "")},
		"wrong host key":   {token, with("pub_key_ed25519", other.Public)},
		"garbage host key": {token, with("pub_key_ed25519", "ssh-ed25519 AAAA")},
	} {
		require.ErrorIs(t, b.svc.HandleCallback(ctx, c.token, c.form, "127.0.0.9"), ErrCallbackRejected, name)
		require.Equal(t, db.ProvisioningStatusCloudInit, statusOf(b.sub(t, id)), name+" changed nothing")
	}

	// Expired: rejected, nothing changed.
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET callback_expires_at = now() - interval '1 second' WHERE id = $1`, id)
	require.NoError(t, err)
	require.ErrorIs(t, b.svc.HandleCallback(ctx, token, good, "127.0.0.9"), ErrCallbackRejected)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET callback_expires_at = now() + interval '1 minute' WHERE id = $1`, id)
	require.NoError(t, err)

	// The right one is accepted once.
	require.NoError(t, b.svc.HandleCallback(ctx, token, good, "127.0.0.9"))
	sub := b.sub(t, id)
	require.Equal(t, db.ProvisioningStatusInjectingSecrets, statusOf(sub))
	require.Nil(t, sub.CallbackTokenHash)
	require.ErrorIs(t, b.svc.HandleCallback(ctx, token, good, "127.0.0.9"), ErrCallbackRejected, "single use")
}

func TestCallbackDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["CALLBACK_DEADLINE"] = "1s" })
	ctx := context.Background()
	id := b.newSubscription(t)
	// No callback, and sshd not up before the deadline: nothing shows cloud-init finished.
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), LoseCallback: true, SSHDelay: hcloudsim.Duration(3600 * time.Second)})
	}))
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusCloudInit, *sub.FailedStep, "events %v", b.events(t, id))
	require.Contains(t, *sub.ProvisioningError, "did not call back within CALLBACK_DEADLINE (1s)")
}
