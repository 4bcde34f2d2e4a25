package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/metrics"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestFleetGaugesFromTheDatabase(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO customers (email, name) VALUES ('secret-customer@example.com', 'Secret Name');
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM customers;
		INSERT INTO hetzner_rate_limit (lim, remaining, reset_at) VALUES (3600, 3512, now());`)
	require.NoError(t, err)
	m := metrics.New(pool, nil)
	m.Requests.WithLabelValues("/healthz", "200").Inc()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	require.Contains(t, text, `rachel_subscriptions{status="none"} 1`)
	require.Contains(t, text, `rachel_hetzner_rate_limit_remaining 3512`)
	require.Contains(t, text, `rachel_http_requests_total{code="200",route="/healthz"} 1`)
	require.Contains(t, text, `go_goroutines`)
	require.NotContains(t, text, "secret-customer")
	require.NotContains(t, text, "Secret Name")
}
