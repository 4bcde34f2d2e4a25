package notify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
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

// TestDetectorsPastOneBatch: with more failed, stuck and orphaned rows than one scan's batch
// (here 3, as 5,000 of the default 1,000 would be at 100,000 subscriptions), every incident
// opens within a few scans, lowest ID first, and none is resolved and reopened while its
// condition holds — each scan once recorded only the first rows of a capped list and resolved
// the rest. An incident resolves when its condition goes (retried, ready, moved on, finding
// resolved), more of them than a batch over a few scans; every change is one event.
func TestDetectorsPastOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, func(b *bundle, _ map[string]string) { b.batch = 3 })
	ctx := context.Background()
	events := func(what string) int {
		t.Helper()
		return b.count(t, `SELECT count(*) FROM notify_events WHERE what = $1`, what)
	}
	keys := func(kind string, ids []int64, suffix string) []string {
		var out []string
		for _, id := range ids {
			out = append(out, fmt.Sprintf("%s:%d%s", kind, id, suffix))
		}
		return out
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := b.pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}

	// Eight failed: three, six, then all eight open, lowest ID first; nothing resolves.
	failed := b.failed(t, 8)
	for _, open := range []int{3, 6, 8, 8, 8} {
		require.NoError(t, b.n.Scan(ctx))
		require.ElementsMatch(t, keys("provision_failed", failed[:open], ""), b.openKeys(t)["provision_failed"])
		require.Zero(t, events("resolved"), "nothing resolved while it still failed")
	}
	require.Equal(t, 8, b.count(t, `SELECT count(*) FROM notify_incidents`), "each opened once")
	require.Equal(t, 8, events("opened"))

	// One retried (working, within its step's time), one ready: exactly those resolve.
	exec(`UPDATE subscriptions SET provisioning_status = 'creating', failed_step = NULL, provisioning_error = NULL,
		step_started_at = $2 WHERE id = $1`, failed[6], b.clock.Now())
	exec(`UPDATE subscriptions SET provisioning_status = 'ready', failed_step = NULL, provisioning_error = NULL,
		hetzner_server_id = 4242, vps_ip_address = '192.0.2.10', provisioned_at = now() WHERE id = $1`, failed[1])
	require.NoError(t, b.n.Scan(ctx))
	still := append(append([]int64{failed[0]}, failed[2:6]...), failed[7])
	require.ElementsMatch(t, keys("provision_failed", still, ""), b.openKeys(t)["provision_failed"])
	require.Equal(t, 2, events("resolved"))
	require.Equal(t, 8, b.count(t, `SELECT count(*) FROM notify_incidents`))

	// Five stuck in cloud_init (the retried one is not stuck yet): none within the expected time,
	// then three and five once past it; the retried one joins them past creating's time.
	stuck := still[:5]
	exec(`UPDATE subscriptions SET provisioning_status = 'cloud_init', failed_step = NULL, provisioning_error = NULL,
		step_started_at = $2 WHERE id = ANY($1)`, stuck, b.clock.Now().Add(-provision.ExpectedDuration("cloud_init")+time.Second))
	require.NoError(t, b.n.Scan(ctx))
	require.Empty(t, b.openKeys(t)["provision_stuck"], "within the expected time")
	require.ElementsMatch(t, keys("provision_failed", still[3:], ""), b.openKeys(t)["provision_failed"], "five no longer failed: a batch of three resolved")
	require.NoError(t, b.n.Scan(ctx))
	require.Equal(t, keys("provision_failed", still[5:], ""), b.openKeys(t)["provision_failed"], "and the other two")
	require.Equal(t, 7, events("resolved"))
	b.clock.Advance(2 * time.Second)
	for _, open := range []int{3, 5, 5} {
		require.NoError(t, b.n.Scan(ctx))
		require.ElementsMatch(t, keys("provision_stuck", stuck[:open], ":cloud_init"), b.openKeys(t)["provision_stuck"])
	}
	require.Equal(t, 7, events("resolved"), "no stuck incident resolved while stuck")
	b.clock.Advance(provision.ExpectedDuration("creating"))
	require.NoError(t, b.n.Scan(ctx))
	require.ElementsMatch(t, append(keys("provision_stuck", stuck, ":cloud_init"), fmt.Sprintf("provision_stuck:%d:creating", failed[6])),
		b.openKeys(t)["provision_stuck"])

	// One moves on to its next step (on time there): its incident resolves, the rest stay.
	exec(`UPDATE subscriptions SET provisioning_status = 'injecting_secrets', step_started_at = $2 WHERE id = $1`, stuck[0], b.clock.Now())
	require.NoError(t, b.n.Scan(ctx))
	require.ElementsMatch(t, append(keys("provision_stuck", stuck[1:], ":cloud_init"), fmt.Sprintf("provision_stuck:%d:creating", failed[6])),
		b.openKeys(t)["provision_stuck"])
	require.Equal(t, 8, events("resolved"))

	// Five orphans: all open within two scans; one deleted resolves its incident alone.
	exec(`INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name) SELECT 'orphan', g, 'rachel-sub-' || g FROM generate_series(901, 905) g`)
	require.NoError(t, b.n.Scan(ctx))
	require.NoError(t, b.n.Scan(ctx))
	orphans := keys("orphan", []int64{901, 902, 903, 904, 905}, "")
	require.ElementsMatch(t, orphans, b.openKeys(t)["orphan"])
	exec(`UPDATE reconcile_findings SET resolved_at = now(), resolution = 'deleted' WHERE hetzner_server_id = 903`)
	require.NoError(t, b.n.Scan(ctx))
	require.ElementsMatch(t, append(orphans[:2:2], orphans[3:]...), b.openKeys(t)["orphan"])

	// Everything in order: each incident has one opened event and, if resolved, one resolved.
	require.Equal(t, b.count(t, `SELECT count(*) FROM notify_incidents`), events("opened"))
	require.Equal(t, b.count(t, `SELECT count(*) FROM notify_incidents WHERE resolved_at IS NOT NULL`), events("resolved"))
	require.Equal(t, 9, events("resolved"))
}
