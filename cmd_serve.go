package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/httpapp"
	"github.com/rachelcloud/admin/internal/keyrotation"
	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/statusview"
)

// newFlags returns a flag set whose -h prints the summary, the flags and the environment.
func newFlags(name, summary string, stderr io.Writer, env ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rachel-admin %s [flags]\n\n%s\n", name, summary)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
		if len(env) > 0 {
			fmt.Fprintln(stderr, "\nenvironment:")
			for _, v := range config.Vars {
				for _, e := range env {
					if v.Name == e {
						fmt.Fprintf(stderr, "  %-22s %s\n", v.Name, v.Meaning)
					}
				}
			}
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// newLogger logs JSON in production and text in development, with the context's request and
// subscription IDs on every line and secrets redacted.
func newLogger(format string, w io.Writer) *slog.Logger {
	return logging.New(format, w, slog.LevelInfo)
}

// process is what every subcommand that touches the database starts from.
type process struct {
	cfg  *config.Config
	log  *slog.Logger
	pool *pgxpool.Pool
}

// open reads and checks the configuration (need names the variables the subcommand cannot run
// without) and connects to the database with at most maxConns connections (0: pgx's default).
func open(ctx context.Context, stderr io.Writer, maxConns int32, need ...string) (*process, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.Need(append([]string{"DATABASE_URL"}, need...)...); err != nil {
		return nil, err
	}
	log := newLogger(cfg.LogFormat, stderr)
	pool, err := database.Open(ctx, cfg.DatabaseURL, maxConns)
	if err != nil {
		return nil, err
	}
	return &process{cfg: cfg, log: log, pool: pool}, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "Runs the admin web app. Applies pending migrations first.", stderr,
		"DATABASE_URL", "PORT", "LISTEN_HOST", "RACHEL_KEYRING", "PUBLIC_BASE_URL", "SESSION_IDLE_TIMEOUT", "SESSION_MAX_AGE", "COOKIE_SECURE",
		"TRUST_PROXY", "METRICS_PORT", "METRICS_TOKEN", "LOG_FORMAT",
		"NOTIFY_SMTP_URL", "NOTIFY_WEBHOOK_URL", "NOTIFY_WEBHOOK_SECRET", "BILLING_API_RATE",
		"HEALTH_CHECK_INTERVAL", "CLAUDE_TOKEN_WARN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := open(ctx, stderr, 0, "RACHEL_KEYRING")
	if err != nil {
		return err
	}
	defer p.pool.Close()
	if err := database.Migrate(ctx, p.pool, p.log); err != nil {
		return err
	}
	return serveHTTP(ctx, p.cfg, p.pool, p.log, metrics.New(p.pool, p.log), nil)
}

// authCleanupInterval is how often the web process deletes expired sessions and sign-in records.
const authCleanupInterval = 10 * time.Minute

// serveHTTP runs the web app until ctx ends, then drains in-flight requests. It listens on
// LISTEN_HOST:PORT and on every extra address (make run's real VPSes call back on one).
func serveHTTP(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool, log *slog.Logger, m *metrics.Metrics, ready chan<- string, extra ...string) error {
	prov, err := provision.NewService(pool, cfg, provision.WithLogger(log), provision.WithRegistry(m.Registry))
	if err != nil {
		return err
	}
	status := statusview.New(pool, prov, log)
	go status.ListenForChanges(ctx) // status polls served from memory while nothing changes
	notifier, err := notify.New(pool, cfg, notify.Options{Log: log})
	if err != nil {
		return err
	}
	deps := httpapp.NewDeps(pool, cfg, prov, log)
	deps.Notify, deps.Metrics, deps.Status = notifier, m, status
	// Expired sessions, old sign-in attempts and stale throttle counters go every 10 minutes.
	go deps.Auth.CleanupEvery(ctx, authCleanupInterval, log)
	app := httpapp.New(deps)
	ln, err := net.Listen("tcp", cfg.ListenAddr(cfg.Port))
	if err != nil {
		return fmt.Errorf("PORT %d: %w", cfg.Port, err)
	}
	var extraLns []net.Listener
	for _, a := range extra {
		l, err := net.Listen("tcp", a)
		if err != nil {
			_ = ln.Close()
			for _, l := range extraLns {
				_ = l.Close()
			}
			return fmt.Errorf("listen on %s: %w", a, err)
		}
		extraLns = append(extraLns, l)
	}
	if cfg.MetricsPort != 0 {
		stop, err := serveMetrics(cfg, m, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stop()
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1+len(extraLns))
	go func() { errc <- srv.Serve(ln) }()
	for _, l := range extraLns {
		go func() { errc <- srv.Serve(l) }()
		log.Info("web listening", "addr", l.Addr().String())
	}
	log.Info("web listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("web shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "Applies the database migrations (River's and the app's) and exits.", stderr, "DATABASE_URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := open(ctx, stderr, 2)
	if err != nil {
		return err
	}
	defer p.pool.Close()
	if err := database.Migrate(ctx, p.pool, p.log); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations are current")
	return nil
}

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin", "Creates an admin. The password is read from stdin (one line); with -generate a random one is printed once.", stderr, "DATABASE_URL")
	email := fs.String("email", "", "the admin's email address (required)")
	generate := fs.Bool("generate", false, "generate a password and print it once instead of reading stdin")
	roleName := fs.String("role", string(auth.RoleOwner), "the admin's role: viewer, operator or owner")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		fs.Usage()
		return errors.New("-email is required")
	}
	role, err := auth.ParseRole(*roleName)
	if err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	password := ""
	if *generate {
		password = auth.GeneratePassword()
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	p, err := open(ctx, stderr, 2)
	if err != nil {
		return err
	}
	defer p.pool.Close()
	a, err := auth.NewService(p.pool, p.cfg.SessionIdle, p.cfg.SessionMaxAge).CreateAdminWithRole(ctx, *email, password, role)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "admin %s created (%s)\n", a.Email, a.Role)
	if *generate {
		fmt.Fprintf(stdout, "password: %s\n", password)
	}
	return nil
}

func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rekey", "Re-encrypts every stored secret under the primary (first) key of RACHEL_KEYRING.\n"+
		"Add the new key first in the list, keep the old ones, run rekey, then drop the old keys.", stderr, "DATABASE_URL", "RACHEL_KEYRING")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := open(ctx, stderr, 2, "RACHEL_KEYRING")
	if err != nil {
		return err
	}
	defer p.pool.Close()
	n, err := keyrotation.Rotate(ctx, p.pool, p.cfg.Keyring)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-encrypted %d values under key version %d\n", n, p.cfg.Keyring.Primary())
	return nil
}
