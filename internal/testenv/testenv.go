// Package testenv builds what every full-stack test stands on: a fresh PostgreSQL database
// (dbtest), the Hetzner simulator (emulated or real VPSes), a keyring, the public URL the VPSes
// call back to (which also serves the assistant program cloud-init downloads), and the
// configuration for all of them, loaded through internal/config as the processes load it.
//
// It stops short of the provisioning service, the worker and the web app so that the provision
// package's own (internal) tests can use it; internal/teststack adds those for every other
// package.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

// SimToken is the simulator's Hetzner token unless Options.Sim.Token says otherwise.
const SimToken = "test-token"

// Options shape an environment. The zero value is a simulator at 1/100 of Hetzner's durations
// with emulated VPSes, a fresh database and the test log at warning level.
type Options struct {
	// Sim configures the simulator; Token, TimeScale (0.01), SSHPort and RateLimitRefill (1 ms)
	// get test defaults when zero, Logger the environment's. Sim.VPS = hcloudsim.VPSReal boots
	// real Debian containers: the public URL then listens on the gateway address they reach and
	// the deadlines grow to a real boot's.
	Sim hcloudsim.Config
	// SharedSim, when set, is used instead of a new simulator: another installation's Hetzner
	// project. Sim then still names its token and SSH port.
	SharedSim *hcloudsim.Simulator
	// NoSim leaves out the simulator and the Hetzner variables (web tests that never provision).
	NoSim bool
	// DatabaseURL, when set, is the database instead of a fresh migrated one; no pool is opened
	// (the caller may migrate it first, as a release step does).
	DatabaseURL string
	// Env overrides or adds configuration variables (after the defaults and the computed ones).
	// An empty value unsets a variable (the configuration's default applies), but an empty
	// ASSISTANT_ARTIFACT_URL beside a set ASSISTANT_ARTIFACT_SHA256 keeps the fixture's URL.
	Env map[string]string
	// Listen is where the public URL listens (default a loopback port; the gateway address for
	// real VPSes).
	Listen string
	// Log receives the simulator's and the stack's log (default: the test log at warning level).
	Log *slog.Logger
}

// Env is a running environment; everything in it is closed when the test ends.
type Env struct {
	// Pool is the database (nil when Options.DatabaseURL was given).
	Pool *pgxpool.Pool
	// Vars are the configuration variables, as a process would get them.
	Vars map[string]string
	// Config is Vars loaded and validated.
	Config *config.Config
	// Sim is the Hetzner simulator (nil with NoSim).
	Sim *hcloudsim.Simulator
	// Log is the environment's logger.
	Log *slog.Logger
	// Server is the public URL (PUBLIC_BASE_URL): the assistant program at
	// assistantfixture.Path, everything else to the handler set with Handle.
	Server  *httptest.Server
	handler atomic.Pointer[http.Handler]
}

// Handle routes the public URL's requests (but the assistant program's) to h: the web app, or a
// callback endpoint.
func (e *Env) Handle(h http.Handler) { e.handler.Store(&h) }

// Real reports whether the simulator boots real VPSes.
func (e *Env) Real() bool { return e.Sim != nil && e.Sim.VPSMode() == hcloudsim.VPSReal }

// DefaultVars are the configuration every test environment starts from: small ed25519 key pools
// and deadlines fit for a simulator at 1/100 time scale.
func DefaultVars() map[string]string {
	return map[string]string{
		"COOKIE_SECURE": "false", "SSH_KEY_ALGORITHM": "ed25519", "SSH_KEY_POOL_SIZE": "2",
		"CALLBACK_DEADLINE": "20s", "CREATE_DEADLINE": "20s", "INJECT_DEADLINE": "10s", "ASSISTANT_STABLE_FOR": "200ms",
	}
}

