package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/internal/pgcluster"
	"github.com/rachelcloud/admin/internal/secrets"
)

// devDataDir keeps what `make run` needs between runs (ignored by git).
const devDataDir = ".data"

const devAdminEmail = "admin@rachel.local"

// devDefaults are what `make run` sets when the developer has not: listen on loopback only (a
// laptop's admin app is not for the café's network), plain-HTTP cookies, text logs, and a small
// key pool (a laptop need not spend a minute of CPU on 100 RSA keys).
var devDefaults = [][2]string{
	{"LISTEN_HOST", "127.0.0.1"},
	{"COOKIE_SECURE", "false"},
	{"LOG_FORMAT", "text"},
	{"SSH_KEY_POOL_SIZE", "10"},
}

// devEnv fills in what a developer has not set: a private database, a kept keyring, plain-HTTP
// cookies and text logs. It returns the cluster it started, if any.
func devEnv(ctx context.Context, log io.Writer) (*pgcluster.Cluster, error) {
	if err := os.MkdirAll(devDataDir, 0o700); err != nil {
		return nil, err
	}
	setDefault := func(k, v string) {
		if os.Getenv(k) == "" {
			_ = os.Setenv(k, v)
		}
	}
	for _, kv := range devDefaults {
		setDefault(kv[0], kv[1])
	}
	if os.Getenv("RACHEL_KEYRING") == "" {
		kr, err := keptSecret(filepath.Join(devDataDir, "keyring"), secrets.GenerateKeyring)
		if err != nil {
			return nil, fmt.Errorf("dev keyring: %w", err)
		}
		_ = os.Setenv("RACHEL_KEYRING", kr)
	}
	var cluster *pgcluster.Cluster
	if os.Getenv("DATABASE_URL") == "" {
		fmt.Fprintln(log, "DATABASE_URL is unset: starting a private PostgreSQL in", filepath.Join(devDataDir, "pg"))
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(devDataDir, "pg")})
		if err != nil {
			return nil, err
		}
		cluster = c
		_ = os.Setenv("DATABASE_URL", c.URL("postgres"))
	}
	return cluster, nil
}

