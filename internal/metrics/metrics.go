// Package metrics builds the Prometheus registry the processes expose at /metrics. Gauges that
// describe the whole fleet (subscriptions per status, jobs per state) are read from the database
// when scraped, so every web or worker process reports the same numbers. Nothing here carries a
// secret or customer data: labels are statuses, states, routes and codes only.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rachelcloud/admin/internal/db"
)

// Metrics is a process's registry with the metrics the web layer records itself.
type Metrics struct {
	Registry *prometheus.Registry
	// Requests counts HTTP requests by route and status code.
	Requests *prometheus.CounterVec
}

// New returns a registry with Go and process collectors, the fleet gauges read from pool, and
// the web layer's counters.
func New(pool *pgxpool.Pool, log *slog.Logger) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		reg.MustRegister(&fleetCollector{pool: pool, log: log})
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
	rateLimitDesc     = prometheus.NewDesc("rachel_hetzner_rate_limit_remaining", "Hetzner API requests left in the rate-limit bucket, as last seen by a worker.", nil, nil)
)

// fleetCollector reads the fleet gauges from the database at scrape time.
type fleetCollector struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subscriptionsDesc
	ch <- jobsDesc
	ch <- rateLimitDesc
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rows, err := db.New().SubscriptionCountByStatus(ctx, c.pool)
	if err != nil {
		c.logErr("subscriptions", err)
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(subscriptionsDesc, prometheus.GaugeValue, float64(r.N), r.Status)
	}
	jobRows, err := c.pool.Query(ctx, `SELECT state::text, count(*) FROM river_job GROUP BY 1`)
	if err == nil {
		for jobRows.Next() {
			var state string
			var n int64
			if jobRows.Scan(&state, &n) == nil {
				ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), state)
			}
		}
		jobRows.Close()
		err = jobRows.Err()
	}
	if err != nil {
		c.logErr("jobs", err)
	}
	var remaining *int64
	err = c.pool.QueryRow(ctx, `SELECT (SELECT remaining::bigint FROM hetzner_rate_limit)`).Scan(&remaining)
	if err != nil {
		c.logErr("rate limit", err)
	} else if remaining != nil {
		ch <- prometheus.MustNewConstMetric(rateLimitDesc, prometheus.GaugeValue, float64(*remaining))
	}
}

func (c *fleetCollector) logErr(what string, err error) {
	if c.log != nil {
		c.log.Warn("metrics: read "+what, "error", err)
	}
}
