package provision

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestAdoptedServerWhoseCallbackWasRejected is the crash-safety flake made deterministic: a worker
// dies right after Hetzner created the server, the VPS boots and phones home while no server is
// recorded (rejected: "instance_id does not match the server") until phone_home gives up, and
// only then does the next worker adopt the server. It must still end ready: the worker sees over
// SSH that cloud-init finished.
func TestAdoptedServerWhoseCallbackWasRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	cmd, lines := b.startWorkerProcess(t, "server-created")
	waitLine(t, lines, "HOOK server-created")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()

	// The server exists, unrecorded; its VPS calls back and is turned away until it gives up.
	var serverID int64
	testkit.Eventually(t, "the VPS's phone_home to give up", func() bool {
		for _, s := range b.sim.Servers() {
			if s.Name == b.name(id) && s.Machine != nil {
				serverID = s.ID
				st := s.Machine.State()
				return st.CallbackAttempts > 0 && !st.CallbackDelivered && st.CallbackError != "" &&
					strings.Contains(strings.Join(st.Warnings, "\n"), "phone_home: failed to post")
			}
		}
		return false
	})
	require.Nil(t, b.sub(t, id).HetznerServerID, "the dead worker did not record the server")

	b.startWorker(t)
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	requireReady(t, b, sub)
	require.Equal(t, serverID, *sub.HetznerServerID)
	evs := strings.Join(b.events(t, id), "\n")
	require.Contains(t, evs, "Adopted server")
	require.Contains(t, evs, "no callback was accepted, but over SSH with the pinned host key")
	b.assertOnly(t, id)
}

// TestCallbackTokenKeptAcrossAttempts: a worker dies after storing the callback token, just
// before sending the create request (which, for all the next worker knows, may still arrive at
// Hetzner). The next attempt bakes the same token into the server's user data instead of minting
// a new one, so a server made by either request calls back with a token that is accepted.
func TestCallbackTokenKeptAcrossAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	cmd, lines := b.startWorkerProcess(t, "before-server-create")
	waitLine(t, lines, "HOOK before-server-create")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()
	minted := b.sub(t, id).CallbackTokenHash
	require.Len(t, minted, 32, "the token is stored before the create request")

	b.startWorker(t)
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	requireReady(t, b, sub)
	m := b.sim.Machine(*sub.HetznerServerID)
	require.NotNil(t, m)
	u, err := url.Parse(m.State().CallbackURL)
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(u.Path, "/callback/"))
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	require.Equal(t, minted, sum[:], "the server's user data carries the token minted by the first attempt")
	require.NotContains(t, strings.Join(b.events(t, id), "\n"), "Minted a new callback token")
}

// TestServerGoneKeepsConcurrentDestroy: a step that finds its server gone must not overwrite a
// Destroy pressed meanwhile with failed.
func TestServerGoneKeepsConcurrentDestroy(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'injecting_secrets', step_started_at = now(),
		hetzner_server_id = 4242, vps_ip_address = '127.0.0.9' WHERE id = $1`, id)
	require.NoError(t, err)
	seen := b.sub(t, id) // what the step read before the admin pressed Destroy
	require.NoError(t, b.svc.Destroy(ctx, id, admin))

	require.NoError(t, serverGone(ctx, b.pool, seen, db.ProvisioningStatusInjectingSecrets, "Server 4242 was deleted outside this app"))
	sub := b.sub(t, id)
	require.Equal(t, db.ProvisioningStatusDestroying, statusOf(sub), "the Destroy stands")
	require.Nil(t, sub.ProvisioningError)

	// The reconciler's "mark gone" is guarded the same way: the query needs the status it saw.
	_, err = db.New().ProvisionMarkServerGone(ctx, b.pool, db.ProvisionMarkServerGoneParams{ID: id, Reason: "gone", FromStatus: db.ProvisioningStatusReady, Sources: state.Guard(state.MarkGone)})
	require.ErrorIs(t, err, db.ErrNotFound)
	require.Equal(t, db.ProvisioningStatusDestroying, statusOf(b.sub(t, id)))
}

// TestOverdueSaysWhatHappened: a step whose job only started after CREATE_DEADLINE had passed
// says so, instead of blaming Hetzner for a server it was never asked to create; a creating step
// whose Hetzner actions all finished is not failed for its job's lateness.
func TestOverdueSaysWhatHappened(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	w, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	long := time.Now().Add(-time.Hour)

	pending := db.Subscription{ID: 1, ProvisioningStatus: hcloud.Ptr(db.ProvisioningStatusPending), StepStartedAt: &long}
	msg := w.overdue(ctx, pending)
	require.Contains(t, msg, "No worker started this provisioning within CREATE_DEADLINE")
	require.NotContains(t, msg, "Hetzner did not finish")

	creating := db.Subscription{ID: 1, ProvisioningStatus: hcloud.Ptr(db.ProvisioningStatusCreating), StepStartedAt: &long}
	msg = w.overdue(ctx, creating)
	require.Contains(t, msg, "Nothing was created in Hetzner yet")
	require.NotContains(t, msg, "Hetzner did not finish")

	// A server whose actions all succeeded: the late job moves on.
	id := b.newSubscription(t)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', step_started_at = $2,
		hetzner_server_id = 4243 WHERE id = $1`, id, long)
	require.NoError(t, err)
	require.NoError(t, db.New().HetznerActionInsert(ctx, b.pool, db.HetznerActionInsertParams{ID: 777001, SubscriptionID: id, Command: "create_server", Status: string(hcloud.ActionStatusSuccess), Progress: 100}))
	require.NoError(t, db.New().HetznerActionInsert(ctx, b.pool, db.HetznerActionInsertParams{ID: 777002, SubscriptionID: id, Command: "start_server", Status: string(hcloud.ActionStatusSuccess), Progress: 100}))
	require.Empty(t, w.overdue(ctx, b.sub(t, id)))
	_, err = b.pool.Exec(ctx, `UPDATE hetzner_actions SET status = 'running' WHERE id = 777002`)
	require.NoError(t, err)
	require.Contains(t, w.overdue(ctx, b.sub(t, id)), "Hetzner did not finish creating the server")
}
