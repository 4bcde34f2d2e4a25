package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/billing"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/health"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/provision"
)

func runWork(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("work", "Runs the provisioning worker: the step jobs, the Hetzner action poller, deadlines and the\n"+
		"reconciler. Run as many as you like against one database. SIGTERM stops taking jobs; unfinished ones\n"+
		"are resumed by the next worker.", stderr,
		"DATABASE_URL", "RACHEL_KEYRING", "HCLOUD_TOKEN", "HCLOUD_TOKEN_FILE", "HCLOUD_ENDPOINT", "PUBLIC_BASE_URL",
		"HCLOUD_SERVER_TYPE", "HCLOUD_IMAGE", "HCLOUD_LOCATION", "SSH_KEY_ALGORITHM", "SSH_ALLOWED_SOURCES", "VPS_SSH_PORT",
		"CALLBACK_DEADLINE", "CREATE_DEADLINE", "INJECT_DEADLINE", "METRICS_PORT", "METRICS_TOKEN", "LISTEN_HOST", "LOG_FORMAT",
		"NOTIFY_SMTP_URL", "NOTIFY_WEBHOOK_URL", "NOTIFY_WEBHOOK_SECRET", "NOTIFY_DIGEST_WINDOW",
		"HEALTH_CHECK_INTERVAL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := open(ctx, stderr, 0, "RACHEL_KEYRING", "HCLOUD_TOKEN")
	if err != nil {
		return err
	}
	defer p.pool.Close()
	if err := waitMigrated(ctx, p.pool, p.log); err != nil {
		return err
	}
	m := metrics.New(p.pool, p.log)
	if p.cfg.MetricsPort != 0 {
		stop, err := serveMetrics(p.cfg, m, p.log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return runWorker(ctx, p.pool, p.cfg, p.log, m)
}

// runWorker runs a provisioning worker until ctx ends.
func runWorker(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, log *slog.Logger, m *metrics.Metrics, opts ...provision.Option) error {
	notifier, err := notify.New(pool, cfg, notify.Options{Log: log})
	if err != nil {
		return err
	}
	// The billing policy acts through the same service the web app's buttons use.
	prov, err := provision.NewService(pool, cfg, provision.WithLogger(log))
	if err != nil {
		return err
	}
	policy := billing.New(pool, prov, billing.Options{Notify: notifier, Log: log})
	checker := health.New(pool, cfg, health.Options{Notify: notifier, Log: log})
	opts = append([]provision.Option{provision.WithLogger(log), provision.WithRegistry(m.Registry),
		provision.WithJobs(notifier.Jobs()), provision.WithJobs(policy.Jobs()),
		provision.WithJobs(checker.Jobs(cfg.HealthCheckInterval))}, opts...)
	w, err := provision.NewWorker(pool, cfg, opts...)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// waitMigrated waits for the release step's migrations, so a worker started beside it does not
// run against an old schema.
func waitMigrated(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := database.Current(ctx, pool)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database schema is not current (run `rachel-admin migrate`): %w", err)
		}
		log.Info("waiting for migrations", "reason", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// serveMetrics serves /metrics and /healthz on METRICS_PORT (bound to LISTEN_HOST), apart from
// the public web port; with METRICS_TOKEN set, /metrics needs it here too.
func serveMetrics(cfg *config.Config, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	var h http.Handler = m.Handler()
	if !cfg.MetricsToken.IsZero() {
		h = metrics.Protect(h, cfg.MetricsToken.Reveal())
	}
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", cfg.ListenAddr(cfg.MetricsPort))
	if err != nil {
		return nil, fmt.Errorf("METRICS_PORT %d: %w", cfg.MetricsPort, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