// keptSecret reads a value from path, or makes one and keeps it there (mode 0600).
func keptSecret(path string, make func() (string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// ensureDevAdmin makes sure the dev admin exists and returns its password (kept in .data).
func ensureDevAdmin(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config) (string, error) {
	pwFile := filepath.Join(devDataDir, "admin-password")
	password, err := keptSecret(pwFile, func() (string, error) { return auth.GeneratePassword(), nil })
	if err != nil {
		return "", err
	}
	svc := auth.NewService(pool, cfg.SessionIdle, cfg.SessionMaxAge)
	if _, err := svc.CreateAdmin(ctx, devAdminEmail, password); err != nil {
		// Already there: reset its password to the kept one so the printed login works.
		if serr := svc.SetPassword(ctx, devAdminEmail, password); serr != nil {
			return "", errors.Join(err, serr)
		}
	}
	return password, nil
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", "Runs everything in one process for development: a private PostgreSQL (when DATABASE_URL\n"+
		"is unset), migrations, the Hetzner simulator (when HCLOUD_TOKEN is unset), the web app and the worker.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cluster, err := devEnv(ctx, stdout)
	if err != nil {
		return err
	}
	if cluster != nil {
		defer cluster.Stop()
	}
	p, err := open(ctx, stderr, 0, "RACHEL_KEYRING")
	if err != nil {
		return err
	}
	defer p.pool.Close()
	cfg, log, pool := p.cfg, p.log, p.pool
	if err := database.Migrate(ctx, pool, log); err != nil {
		return err
	}
	password, err := ensureDevAdmin(ctx, pool, cfg)
	if err != nil {
		return fmt.Errorf("dev admin: %w", err)
	}
	m := metrics.New(pool, log)
	stopBackground, extra, err := startDevBackground(ctx, cfg, pool, log, m, stdout)
	if err != nil {
		return err
	}
	defer stopBackground()

	ready := make(chan string, 1)
	go func() {
		addr := <-ready
		port := addr[strings.LastIndex(addr, ":")+1:]
		fmt.Fprintf(stdout, "\nRachel Cloud admin is running at http://127.0.0.1:%s/\n  sign in as %s\n  password   %s\n(Ctrl-C stops it; data is kept in %s/)\n\n",
			port, devAdminEmail, password, devDataDir)
	}()
	return serveHTTP(ctx, cfg, pool, log, m, ready, extra...)
}

// startDevBackground starts what runs beside the web app in dev: the simulator (when no Hetzner
// token is given) and the worker. cfg is pointed at the simulator. extra are addresses the web
// app must listen on as well (where real VPSes call back).
func startDevBackground(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool, log *slog.Logger, m *metrics.Metrics, out io.Writer) (stop func(), extra []string, err error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if len(cfg.HCloudProjects()) == 0 {
		token := auth.RandomToken(24)
		// SIM_PROJECTS simulated projects: HCLOUD_TOKEN's ("default") and p2, p3, … beside it.
		var more []hcloudsim.ProjectConfig
		for i := 2; i <= cfg.SimProjects; i++ {
			more = append(more, hcloudsim.ProjectConfig{Name: fmt.Sprintf("p%d", i), Token: auth.RandomToken(24)})
		}
		sim, err := hcloudsim.New(hcloudsim.Config{Token: token, TimeScale: cfg.SimTimeScale,
			VPS: cfg.SimVPS, Logger: log.With("component", "hcloudsim"), Projects: more})
		if err != nil {
			return nil, nil, err
		}
		if err := sim.Start(); err != nil {
			return nil, nil, err
		}
		stops = append(stops, func() { _ = sim.Close() })
		cfg.HCloudToken = secrets.NewSecret(token)
		cfg.Projects = []config.Project{{Name: config.DefaultProject, Token: cfg.HCloudToken}}
		for _, p := range more {
			cfg.Projects = append(cfg.Projects, config.Project{Name: p.Name, Token: secrets.NewSecret(p.Token)})
		}
		cfg.HCloudEndpoint = sim.Endpoint()
		if cfg.SimVPS == hcloudsim.VPSReal {
			extra = useGatewayForCallbacks(cfg, out)
		} else {
			cfg.VPSSSHPort = hcloudsim.DefaultSSHPort
		}
		fmt.Fprintf(out, "HCLOUD_TOKEN is unset: using the built-in Hetzner simulator at %s (time scale %g, %s VPSes, projects %s)\n", sim.URL(), cfg.SimTimeScale, cfg.SimVPS, strings.Join(cfg.ProjectNames(), ", "))
		if cfg.AssistantArtifactURL == "" {
			// The VPSes download the assistant like real ones: serve the test fixture where they
			// reach it (a real container: this machine's side of its veth).
			host := "127.0.0.1"
			if cfg.SimVPS == hcloudsim.VPSReal {
				host = realvps.GatewayIP.String()
			}
			fx, err := assistantfixture.Start(net.JoinHostPort(host, "0"))
			if err != nil {
				stopAll()
				return nil, nil, err
			}
			stops = append(stops, func() { _ = fx.Close() })
			cfg.AssistantArtifactURL, cfg.AssistantArtifactSHA256 = fx.URL(), assistantfixture.SHA256
			fmt.Fprintf(out, "ASSISTANT_ARTIFACT_URL is unset: the VPSes install the test assistant from %s\n", fx.URL())
		}
	}
	workCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := runWorker(workCtx, pool, cfg, log.With("process", "worker"), m); err != nil && workCtx.Err() == nil {
			log.Error("worker stopped", "error", err)
		}
	}()
	stops = append(stops, func() { cancel(); <-done })
	return stopAll, extra, nil
}

// useGatewayForCallbacks points the VPS callback at the address real VPSes reach this machine
// at, when PUBLIC_BASE_URL names a loopback address they cannot reach, and returns the address
// the web app must listen on as well (none when LISTEN_HOST is every interface). The gateway
// address is local to this machine: listening there exposes nothing to the network.
func useGatewayForCallbacks(cfg *config.Config, out io.Writer) []string {
	u, err := url.Parse(cfg.PublicBaseURL)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil
	}
	addr := net.JoinHostPort(realvps.GatewayIP.String(), strconv.Itoa(cfg.Port))
	u.Host = addr
	cfg.PublicBaseURL = u.String()
	fmt.Fprintf(out, "SIM_VPS=real: real VPSes call back at %s (this machine's side of their veth)\n", cfg.PublicBaseURL)
	if h := net.ParseIP(cfg.ListenHost); cfg.ListenHost == "" || (h != nil && h.IsUnspecified()) {
		return nil
	}
	return []string{addr}
}
