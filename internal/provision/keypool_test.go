package provision

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/sshkey"
)

// The key pool fills while nothing waits for a key, and stands aside while a provisioning does:
// during a burst the CPU goes to the provisionings themselves.
func TestKeyPoolFillsOnlyWhileIdle(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true; o.env["SSH_KEY_POOL_SIZE"] = "3" })
	ctx := context.Background()
	w, err := NewWorker(b.pool, b.cfg, WithHCloudClient(b.hc, b.rl), WithTimings(testTimings()))
	require.NoError(t, err)
	w.keys, err = sshkey.NewPool(sshkey.PoolConfig{Size: 0, Algorithm: w.alg, Comment: "test"})
	require.NoError(t, err)
	t.Cleanup(w.keys.Close)
	count := func() int64 {
		n, err := w.q.SSHKeyPoolCount(ctx, b.pool, string(w.alg))
		require.NoError(t, err)
		return n
	}

	id := b.newSubscription(t)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'pending' WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, w.refillKeyPool(ctx))
	require.Zero(t, count(), "a provisioning waits for a key: the pool does not compete")

	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = NULL WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, w.refillKeyPool(ctx))
	require.EqualValues(t, 3, count())

	// A pooled pair is taken whole, decrypted, and leaves the pool.
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	kp, err := w.takeKeyPair(ctx, tx)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = sshkey.ParsePrivateKey(kp.PrivateKeyPEM)
	require.NoError(t, err)
	require.EqualValues(t, 2, count())
}
