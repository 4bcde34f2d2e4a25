package notify_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestScanReadsPreflightAndLimitWait: the worker's stored preflight result and provisionings
// waiting for Hetzner's server limit (which no longer fail) open their incidents from the periodic
// scan, and resolve them when the condition is gone.
func TestScanReadsPreflightAndLimitWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	q := db.New()
	open := func() map[string]int {
		t.Helper()
		incidents, err := b.n.OpenIncidents(ctx, 50)
		require.NoError(t, err)
		kinds := map[string]int{}
		for _, i := range incidents {
			kinds[i.Kind]++
		}
		return kinds
	}

	// No preflight result yet and nobody waiting: nothing opens.
	b.tick(t)
	require.Empty(t, open())

	require.NoError(t, q.PreflightPut(ctx, b.pool, []string{
		"HCLOUD_SERVER_TYPE: cx22 is retired", "PUBLIC_BASE_URL: http://127.0.0.1:8080 is loopback"}))
	id := b.failed(t, 1)[0]
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', failed_step = NULL,
		provisioning_error = NULL, step_started_at = now(), limit_wait_since = now() WHERE id = $1`, id)
	require.NoError(t, err)
	b.tick(t)
	require.Equal(t, map[string]int{"preflight_failing": 2, "server_limit": 1}, open())

	require.NoError(t, q.PreflightPut(ctx, b.pool, []string{}))
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET limit_wait_since = NULL WHERE id = $1`, id)
	require.NoError(t, err)
	b.tick(t)
	require.Empty(t, open())
}
