package customer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
)

// TestExportReadsEverySelectedRowOnce: past one page of rows, in ID order, with the list's
// filters; invalid filters are refused before anything is read, and the writer's error stops it.
func TestExportReadsEverySelectedRowOnce(t *testing.T) {
	t.Parallel()
	s, _, p := setup(t)
	ctx := context.Background()
	// 1,203 subscriptions: every third failed, the rest never provisioned; one customer is findable.
	_, err := p.pool.Exec(ctx, `
		WITH c AS (
			INSERT INTO customers (email, name)
			SELECT 'c' || g || '@example.com', CASE WHEN g = 777 THEN 'Needle Person' ELSE 'Customer ' || g END
			FROM generate_series(1, 1203) g RETURNING id, name)
		INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, failed_step, provisioning_error)
		SELECT id, 'personal', 'active',
			CASE WHEN id % 3 = 0 THEN 'failed'::provisioning_status END,
			CASE WHEN id % 3 = 0 THEN 'creating'::provisioning_status END,
			CASE WHEN id % 3 = 0 THEN 'boom' END
		FROM c`)
	require.NoError(t, err)

	collect := func(params customer.ListParams) ([]db.SubscriptionExportPageRow, error) {
		var rows []db.SubscriptionExportPageRow
		err := s.Export(ctx, params, func(r db.SubscriptionExportPageRow) error {
			rows = append(rows, r)
			return nil
		})
		return rows, err
	}
	all, err := collect(customer.ListParams{})
	require.NoError(t, err)
	require.Len(t, all, 1203, "more than two pages of 500")
	seen := map[int64]bool{}
	for i, r := range all {
		require.False(t, seen[r.ID], "row %d read twice", r.ID)
		seen[r.ID] = true
		if i > 0 {
			require.Greater(t, r.ID, all[i-1].ID, "ID order")
		}
		require.NotEmpty(t, r.CustomerEmail)
	}

	failed, err := collect(customer.ListParams{Status: "failed"})
	require.NoError(t, err)
	require.NotEmpty(t, failed)
	for _, r := range failed {
		require.Equal(t, db.ProvisioningStatusFailed, *r.ProvisioningStatus)
		require.Equal(t, db.ProvisioningStatusCreating, *r.FailedStep)
	}
	none, err := collect(customer.ListParams{Status: "none"})
	require.NoError(t, err)
	require.Equal(t, 1203, len(failed)+len(none), "failed and never provisioned make up the fleet")

	needle, err := collect(customer.ListParams{Search: "needle"})
	require.NoError(t, err)
	require.Len(t, needle, 1)
	require.Equal(t, "Needle Person", needle[0].CustomerName)
	pct, err := collect(customer.ListParams{Search: "100%"})
	require.NoError(t, err)
	require.Empty(t, pct, "% is searched for, not a wildcard")

	for _, bad := range []customer.ListParams{{Status: "exploded"}, {Search: "ab"}, {Sort: "price"}} {
		called := false
		err := s.Export(ctx, bad, func(db.SubscriptionExportPageRow) error { called = true; return nil })
		var fe customer.FieldErrors
		require.ErrorAs(t, err, &fe, "%+v", bad)
		require.False(t, called, "nothing read for %+v", bad)
	}

	stop := errors.New("client went away")
	n := 0
	err = s.Export(ctx, customer.ListParams{}, func(db.SubscriptionExportPageRow) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 10, n, "no row after the writer failed")
}
