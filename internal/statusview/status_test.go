package statusview

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

func ptr[T any](v T) *T { return &v }

// inst is the database's installation ID.
func (b *bundle) inst(t testing.TB) string {
	t.Helper()
	inst, err := db.New().InstallationID(context.Background(), b.pool)
	require.NoError(t, err)
	return inst
}

// TestStatus: the one-query view model in each kind of state (never provisioned, pending, ready
// with a receipt and actions, failed, destroyed) and for an unknown subscription. Only the
// request goes through the service; the later states are written as the worker writes them.
func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	st, err := b.view.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "", st.State)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Provision: true}, st.Allowed)
	require.Empty(t, st.Events)
	require.Equal(t, provision.ServerName(b.inst(t), id), st.ServerName)

	require.NoError(t, b.svc.Provision(ctx, id, admin))
	st, err = b.view.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "pending", st.State)
	require.False(t, st.Terminal)
	require.Equal(t, Allowed{Destroy: true}, st.Allowed)
	require.Equal(t, "current", st.Steps[0].State)
	require.NotNil(t, st.Steps[0].Started)
	require.Nil(t, st.Stuck)

	// Ready: the steps entered in order, an action, a pinned host key and a receipt.
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	hostKey, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = 4711,
		vps_ip_address = '203.0.113.7', ssh_host_key_public = $2, ssh_host_key_private = decode('00', 'hex'), provisioned_at = now(), step_started_at = now(),
		server_type = 'cx23', server_location = 'nbg1', server_image = 'debian-12', server_price_monthly = 4.5
		WHERE id = $1`, id, string(ssh.MarshalAuthorizedKey(hostKey)))
	require.NoError(t, err)
	for _, step := range []string{"creating", "cloud_init", "injecting_secrets", "ready"} {
		_, err = b.pool.Exec(ctx, `INSERT INTO provisioning_events (subscription_id, step, kind, message, actor)
			VALUES ($1, $2, 'entered', 'entered', 'worker')`, id, step)
		require.NoError(t, err)
	}
	_, err = b.pool.Exec(ctx, `INSERT INTO hetzner_actions (id, subscription_id, command, status, progress)
		VALUES ($1, $2, 'create_server', 'success', 100)`, id*1000, id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO secret_receipts (subscription_id, files)
		VALUES ($1, '[{"path":"/etc/rachel/a.env","sha256":"ab","bytes":3,"mode":"0600","owner":"rachel:rachel"},
		             {"path":"/etc/rachel/b.env","sha256":"cd","bytes":4,"mode":"0600","owner":"rachel:rachel"}]')`, id)
	require.NoError(t, err)
	st, err = b.view.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "ready", st.State)
	require.NotNil(t, st.Receipt)
	require.Equal(t, []provision.ReceiptFile{
		{Path: "/etc/rachel/a.env", SHA256: "ab", Bytes: 3, Mode: "0600", Owner: "rachel:rachel"},
		{Path: "/etc/rachel/b.env", SHA256: "cd", Bytes: 4, Mode: "0600", Owner: "rachel:rachel"},
	}, st.Receipt.Files)
	require.Equal(t, []ActionView{{ID: id * 1000, Command: "create_server", Status: "success", Progress: 100, Started: st.Actions[0].Started}}, st.Actions)
	require.Equal(t, ssh.FingerprintSHA256(hostKey), st.HostKeyFingerprint)
	require.Equal(t, "203.0.113.7", st.IPv4)
	require.Equal(t, int64(4711), *st.ServerID)
	require.Equal(t, &ServerFacts{Type: "cx23", Location: "nbg1", Image: "debian-12", PriceMonthly: ptr(4.5)}, st.Server)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Reinject: true, Reboot: true, Destroy: true}, st.Allowed)
	var done []string
	for _, s := range st.Steps {
		if s.State == "done" {
			done = append(done, s.Step)
		}
	}
	require.Equal(t, []string{"pending", "creating", "cloud_init", "injecting_secrets", "ready"}, done)

	// Failed in cloud_init: the timeline marks that step, Retry is offered.
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', failed_step = 'cloud_init',
		provisioning_error = 'no callback' WHERE id = $1`, id)
	require.NoError(t, err)
	st, err = b.view.Status(ctx, id)
	require.NoError(t, err)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Retry: true, Destroy: true}, st.Allowed)
	require.Equal(t, "failed", st.Steps[2].State)
	require.Equal(t, "no callback", st.Error)

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'destroyed', hetzner_server_id = NULL, deprovisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	st, err = b.view.Status(ctx, id)
	require.NoError(t, err)
	require.True(t, st.Terminal)
	require.Equal(t, Allowed{Provision: true}, st.Allowed)
	require.NotNil(t, st.DeprovisionedAt)

	_, err = b.view.Status(ctx, 999999)
	require.ErrorIs(t, err, db.ErrNotFound)
}

// TestStatusStuck: a step that overran its expected duration says by how much and what to do;
// waiting for Hetzner's server limit is not stuck.
func TestStatusStuck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', step_started_at = now() - interval '13 minutes' WHERE id = $1`, id)
	require.NoError(t, err)
	st, err := b.view.Status(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, st.Stuck)
	require.InDelta(t, 10*time.Minute, st.Stuck.Over, float64(time.Minute))
	require.Contains(t, st.Stuck.Hint, "Hetzner is slow to create")

	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET limit_wait_since = now() WHERE id = $1`, id)
	require.NoError(t, err)
	st, err = b.view.Status(ctx, id)
	require.NoError(t, err)
	require.Nil(t, st.Stuck)
	require.Equal(t, provision.LimitWaitPrefix+".", st.LimitWait)
}

// TestAttention: failed subscriptions come first, then those whose step overran its expected
// time, longest first; healthy ones are not listed.
func TestAttention(t *testing.T) {
	t.Parallel()
	b := setup(t)
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

	got, err := b.view.Attention(ctx, 10)
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

	got, err = b.view.Attention(ctx, 1)
	require.NoError(t, err)
	require.Len(t, got, 2, "at most limit of each kind")
}

// TestEveryWorkingStateHasAHint: every state a worker drives can be reported stuck, with a hint
// and an expected duration; the others never are.
func TestEveryWorkingStateHasAHint(t *testing.T) {
	t.Parallel()
	for _, s := range state.All {
		_, hinted := stuckHints[s]
		require.Equal(t, state.InProgress(s), hinted, "%s", s)
		require.Equal(t, state.InProgress(s), provision.ExpectedDuration(s) > 0, "%s", s)
	}
}
