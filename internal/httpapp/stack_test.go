package httpapp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/httpapp"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

// stackSSHPort is where this package's simulated VPSes serve SSH (each on its own loopback
// address); other packages' tests use other ports.
const stackSSHPort = 22031

const stackSimToken = "stack-test-token"

// stackTimings shrink the worker's loops to the simulator's time scale.
func stackTimings() provision.Timings {
	return provision.Timings{
		PollMin: 20 * time.Millisecond, PollMax: 150 * time.Millisecond, Sweep: 150 * time.Millisecond,
		Retry: 50 * time.Millisecond, InjectRetry: 100 * time.Millisecond, Reconcile: time.Hour,
		FetchPoll: 50 * time.Millisecond, JobTimeout: 30 * time.Second, SSHTimeout: 3 * time.Second,
		CallbackGrace: 300 * time.Millisecond,
	}
}

// setupStack runs everything an admin's browser talks to: a database, the simulator (1/100 time
// scale), a provisioning worker, and the app on an httptest server whose URL is PUBLIC_BASE_URL,
// so the simulated VPSes call back into it.
func setupStack(t *testing.T, sim hcloudsim.Config) *testBundle {
	t.Helper()
	pool := dbtest.New(t)
	log := testkit.Logger(t, slog.LevelWarn)

	// Real VPSes reach this machine only at the gateway address: the app (their callback) and the
	// assistant fixture listen there; the browser reaches it too.
	listen := "127.0.0.1:0"
	if sim.VPS == hcloudsim.VPSReal {
		listen = net.JoinHostPort(realvps.GatewayIP.String(), "0")
	}
	serve := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		ln, err := net.Listen("tcp", listen)
		require.NoError(t, err)
		_ = s.Listener.Close()
		s.Listener = ln
		s.Start()
		t.Cleanup(s.Close)
		return s
	}
	var handler atomic.Pointer[http.Handler]
	srv := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	fixture := serve(assistantfixture.Handler()) // what cloud-init downloads

	sim.Token, sim.TimeScale, sim.SSHPort, sim.RateLimitRefill, sim.Logger = stackSimToken, 0.01, stackSSHPort, time.Millisecond, log
	s, err := hcloudsim.New(sim)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Close() })

	kr, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	env := map[string]string{
		"RACHEL_KEYRING": kr, "COOKIE_SECURE": "false", "PUBLIC_BASE_URL": srv.URL,
		"HCLOUD_TOKEN": stackSimToken, "HCLOUD_ENDPOINT": s.Endpoint(),
		"SSH_KEY_ALGORITHM": "ed25519", "SSH_KEY_POOL_SIZE": "2", "VPS_SSH_PORT": fmt.Sprint(stackSSHPort),
		"CALLBACK_DEADLINE": "20s", "CREATE_DEADLINE": "20s", "INJECT_DEADLINE": "10s", "ASSISTANT_STABLE_FOR": "200ms",
		"ASSISTANT_ARTIFACT_URL": fixture.URL + assistantfixture.Path, "ASSISTANT_ARTIFACT_SHA256": assistantfixture.SHA256,
	}
	if sim.VPS == hcloudsim.VPSReal {
		// Boot, real cloud-init and injection take tens of seconds on a busy machine.
		env["CALLBACK_DEADLINE"], env["INJECT_DEADLINE"], env["ASSISTANT_STABLE_FOR"] = "6m", "3m", "2s"
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)

	rl := &provision.RateLimitTracker{}
	hc, err := provision.NewHCloudClient(cfg, rl, nil)
	require.NoError(t, err)
	prov, err := provision.NewService(pool, cfg, provision.WithLogger(log), provision.WithHCloudClient(hc, rl))
	require.NoError(t, err)
	w, err := provision.NewWorker(pool, cfg, provision.WithLogger(log), provision.WithHCloudClient(hc, rl),
		provision.WithTimings(stackTimings()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("worker did not stop")
		}
	})

	authSvc := auth.NewService(pool, cfg.SessionIdle, cfg.SessionMaxAge, auth.WithKeyring(cfg.Keyring))
	_, err = authSvc.CreateAdmin(context.Background(), adminEmail, adminPassword)
	require.NoError(t, err)
	e := httpapp.New(httpapp.Deps{Pool: pool, Config: cfg, Auth: authSvc, Customers: customer.NewService(pool, cfg.Keyring),
		Provision: prov, Log: log})
	var h http.Handler = e
	handler.Store(&h)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testBundle{pool: pool, echo: e, server: srv, client: client, sim: s, prov: prov, cfg: cfg}
}

// waitState polls the database until the subscription is in state.
func (b *testBundle) waitState(t *testing.T, id int64, state db.ProvisioningStatus) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("subscription %d to reach %s", id, state), func() error {
		sub, err := db.New().SubscriptionGet(context.Background(), b.pool, id)
		require.NoError(t, err)
		if sub.ProvisioningStatus != nil && *sub.ProvisioningStatus == state {
			return nil
		}
		if sub.ProvisioningStatus == nil {
			return fmt.Errorf("it has no provisioning status")
		}
		return fmt.Errorf("it is %s", *sub.ProvisioningStatus)
	})
}

// latestSubscription is the ID of the newest subscription.
func (b *testBundle) latestSubscription(t *testing.T) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT max(id) FROM subscriptions`).Scan(&id))
	return id
}
