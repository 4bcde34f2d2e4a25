package audit_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// TestRecordAndListNewestFirst: what Record writes is what the audit page shows, newest first,
// filtered by each field, paged, with a page past the end shown as the last one.
func TestRecordAndListNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	var custID, subID int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO customers (email, name) VALUES ('c@example.com', 'C') RETURNING id`).Scan(&custID))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO subscriptions (customer_id, plan, billing_status) VALUES ($1, 'personal', 'active') RETURNING id`, custID).Scan(&subID))

	ops := audit.Actor{Email: "ops@example.com", IP: "192.0.2.1"}
	policy := audit.Actor{Email: "policy:billing"}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []struct {
		actor audit.Actor
		entry audit.Entry
	}{
		{ops, audit.Entry{Action: "sign_in"}},
		{ops, audit.Entry{Action: "vps.provision", CustomerID: &custID, SubscriptionID: &subID, Detail: "Provisioning requested"}},
		{policy, audit.Entry{Action: "vps.destroy", CustomerID: &custID, SubscriptionID: &subID, Detail: "grace period over"}},
		{ops, audit.Entry{Action: "vps.retry", SubscriptionID: &subID}},
		{ops, audit.Entry{Action: "sign_out"}},
	} {
		// Each entry in its own transaction, as the services record them with their change.
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return audit.Record(ctx, tx, e.actor, e.entry) }))
		_, err := pool.Exec(ctx, `UPDATE audit_log SET occurred_at = $1 WHERE id = (SELECT max(id) FROM audit_log)`, base.Add(time.Duration(i)*time.Hour))
		require.NoError(t, err)
	}
	actions := func(p *audit.Page) []string {
		var out []string
		for _, r := range p.Rows {
			out = append(out, r.Action)
		}
		return out
	}

	all, err := audit.List(ctx, pool, audit.Filter{}, 1, 50)
	require.NoError(t, err)
	require.Equal(t, []string{"sign_out", "vps.retry", "vps.destroy", "vps.provision", "sign_in"}, actions(all))
	require.Equal(t, &audit.Page{Rows: all.Rows, Total: 5, Page: 1, TotalPages: 1}, all)
	r := all.Rows[3]
	require.Equal(t, "ops@example.com", r.AdminEmail)
	require.Nil(t, r.AdminID, "an actor without an admin ID (the API, a policy) is stored as none")
	require.Equal(t, "192.0.2.1", r.Ip)
	require.Equal(t, custID, *r.CustomerID)
	require.Equal(t, subID, *r.SubscriptionID)
	require.Equal(t, "Provisioning requested", r.Detail)

	policyEmail, destroy := "policy:billing", "vps.destroy"
	since, until := base.Add(time.Hour), base.Add(3*time.Hour)
	for _, tc := range []struct {
		f    audit.Filter
		want []string
	}{
		{audit.Filter{SubscriptionID: &subID}, []string{"vps.retry", "vps.destroy", "vps.provision"}},
		{audit.Filter{AdminEmail: &policyEmail}, []string{"vps.destroy"}},
		{audit.Filter{Action: &destroy}, []string{"vps.destroy"}},
		{audit.Filter{Since: &since, Until: &until}, []string{"vps.destroy", "vps.provision"}},
		{audit.Filter{Since: &until}, []string{"sign_out", "vps.retry"}},
		{audit.Filter{SubscriptionID: &subID, AdminEmail: &policyEmail}, []string{"vps.destroy"}},
		{audit.Filter{Action: &policyEmail}, nil},
	} {
		p, err := audit.List(ctx, pool, tc.f, 1, 50)
		require.NoError(t, err)
		require.Equal(t, tc.want, actions(p), "%+v", tc.f)
		require.EqualValues(t, len(tc.want), p.Total)
		require.Equal(t, 1, p.TotalPages, "an empty selection still has one page")
	}

	// Pages of two: 3 pages; page 2 is the middle; past the end and before the start clamp.
	for page, want := range map[int][]string{1: {"sign_out", "vps.retry"}, 2: {"vps.destroy", "vps.provision"}, 3: {"sign_in"}, 99: {"sign_in"}, 0: {"sign_out", "vps.retry"}} {
		p, err := audit.List(ctx, pool, audit.Filter{}, page, 2)
		require.NoError(t, err)
		require.Equal(t, want, actions(p), "page %d", page)
		require.Equal(t, 3, p.TotalPages)
		require.Equal(t, min(max(page, 1), 3), p.Page)
	}

	got, err := audit.Actions(ctx, pool)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"sign_in", "sign_out", "vps.provision", "vps.destroy", "vps.retry"}, got)
}

// TestListIsBoundedAtMaxRows: past MaxRows entries the page count stops growing and the total
// says "at least" (or, for the whole log, is an estimate): a long log costs the same per page.
func TestListIsBoundedAtMaxRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	_, err := pool.Exec(ctx, `INSERT INTO audit_log (admin_email, action, detail)
		SELECT 'ops@example.com', 'vps.retry', 'entry ' || g FROM generate_series(1, $1::int) g`, audit.MaxRows+5)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Actor{Email: "ops@example.com"}, audit.Entry{Action: "sign_in"})
	}))

	retry := "vps.retry"
	p, err := audit.List(ctx, pool, audit.Filter{Action: &retry}, 1, 100)
	require.NoError(t, err)
	require.True(t, p.Truncated)
	require.True(t, p.AtLeast)
	require.False(t, p.Estimated)
	require.EqualValues(t, audit.MaxRows, p.Total)
	require.Equal(t, audit.MaxRows/100, p.TotalPages, "pages reach MaxRows entries")
	last, err := audit.List(ctx, pool, audit.Filter{Action: &retry}, 1000, 100)
	require.NoError(t, err)
	require.Equal(t, audit.MaxRows/100, last.Page)
	require.Len(t, last.Rows, 100)

	// The whole log: an estimate from the planner once it knows the table, else "at least".
	_, err = pool.Exec(ctx, `ANALYZE audit_log`)
	require.NoError(t, err)
	whole, err := audit.List(ctx, pool, audit.Filter{}, 1, 100)
	require.NoError(t, err)
	require.True(t, whole.Truncated)
	if whole.Estimated {
		require.Greater(t, whole.Total, int64(audit.MaxRows))
		require.False(t, whole.AtLeast)
	} else {
		require.True(t, whole.AtLeast)
		require.EqualValues(t, audit.MaxRows, whole.Total)
	}
	require.Equal(t, "sign_in", whole.Rows[0].Action, "newest first")

	// Record wraps a failure with the action it was recording.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Actor{AdminID: 999999, Email: "ghost@example.com"}, audit.Entry{Action: "admin_role"})
	})
	require.ErrorContains(t, err, "audit admin_role: ")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Equal(t, audit.MaxRows+6, n, "the failed record left nothing")
}
