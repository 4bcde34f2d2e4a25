package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	require.Contains(t, text, `rachel_hetzner_rate_limit_remaining{project="default"} 3512`)
	require.Contains(t, text, `rachel_http_requests_total{code="200",route="/healthz"} 1`)
	require.Contains(t, text, `go_goroutines`)
	require.NotContains(t, text, "secret-customer")
	require.NotContains(t, text, "Secret Name")
}

// queryCounter counts the queries a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Scrapes are cheap: within the fleet TTL any number of scrapes, concurrent or not, costs the
// three queries of one read; after it, one read again.
func TestScrapeCostIsBounded(t *testing.T) {
	t.Parallel()
	pcfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	require.NoError(t, err)
	var qc queryCounter
	pcfg.ConnConfig.Tracer = &qc
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), `INSERT INTO hetzner_rate_limit (lim, remaining, reset_at) VALUES (3600, 3512, now())`)
	require.NoError(t, err)

	m := metrics.New(pool, nil, metrics.WithFleetTTL(time.Hour))
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		require.Equal(t, 200, rec.Code)
		return rec.Body.String()
	}
	before := qc.n.Load()
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.True(t, strings.Contains(scrape(), `rachel_hetzner_rate_limit_remaining{project="default"} 3512`))
		}()
	}
	wg.Wait()
	require.EqualValues(t, 3, qc.n.Load()-before, "30 scrapes, one read of the fleet gauges")

	// With no TTL every scrape reads again.
	m = metrics.New(pool, nil, metrics.WithFleetTTL(0))
	before = qc.n.Load()
	scrape()
	scrape()
	require.EqualValues(t, 6, qc.n.Load()-before)
}

// A bearer token guards /metrics: nothing without it, nothing with a wrong one.
func TestProtectNeedsTheBearerToken(t *testing.T) {
	t.Parallel()
	h := metrics.Protect(metrics.New(nil, nil).Handler(), "0123456789abcdef")
	for auth, want := range map[string]int{"": 401, "Bearer": 401, "Bearer 0123456789abcdeX": 401, "Basic 0123456789abcdef": 401,
		"Bearer 0123456789abcdef": 200} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, want, rec.Code, "Authorization: %q", auth)
	}
	rec := httptest.NewRecorder()
	metrics.Protect(metrics.New(nil, nil).Handler(), "").ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 401, rec.Code, "no token configured: closed")
}
