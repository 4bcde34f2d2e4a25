package database_test

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestMigrateIsCurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	require.NoError(t, database.Current(ctx, pool))
	// Running again changes nothing and fails nothing.
	require.NoError(t, database.Migrate(ctx, pool, nil))
	// River's tables are there (its driver's count answers) and hold no job.
	counts, err := riverpgxv5.New(pool).GetExecutor().JobCountByAllStates(ctx, &riverdriver.JobCountByAllStatesParams{})
	require.NoError(t, err)
	for state, n := range counts {
		require.Zero(t, n, state)
	}
}

func TestConstraints(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	q := db.New()

	c, err := q.CustomerCreate(ctx, pool, db.CustomerCreateParams{Email: "ann@example.com", Name: "Ann"})
	require.NoError(t, err)
	_, err = q.CustomerCreate(ctx, pool, db.CustomerCreateParams{Email: "ann@example.com", Name: "Other"})
	require.Error(t, err, "email is unique")
	_, err = q.CustomerCreate(ctx, pool, db.CustomerCreateParams{Email: "Not An Email", Name: "X"})
	require.Error(t, err, "email must look like one")

	s, err := q.SubscriptionCreate(ctx, pool, db.SubscriptionCreateParams{CustomerID: c.ID, Plan: "personal", BillingStatus: "active"})
	require.NoError(t, err)
	require.Nil(t, s.ProvisioningStatus)

	_, err = q.SubscriptionCreate(ctx, pool, db.SubscriptionCreateParams{CustomerID: c.ID, Plan: "gold", BillingStatus: "active"})
	require.Error(t, err, "unknown plan")

	mustFail := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.Error(t, err, sql)
	}
	mustFail(`UPDATE subscriptions SET provisioning_status = 'failed' WHERE id = $1`, s.ID)
	mustFail(`UPDATE subscriptions SET provisioning_status = 'ready' WHERE id = $1`, s.ID)
	mustFail(`UPDATE subscriptions SET provisioning_status = 'bogus' WHERE id = $1`, s.ID)
	mustFail(`UPDATE subscriptions SET provisioning_error = 'x' WHERE id = $1`, s.ID)
	mustFail(`UPDATE subscriptions SET vps_hostname = 'Not_A_Host' WHERE id = $1`, s.ID)
	mustFail(`UPDATE subscriptions SET ssh_private_key = '\x00' WHERE id = $1`, s.ID)

	_, err = pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', provisioning_error = 'boom', failed_step = 'creating' WHERE id = $1`, s.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', provisioning_error = NULL, failed_step = NULL,
		hetzner_server_id = 1, vps_ip_address = '10.0.0.1', provisioned_at = now() WHERE id = $1`, s.ID)
	require.NoError(t, err)
	mustFail(`UPDATE subscriptions SET provisioning_status = 'destroyed' WHERE id = $1`, s.ID)

	// One VPS cannot belong to two subscriptions.
	c2, err := q.CustomerCreate(ctx, pool, db.CustomerCreateParams{Email: "bob@example.com", Name: "Bob"})
	require.NoError(t, err)
	s2, err := q.SubscriptionCreate(ctx, pool, db.SubscriptionCreateParams{CustomerID: c2.ID, Plan: "pro", BillingStatus: "trialing"})
	require.NoError(t, err)
	mustFail(`UPDATE subscriptions SET hetzner_server_id = 1 WHERE id = $1`, s2.ID)

	got, err := q.SubscriptionGet(ctx, pool, s.ID)
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddr("10.0.0.1"), *got.VpsIpAddress)
	require.WithinDuration(t, time.Now(), *got.ProvisionedAt, time.Minute)
}
