// Package metrics builds the Prometheus registry the processes expose at /metrics. Gauges that
// describe the whole fleet (subscriptions per status, jobs per state) are read from the database,
// so every web or worker process reports the same numbers; they are cached for FleetTTL, so any
// number of scrapes costs at most three queries per FleetTTL. Nothing here carries a secret or
// customer data: labels are statuses, states, routes and codes only.
package metrics

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/db"
)

// Metrics is a process's registry with the metrics the web layer records itself.
type Metrics struct {
	Registry *prometheus.Registry
	// Requests counts HTTP requests by route and status code.
	Requests *prometheus.CounterVec
}

// FleetTTL is how long the fleet gauges read from the database are reused: scrapes within it
// (by one scraper or many) cost no query. Prometheus scrapes every 15 s to 1 min by default.
const FleetTTL = 10 * time.Second

// Option changes what New builds.
type Option func(*fleetCollector)

// WithFleetTTL overrides FleetTTL (tests).
func WithFleetTTL(d time.Duration) Option { return func(c *fleetCollector) { c.ttl = d } }

// New returns a registry with Go and process collectors, the fleet gauges read from pool, and
// the web layer's counters.
func New(pool *pgxpool.Pool, log *slog.Logger, opts ...Option) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		fc := &fleetCollector{pool: pool, log: log, ttl: FleetTTL, now: time.Now}
		for _, o := range opts {
			o(fc)
		}
		reg.MustRegister(fc)
	}
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rachel_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.Requests)
	return m
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, Timeout: 5 * time.Second})
}

var (
	subscriptionsDesc = prometheus.NewDesc("rachel_subscriptions", "Subscriptions per provisioning status (none: never provisioned).", []string{"status"}, nil)
	jobsDesc          = prometheus.NewDesc("rachel_jobs", "River jobs per queue state.", []string{"state"}, nil)
	rateLimitDesc     = prometheus.NewDesc("rachel_hetzner_rate_limit_remaining", "Hetzner API requests left in a project's rate-limit bucket, as last seen by a worker.", []string{"project"}, nil)
)

// Protect answers 401 unless the request carries "Authorization: Bearer <token>". It keeps
// /metrics (which shows fleet size, error rates and routes) from anyone who can reach the port.
func Protect(h http.Handler, token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fleetCollector reads the fleet gauges from the database, at most once per ttl; concurrent
// scrapes wait for one read instead of starting their own.
type fleetCollector struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	cached []prometheus.Metric
	readAt time.Time
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subscriptionsDesc
	ch <- jobsDesc
	ch <- rateLimitDesc
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached == nil || c.now().Sub(c.readAt) >= c.ttl {
		c.cached, c.readAt = c.read(), c.now()
	}
	for _, m := range c.cached {
		ch <- m
	}
}

// read queries the three fleet gauges. A failed query leaves its gauges out (and is logged).
func (c *fleetCollector) read() []prometheus.Metric {
	out := []prometheus.Metric{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rows, err := db.New().SubscriptionCountByStatus(ctx, c.pool)
	if err != nil {
		c.logErr("subscriptions", err)
	}
	for _, r := range rows {
		out = append(out, prometheus.MustNewConstMetric(subscriptionsDesc, prometheus.GaugeValue, float64(r.N), r.Status))
	}
	// River's own count (its driver's query, the one River UI shows), every state, zeros included.
	jobs, err := riverpgxv5.New(c.pool).GetExecutor().JobCountByAllStates(ctx, &riverdriver.JobCountByAllStatesParams{})
	if err != nil {
		c.logErr("jobs", err)
	}
	for _, state := range rivertype.JobStates() {
		if n, ok := jobs[state]; ok {
			out = append(out, prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), string(state)))
		}
	}
	// One bucket per Hetzner project.
	budgets, err := db.New().RateLimitList(ctx, c.pool)
	if err != nil {
		c.logErr("rate limit", err)
	}
	for _, b := range budgets {
		out = append(out, prometheus.MustNewConstMetric(rateLimitDesc, prometheus.GaugeValue, float64(b.Remaining), b.Project))
	}
	return out
}

func (c *fleetCollector) logErr(what string, err error) {
	if c.log != nil {
		c.log.Warn("metrics: read "+what, "error", err)
	}
}
