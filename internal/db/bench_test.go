package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
)

// TestBenchQueries runs the benchmark's seed and reads (queries/bench.sql) on a small fleet: the
// mix of states it promises, the history filled up to the total asked for, and the reads of its
// phases.
func TestBenchQueries(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	q := db.New()

	require.NoError(t, q.BenchSeedSubscriptions(ctx, pool, db.BenchSeedSubscriptionsParams{Column1: 40, Column2: "ssh-ed25519 AAAA provisioner", Column3: "ssh-ed25519 AAAA host"}))
	require.NoError(t, q.BenchSeedEvents(ctx, pool, []string{"ready", "destroyed"}))
	require.NoError(t, q.BenchSeedHistory(ctx, pool, 400))
	require.NoError(t, q.BenchAnalyze(ctx, pool))

	counts, err := q.BenchCounts(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, db.BenchCountsRow{Subscriptions: 40, Events: 400, AuditEntries: 400}, counts)

	// Of every 20: 14 ready, 2 never provisioned, 1 failed, 1 destroyed, 1 cloud_init, 1 creating.
	ids, err := q.BenchInProgress(ctx, pool, db.BenchInProgressParams{States: []string{"creating", "cloud_init"}, N: 500})
	require.NoError(t, err)
	require.Len(t, ids, 4)
	all := make([]int64, 0, 40)
	rows, err := pool.Query(ctx, `SELECT id FROM subscriptions ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		all = append(all, id)
	}
	require.NoError(t, rows.Err())
	states, err := q.BenchCountStates(ctx, pool, all)
	require.NoError(t, err)
	byState := map[string]int64{}
	for _, s := range states {
		byState[s.Status] = s.N
	}
	require.Equal(t, map[string]int64{"ready": 28, "": 4, "failed": 2, "destroyed": 2, "cloud_init": 2, "creating": 2}, byState)

	results, err := q.BenchResults(ctx, pool, all)
	require.NoError(t, err)
	require.Len(t, results, 40)
	failures, err := q.BenchFailures(ctx, pool, all)
	require.NoError(t, err)
	require.Len(t, failures, 2)
	require.Equal(t, "cloud_init", failures[0].Step)
	require.Contains(t, failures[0].Reason, "CALLBACK_DEADLINE")

	bare, err := q.BenchSeedBare(ctx, pool, 3)
	require.NoError(t, err)
	require.Len(t, bare, 3)
	inFlight, err := q.BenchInFlight(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, db.BenchInFlightRow{Waiting: 2, Failed: 2}, inFlight)
}
