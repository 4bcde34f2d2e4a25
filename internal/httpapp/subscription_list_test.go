package httpapp_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A page number past the end, however large, shows the last page (it used to overflow the
// query's offset and answer 500); a malformed one shows the first.
func TestSubscriptionListPageOutOfRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `
		WITH c AS (
			INSERT INTO customers (email, name)
			SELECT 'page' || i || '@example.com', 'Page Person ' || lpad(i::text, 2, '0') FROM generate_series(1, 55) i
			RETURNING id)
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM c`)
	require.NoError(t, err)

	for _, page := range []string{"2", "3", "50000000", "99999999999999999999999", "2147483648"} {
		status, body, _ := b.get(t, "/subscriptions?sort=name&page="+page)
		require.Equal(t, http.StatusOK, status, "page=%s", page)
		require.Contains(t, body, "Page 2 of 2", "page=%s", page)
		require.Contains(t, body, "Page Person 55", "page=%s shows the last page's rows", page)
	}
	for _, page := range []string{"0", "-5", "abc", "-99999999999999999999"} {
		status, body, _ := b.get(t, "/subscriptions?sort=name&page="+page)
		require.Equal(t, http.StatusOK, status, "page=%s", page)
		require.Contains(t, body, "Page 1 of 2", "page=%s", page)
	}
}