// New starts an environment for the test.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	e := &Env{Log: o.Log}
	if e.Log == nil {
		e.Log = testkit.Logger(t, slog.LevelWarn)
	}
	if o.DatabaseURL == "" {
		e.Pool = dbtest.New(t)
		o.DatabaseURL = e.Pool.Config().ConnString()
	}
	real := o.Sim.VPS == hcloudsim.VPSReal || o.SharedSim != nil && o.SharedSim.VPSMode() == hcloudsim.VPSReal

	// Real VPSes reach this machine only at the gateway address: the callback and the assistant
	// program listen there.
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
		if real {
			listen = net.JoinHostPort(realvps.GatewayIP.String(), "0")
		}
	}
	e.Handle(http.NotFoundHandler())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == assistantfixture.Path {
			assistantfixture.Handler().ServeHTTP(w, r) // what cloud-init downloads
			return
		}
		(*e.handler.Load()).ServeHTTP(w, r)
	}))
	ln, err := net.Listen("tcp", listen)
	require.NoError(t, err)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	e.Server = srv

	kr, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	e.Vars = DefaultVars()
	e.Vars["DATABASE_URL"] = o.DatabaseURL
	e.Vars["RACHEL_KEYRING"] = kr
	e.Vars["PUBLIC_BASE_URL"] = srv.URL
	e.Vars["ASSISTANT_ARTIFACT_URL"] = srv.URL + assistantfixture.Path
	e.Vars["ASSISTANT_ARTIFACT_SHA256"] = assistantfixture.SHA256
	if real {
		// Boot, real cloud-init and injection take tens of seconds on a busy machine.
		e.Vars["CALLBACK_DEADLINE"], e.Vars["INJECT_DEADLINE"], e.Vars["ASSISTANT_STABLE_FOR"] = "6m", "3m", "2s"
	}
	if !o.NoSim {
		c := simDefaults(o.Sim, e.Log)
		e.Sim = o.SharedSim
		if e.Sim == nil {
			var err error
			e.Sim, err = hcloudsim.New(c)
			require.NoError(t, err)
			require.NoError(t, e.Sim.Start())
			t.Cleanup(func() { _ = e.Sim.Close() })
		}
		e.Vars["HCLOUD_TOKEN"] = c.Token
		e.Vars["HCLOUD_ENDPOINT"] = e.Sim.Endpoint()
		e.Vars["VPS_SSH_PORT"] = fmt.Sprint(c.SSHPort)
	}
	maps.Copy(e.Vars, o.Env)
	if e.Vars["ASSISTANT_ARTIFACT_URL"] == "" && o.Env["ASSISTANT_ARTIFACT_SHA256"] != "" {
		// A test that sets only the digest gets the fixture's URL with it (a wrong digest).
		e.Vars["ASSISTANT_ARTIFACT_URL"] = srv.URL + assistantfixture.Path
	}
	maps.DeleteFunc(e.Vars, func(_, v string) bool { return v == "" })
	e.Config, err = config.Load(func(k string) string { return e.Vars[k] })
	require.NoError(t, err)
	return e
}

// simDefaults fills in the test defaults of a simulator's configuration (a shared simulator was
// started with the same, so its token and SSH port are these too).
func simDefaults(c hcloudsim.Config, log *slog.Logger) hcloudsim.Config {
	if c.Token == "" {
		c.Token = SimToken
	}
	if c.TimeScale == 0 {
		c.TimeScale = 0.01
	}
	if c.SSHPort == 0 {
		c.SSHPort = hcloudsim.DefaultSSHPort
	}
	if c.RateLimitRefill == 0 {
		c.RateLimitRefill = time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = log
	}
	return c
}

// CallbackHandler takes the VPSes' callbacks (POST /callback/{token}) to handle — the provision
// service's HandleCallback — for environments without the web app: 204 when handled, 404
// otherwise, as the app answers.
func CallbackHandler(handle func(ctx context.Context, token string, form url.Values, remoteAddr string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/callback/")
		if !ok || r.Method != http.MethodPost || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		if err := handle(r.Context(), token, r.PostForm, r.RemoteAddr); err != nil {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// RunWorker runs w until the test ends, or until the returned stop is called (a test that
// restarts workers with another configuration stops the old one first: left running, it would
// keep acting on the old configuration); w must stop by itself when cancelled, within the hang
// guard. stop waits for that and may be called more than once.
func RunWorker(t testing.TB, w interface{ Run(context.Context) error }) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("worker: %v", err)
				}
			case <-time.After(testkit.HangGuard(t)):
				t.Errorf("worker did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
