package database_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	schema "github.com/rachelcloud/admin/sql"
)

// TestProjectsMigration: rows from the time of one Hetzner project move into the project named
// "default" (subscriptions that got as far as Hetzner, the rate limit, the learnt server limit,
// the shared firewall, reconciler findings); subscriptions never provisioned or still pending
// are placed later. The down migration keeps the default project's rows.
func TestProjectsMigration(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	p, err := goose.NewProvider(goose.DialectPostgres, stdlib.OpenDBFromPool(pool), schema.Migrations)
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 47)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
		INSERT INTO customers (email, name) VALUES ('m@example.com', 'M');
		INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, hetzner_server_id, vps_hostname, vps_ip_address, provisioned_at)
		SELECT id, 'personal', 'active', 'ready', 4242, 'rachel-x-sub-1', '203.0.113.9', now() FROM customers;
		INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status)
		SELECT id, 'personal', 'active', 'pending' FROM customers;
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM customers;
		INSERT INTO hetzner_rate_limit (lim, remaining, reset_at) VALUES (3600, 3000, now());
		INSERT INTO hetzner_project_limit (server_limit) VALUES (10);
		INSERT INTO hetzner_shared_resources (name, kind, hetzner_id) VALUES ('rachel-x-ssh-only', 'firewall', 7);
		INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name) VALUES ('orphan', 99, 'stray');`)
	require.NoError(t, err)
	_, err = p.Up(ctx)
	require.NoError(t, err)

	rows, err := pool.Query(ctx, `SELECT coalesce(provisioning_status::text, 'none'), coalesce(hetzner_project, '-') FROM subscriptions ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var st, proj string
		require.NoError(t, rows.Scan(&st, &proj))
		got = append(got, st+":"+proj)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"ready:default", "pending:-", "none:-"}, got)
	for table, query := range map[string]string{
		"hetzner_rate_limit":       `SELECT project FROM hetzner_rate_limit`,
		"hetzner_project_limit":    `SELECT project FROM hetzner_project_limit`,
		"hetzner_shared_resources": `SELECT project FROM hetzner_shared_resources`,
		"reconcile_findings":       `SELECT project FROM reconcile_findings`,
	} {
		var proj string
		require.NoError(t, pool.QueryRow(ctx, query).Scan(&proj), table)
		require.Equal(t, "default", proj, table)
	}
	// A second project's budget and firewall sit beside the default's.
	_, err = pool.Exec(ctx, `
		INSERT INTO hetzner_rate_limit (project, lim, remaining, reset_at) VALUES ('b', 3600, 1, now());
		INSERT INTO hetzner_shared_resources (project, name, kind, hetzner_id) VALUES ('b', 'rachel-x-ssh-only', 'firewall', 8);`)
	require.NoError(t, err)

	_, err = p.DownTo(ctx, 47)
	require.NoError(t, err)
	var remaining int
	require.NoError(t, pool.QueryRow(ctx, `SELECT remaining FROM hetzner_rate_limit`).Scan(&remaining))
	require.Equal(t, 3000, remaining, "the default project's budget is the one kept")
	var fw int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT hetzner_id FROM hetzner_shared_resources`).Scan(&fw))
	require.Equal(t, int64(7), fw)
	_, err = p.Up(ctx)
	require.NoError(t, err)
}
