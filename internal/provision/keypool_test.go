package provision

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// The key pool fills while nothing waits for a key, and stands aside while a provisioning does:
// during a burst the CPU goes to the provisionings themselves.
func TestKeyPoolFillsOnlyWhileIdle(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true; o.env["SSH_KEY_POOL_SIZE"] = "3" })
	ctx := context.Background()
	w, err := NewWorker(b.pool, b.cfg, WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	w.keys.gen, err = sshkey.NewPool(sshkey.PoolConfig{Size: 0, Algorithm: w.keys.alg, Comment: "test"})
	require.NoError(t, err)
	t.Cleanup(w.keys.gen.Close)
	count := func() int64 {
		n, err := w.q.SSHKeyPoolCount(ctx, b.pool, string(w.keys.alg))
		require.NoError(t, err)
		return n
	}

	id := b.newSubscription(t)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'pending' WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, w.keys.refill(ctx))
	require.Zero(t, count(), "a provisioning waits for a key: the pool does not compete")

	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = NULL WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, w.keys.refill(ctx))
	require.EqualValues(t, 3, count())

	// A pooled pair is taken whole, decrypted, and leaves the pool.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	kp, err := w.keys.take(ctx, tx)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = sshkey.ParsePrivateKey(kp.PrivateKeyPEM)
	require.NoError(t, err)
	require.EqualValues(t, 2, count())
}

// A pooled pair no key of the keyring decrypts is set aside, counted and skipped: the
// provisioning gets the next pair instead of failing (and every later one with it).
func TestUndecryptablePooledKeyIsQuarantined(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true; o.env["SSH_KEY_POOL_SIZE"] = "2" })
	ctx := context.Background()
	w, err := NewWorker(b.pool, b.cfg, WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	w.keys.gen, err = sshkey.NewPool(sshkey.PoolConfig{Size: 0, Algorithm: w.keys.alg, Comment: "test"})
	require.NoError(t, err)
	t.Cleanup(w.keys.gen.Close)
	require.NoError(t, w.keys.refill(ctx))

	// The first pooled pair (the one taken next) was sealed with a key the keyring no longer has.
	other, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	otherRing, err := secrets.ParseKeyring(other)
	require.NoError(t, err)
	var badID int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT min(id) FROM ssh_key_pool`).Scan(&badID))
	bad, err := otherRing.Encrypt([]byte("-----BEGIN OPENSSH PRIVATE KEY-----"), poolAD(badID))
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE ssh_key_pool SET private_key = $1 WHERE id = $2`, bad, badID)
	require.NoError(t, err)

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	kp, err := w.keys.take(ctx, tx)
	require.NoError(t, err, "the next pooled pair is used")
	require.NoError(t, tx.Commit(ctx))
	_, err = sshkey.ParsePrivateKey(kp.PrivateKeyPEM)
	require.NoError(t, err)

	var left, quarantined int64
	var reason string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM ssh_key_pool`).Scan(&left))
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), max(reason) FROM ssh_key_pool_quarantine WHERE id = $1`, badID).Scan(&quarantined, &reason))
	require.Zero(t, left, "the bad pair left the pool, and so did the good one taken")
	require.EqualValues(t, 1, quarantined)
	require.NotContains(t, reason, "PRIVATE KEY")
	require.EqualValues(t, 1, testutil.ToFloat64(w.metrics.quarantined))
}
