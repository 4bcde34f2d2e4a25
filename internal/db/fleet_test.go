package db_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	schema "github.com/rachelcloud/admin/sql"
)

// fleetTruth is the fleet counted from the table, as FleetSummary and ProjectUsage counted it
// before the totals were maintained.
type fleetTruth struct {
	Servers, Unpriced, Waiting int32
	MonthlyEUR                 float64
	Used                       map[string]int32 // servers held or being created, per project
}

func countFleet(t *testing.T, ctx context.Context, pool *pgxpool.Pool) fleetTruth {
	t.Helper()
	var f fleetTruth
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE hetzner_server_id IS NOT NULL),
		       coalesce(sum(server_price_monthly) FILTER (WHERE hetzner_server_id IS NOT NULL), 0)::float8,
		       count(*) FILTER (WHERE hetzner_server_id IS NOT NULL AND server_price_monthly IS NULL),
		       count(*) FILTER (WHERE limit_wait_since IS NOT NULL AND provisioning_status = 'creating')
		FROM subscriptions`).Scan(&f.Servers, &f.MonthlyEUR, &f.Unpriced, &f.Waiting))
	f.Used = map[string]int32{}
	for _, p := range fleetProjects {
		var n int32
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE hetzner_project = $1
			AND (hetzner_server_id IS NOT NULL OR provisioning_status = 'creating')`, p).Scan(&n))
		f.Used[p] = n
	}
	return f
}

// readFleet is the fleet as the dashboard and placement read it.
func readFleet(t *testing.T, ctx context.Context, pool *pgxpool.Pool) fleetTruth {
	t.Helper()
	q := db.New()
	s, err := q.FleetSummary(ctx, pool)
	require.NoError(t, err)
	f := fleetTruth{Servers: s.Servers, MonthlyEUR: s.MonthlyEur, Unpriced: s.Unpriced, Waiting: s.Waiting, Used: map[string]int32{}}
	usage, err := q.ProjectUsage(ctx, pool, fleetProjects)
	require.NoError(t, err)
	require.Len(t, usage, len(fleetProjects))
	for i, u := range usage {
		require.Equal(t, fleetProjects[i], u.Project, "in the order asked")
		f.Used[u.Project] = u.Used
	}
	return f
}

var fleetProjects = []string{"default", "b", "c"}

// fleetChanges are the statements the workers make, in kind: placements, servers created and
// deleted, prices recorded, waits for the server limit begun and ended, state changes, several
// rows at once, new and removed subscriptions. $1 is a subscription id, $2 a random number.
var fleetChanges = []string{
	`UPDATE subscriptions SET hetzner_project = (ARRAY['default', 'b', 'c', NULL])[$2 % 4 + 1] WHERE id = $1`,
	`UPDATE subscriptions SET hetzner_server_id = 1000000 + $1 * 100 + $2 % 100 WHERE id = $1`,
	`UPDATE subscriptions SET hetzner_server_id = NULL WHERE id = $1`,
	`UPDATE subscriptions SET server_price_monthly = ($2 % 2000) / 100.0 WHERE id = $1`,
	`UPDATE subscriptions SET server_price_monthly = NULL WHERE id = $1`,
	`UPDATE subscriptions SET limit_wait_since = now() WHERE id = $1`,
	`UPDATE subscriptions SET limit_wait_since = NULL WHERE id = $1`,
	`UPDATE subscriptions SET provisioning_status = (ARRAY['pending', 'creating', 'cloud_init', 'injecting_secrets', NULL]::provisioning_status[])[$2 % 5 + 1] WHERE id = $1`,
	`UPDATE subscriptions SET updated_at = now() WHERE id = $1`,
	`UPDATE subscriptions SET provisioning_status = 'creating', hetzner_project = 'b' WHERE id % 7 = $2 % 7 AND $1::bigint > 0`,
	`UPDATE subscriptions SET hetzner_server_id = NULL, server_price_monthly = NULL WHERE id % 11 = $2 % 11 AND $1::bigint > 0`,
	`DELETE FROM subscriptions WHERE id = $1`,
	`INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, hetzner_project, hetzner_server_id, server_price_monthly)
	 SELECT id, 'personal', 'active', 'cloud_init', 'c', 2000000 + $1 * 100 + $2 % 100, 4.51 FROM customers ORDER BY id LIMIT 1`,
}

// TestFleetCountsFollowEveryChange: the maintained fleet totals (migration 00054) equal the table
// counted, after thousands of changes by several writers at once while readers fold the deltas,
// after the migration is applied to a table that already has rows, and after a truncate.
func TestFleetCountsFollowEveryChange(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO customers (email, name) SELECT format('fleet-%s@example.com', g), 'Fleet' FROM generate_series(1, 200) g;
		INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, hetzner_project, hetzner_server_id, server_price_monthly)
		SELECT id, 'personal', 'active', 'cloud_init', (ARRAY['default', 'b', 'c'])[id % 3 + 1],
		       CASE WHEN id % 4 > 0 THEN id END, CASE WHEN id % 5 > 0 THEN 4.51 END
		FROM customers`)
	require.NoError(t, err)
	require.Equal(t, countFleet(t, ctx, pool), readFleet(t, ctx, pool), "after the insert")
	var ids []int64
	rows, err := pool.Query(ctx, `SELECT id FROM subscriptions`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())

	const writers, changes = 4, 400
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 14))
			for range changes {
				sql := fleetChanges[rng.IntN(len(fleetChanges))]
				args := []any{ids[rng.IntN(len(ids))], rng.IntN(1_000_000)}
				if !strings.Contains(sql, "$2") {
					args = args[:1]
				}
				_, err := pool.Exec(ctx, sql, args...)
				// Writers collide on the unique server IDs and lock each other's rows; a
				// refused change changes nothing, which is what is checked.
				if err != nil && !isConstraintOrDeadlock(err) {
					errs <- fmt.Errorf("%s: %w", firstLine(sql), err)
					return
				}
			}
		}()
	}
	go func() { // a reader folding while the writers write
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := db.New().FleetCountsFold(ctx, pool); err != nil {
				errs <- fmt.Errorf("fold: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	for err := range errs {
		require.NoError(t, err)
	}
	want := countFleet(t, ctx, pool)
	require.Positive(t, want.Servers)
	require.Equal(t, want, readFleet(t, ctx, pool), "after concurrent changes and folds")
	require.NoError(t, db.New().FleetCountsFold(ctx, pool))
	var deltas int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM fleet_deltas`).Scan(&deltas))
	require.Zero(t, deltas, "folded")
	require.Equal(t, want, readFleet(t, ctx, pool), "after the last fold")

	// The migration counts the rows that are there when it runs.
	p, err := goose.NewProvider(goose.DialectPostgres, stdlib.OpenDBFromPool(pool), schema.Migrations)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 53)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE subscriptions SET hetzner_project = 'c', provisioning_status = 'creating' WHERE id % 3 = 0`)
	require.NoError(t, err)
	_, err = p.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, countFleet(t, ctx, pool), readFleet(t, ctx, pool), "after the migration")

	_, err = pool.Exec(ctx, `TRUNCATE subscriptions CASCADE`)
	require.NoError(t, err)
	require.Equal(t, fleetTruth{Used: map[string]int32{"default": 0, "b": 0, "c": 0}}, readFleet(t, ctx, pool), "after a truncate")
}

// isConstraintOrDeadlock: a unique or foreign-key violation, or a deadlock two writers ran into.
func isConstraintOrDeadlock(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23505", "23503", "40P01":
		return true
	}
	return false
}
