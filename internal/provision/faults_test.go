package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// provisionUntilSettled provisions one subscription and waits for ready or failed.
func (b *bundle) provisionUntilSettled(t testing.TB, id int64) db.Subscription {
	t.Helper()
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	return b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
}

func requireReady(t testing.TB, b *bundle, sub db.Subscription) {
	t.Helper()
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "error: %s; events: %v", deref(sub.ProvisioningError), b.events(t, sub.ID))
}

func requireFailed(t *testing.T, b *bundle, sub db.Subscription, step db.ProvisioningStatus, reason string) {
	t.Helper()
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub), "events: %v", b.events(t, sub.ID))
	require.Equal(t, step, *sub.FailedStep)
	require.Contains(t, deref(sub.ProvisioningError), reason)
}

func (b *bundle) retryUntilSettled(t *testing.T, id int64) db.Subscription {
	t.Helper()
	require.NoError(t, b.svc.Retry(context.Background(), id, admin))
	return b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
}

func TestFaultServerErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.sim.Faults.Errors = []hcloudsim.ErrorFault{
			{Route: "POST /servers", Status: 503, Count: 3},
			{Route: "POST /ssh_keys", Status: 500, Count: 2},
			{Route: "GET /actions", Status: 502, Count: 4},
		}
	})
	id := b.newSubscription(t)
	requireReady(t, b, b.provisionUntilSettled(t, id))
	b.assertOnly(t, id)
}

func TestFaultRateLimitStorm(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.sim.Faults.RateLimitStorm = 12 })
	id := b.newSubscription(t)
	requireReady(t, b, b.provisionUntilSettled(t, id))
	b.assertOnly(t, id)
	// The web process reads the headers the worker stored, in the background.
	testkit.Eventually(t, "rate limit shared through the database", func() bool {
		_, limit, _, ok := b.svc.RateLimit()
		return ok && limit > 0
	})
}

func TestFaultFailingAction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.ActionFailures = append(f.ActionFailures, hcloudsim.ActionFailure{Command: "create_server", Server: b.name(id), Count: 1})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "Hetzner could not create server")
	requireReady(t, b, b.retryUntilSettled(t, id))
	b.assertOnly(t, id)
}

func TestFaultPermanentError(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["HCLOUD_SERVER_TYPE"] = "cx999" })
	// The worker's preflight at start refuses cx999 before anything is created (TestPreflight).
	// This test is about Hetzner refusing the create itself, as when a type is retired between
	// two preflights: wait for the worker's result, then record a passing one over it.
	ctx := context.Background()
	q := db.New()
	testkit.Eventually(t, "the worker's preflight result", func() bool {
		_, err := q.PreflightGet(ctx, b.pool)
		return err == nil
	})
	require.NoError(t, q.PreflightPut(ctx, b.pool, []string{}))
	id := b.newSubscription(t)
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "server type")
	require.NoError(t, b.svc.Destroy(context.Background(), id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	b.assertOnly(t)
}

// TestFaultLostCallback: a VPS whose phone_home never arrives is not stranded: the worker sees
// over SSH, with the pinned host key, that cloud-init finished, and goes on to the injection.
func TestFaultLostCallback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), LoseCallback: true})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireReady(t, b, sub)
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "cloud_init completed: cloud-init finished: no callback was accepted, but over SSH with the pinned host key `cloud-init status --long` reports \"done\"")
	require.Nil(t, sub.CallbackTokenHash, "the token is spent")
	require.Nil(t, sub.CallbackToken, "the token is spent")
	b.assertOnly(t, id)
}

// TestFaultLostCallbackRetry: a VPS that neither calls back nor answers SSH by CALLBACK_DEADLINE
// fails at cloud_init; Retry resumes at cloud_init (not creating, not blindly injecting), looks
// over SSH again and goes on once cloud-init is seen finished.
func TestFaultLostCallbackRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["CALLBACK_DEADLINE"] = "2s" })
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), LoseCallback: true, SSHDelay: hcloudsim.Duration(400 * time.Second)})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCloudInit, "did not call back within CALLBACK_DEADLINE (2s), and over SSH cloud-init was not seen finished either")
	server := *sub.HetznerServerID
	m := b.sim.Machine(server)
	testkit.Eventually(t, "sshd up", func() bool { return m.State().SSHReady })
	n := len(b.events(t, id))

	sub = b.retryUntilSettled(t, id)
	requireReady(t, b, sub)
	require.Equal(t, server, *sub.HetznerServerID, "the same server")
	after := b.events(t, id)[n:]
	require.True(t, strings.HasPrefix(after[0], "cloud_init entered: Retry from step cloud_init"), "Retry resumes at cloud_init: %v", after)
	require.Contains(t, strings.Join(after, "\n"), "cloud_init completed: cloud-init finished: no callback was accepted")
	b.assertOnly(t, id)
}

func TestFaultLateSSHD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), SSHDelay: hcloudsim.Duration(200 * time.Second)})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireReady(t, b, sub)
	b.assertOnly(t, id)
}

func TestFaultLateSSHDPastDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["INJECT_DEADLINE"] = "1s" })
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), SSHDelay: hcloudsim.Duration(400 * time.Second)})
	}))
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusInjectingSecrets, "INJECT_DEADLINE")
	m := b.sim.Machine(*sub.HetznerServerID)
	testkit.Eventually(t, "sshd up", func() bool { return m.State().SSHReady })
	requireReady(t, b, b.retryUntilSettled(t, id))
}

func TestFaultSwappedHostKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), SwapHostKey: true})
	}))
	sub := b.provisionUntilSettled(t, id)
	// Whichever looks first over SSH sees it: the cloud_init step's check whether cloud-init
	// finished, or the injection after the callback.
	require.Contains(t, []db.ProvisioningStatus{db.ProvisioningStatusCloudInit, db.ProvisioningStatusInjectingSecrets}, *sub.FailedStep)
	requireFailed(t, b, sub, *sub.FailedStep, "different SSH host key")
	m := b.sim.Machine(*sub.HetznerServerID)
	for _, f := range m.Files() {
		require.False(t, strings.HasPrefix(f.Path, cloudinit.ConfigDir+"/"), "nothing may be sent: %s", f.Path)
	}
	for _, c := range m.Commands() {
		require.NotContains(t, c.Line, "install -m 0600")
	}
	require.NoError(t, b.svc.Destroy(context.Background(), id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	b.assertOnly(t)
}

func TestFaultServerDeletedBehindBack(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["CALLBACK_DEADLINE"] = "2s" })
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), LoseCallback: true, SSHDelay: hcloudsim.Duration(3600 * time.Second)})
	}))
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusCloudInit)
	require.True(t, b.sim.DeleteServerBehindBack(*sub.HetznerServerID))

	// At the callback deadline the worker finds the server gone: failed at creating.
	sub = b.waitStatus(t, id, db.ProvisioningStatusFailed)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "deleted outside this app while waiting for cloud-init")
	require.NoError(t, b.sim.SetFaults(hcloudsim.Faults{}))
	requireReady(t, b, b.retryUntilSettled(t, id))
	b.assertOnly(t, id)
}
