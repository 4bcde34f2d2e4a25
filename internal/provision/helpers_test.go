package provision

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/testkit"
)

// envHelper marks the test binary re-executed as a worker process (see crash_test.go).
const envHelper = "RACHEL_PROVISION_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) != "" {
		os.Exit(m.Run())
	}
	os.Exit(dbtest.Main(m))
}

// simSSHPort is the port every simulated VPS's sshd listens on (each VPS has its own loopback IP).
const simSSHPort = 22022

const simToken = "test-token"

type bundle struct {
	pool *pgxpool.Pool
	cfg  *config.Config
	env  map[string]string
	sim  *hcloudsim.Simulator
	svc  *Service
	hc   *hcloud.Client
	rl   *RateLimitTracker
	log  *slog.Logger
}

type setupOpts struct {
	env    map[string]string
	sim    hcloudsim.Config
	noWork bool
	// callbackListen is where the callback endpoint listens (default a loopback port).
	callbackListen string
	// sharedSim, when set, is used instead of a new simulator: another installation's Hetzner
	// project.
	sharedSim *hcloudsim.Simulator
}

// setup gives a database, a simulator (time scale 1/100), a callback endpoint wired to the
// service (testenv), and (unless noWork) a running worker.
func setup(t testing.TB, mods ...func(*setupOpts)) *bundle {
	t.Helper()
	o := setupOpts{
		env: map[string]string{"SSH_ALLOWED_SOURCES": "10.0.0.0/8,2001:db8::/32"},
		sim: hcloudsim.Config{Token: simToken, SSHPort: simSSHPort},
	}
	for _, m := range mods {
		m(&o)
	}
	e := testenv.New(t, testenv.Options{Sim: o.sim, SharedSim: o.sharedSim, Env: o.env, Listen: o.callbackListen})
	b := &bundle{pool: e.Pool, cfg: e.Config, env: e.Vars, sim: e.Sim, log: e.Log}
	var err error
	b.rl = &RateLimitTracker{}
	b.hc, err = NewHCloudClient(b.cfg, b.rl, nil)
	require.NoError(t, err)
	b.svc, err = NewService(b.pool, b.cfg, WithLogger(b.log))
	require.NoError(t, err)
	e.Handle(testenv.CallbackHandler(b.svc.HandleCallback))
	if !o.noWork {
		b.startWorker(t)
	}
	return b
}

// startWorker runs a worker until the test ends.
func (b *bundle) startWorker(t testing.TB, opts ...Option) *Worker {
	t.Helper()
	w, err := NewWorker(b.pool, b.cfg, append([]Option{WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings())}, opts...)...)
	require.NoError(t, err)
	testenv.RunWorker(t, w)
	return w
}

var admin = Actor{Email: "ops@example.com", IP: "192.0.2.1"}

// newSubscription creates a customer with all secrets and a subscription.
func (b *bundle) newSubscription(t testing.TB) int64 {
	t.Helper()
	ctx := context.Background()
	q := db.New()
	n := time.Now().UnixNano()
	cust, err := q.CustomerCreate(ctx, b.pool, db.CustomerCreateParams{Email: fmt.Sprintf("c%d@example.com", n), Name: "Customer"})
	require.NoError(t, err)
	enc := func(col, v string) []byte {
		ct, err := b.cfg.Keyring.Encrypt([]byte(v), secrets.AD{Table: "customer_secrets", Column: col, RowID: cust.ID})
		require.NoError(t, err)
		return ct
	}
	_, err = q.CustomerSecretsUpsert(ctx, b.pool, db.CustomerSecretsUpsertParams{
		CustomerID:           cust.ID,
		ClaudeAccessToken:    enc("claude_access_token", "sk-ant-oat01-access"),
		ClaudeRefreshToken:   enc("claude_refresh_token", "sk-ant-ort01-refresh"),
		ClaudeTokenExpiresAt: enc("claude_token_expires_at", "2030-01-02T03:04:05Z"),
		TelegramBotToken:     enc("telegram_bot_token", "123456:ABC-bot"),
		OwnerTelegramUserID:  enc("owner_telegram_user_id", "424242"),
	})
	require.NoError(t, err)
	sub, err := q.SubscriptionCreate(ctx, b.pool, db.SubscriptionCreateParams{CustomerID: cust.ID, Plan: "personal", BillingStatus: "active"})
	require.NoError(t, err)
	return sub.ID
}

func (b *bundle) sub(t testing.TB, id int64) db.Subscription {
	t.Helper()
	s, err := db.New().SubscriptionGet(context.Background(), b.pool, id)
	require.NoError(t, err)
	return s
}

// waitStatus waits until the subscription is in one of the states and returns it.
func (b *bundle) waitStatus(t testing.TB, id int64, want ...db.ProvisioningStatus) db.Subscription {
	t.Helper()
	var s db.Subscription
	testkit.Eventually(t, fmt.Sprintf("subscription %d to reach %v", id, want), func() error {
		s = b.sub(t, id)
		if slices.Contains(want, statusOf(s)) {
			return nil
		}
		return fmt.Errorf("subscription %d is %s (error %q)", id, statusOf(s), deref(s.ProvisioningError))
	})
	return s
}

// events returns the subscription's events as "step kind: message" lines.
func (b *bundle) events(t testing.TB, id int64) []string {
	t.Helper()
	evs, err := db.New().ProvisioningEventList(context.Background(), b.pool, id)
	require.NoError(t, err)
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s %s: %s", e.Step, e.Kind, e.Message))
	}
	return out
}

// name is the subscription's server (and SSH key) name in this bundle's installation.
func (b *bundle) name(id int64) string {
	inst, err := db.New().InstallationID(context.Background(), b.pool)
	if err != nil {
		panic(err)
	}
	return ServerName(inst, id)
}

// inst is this bundle's installation ID.
func (b *bundle) inst(t testing.TB) string {
	t.Helper()
	inst, err := db.New().InstallationID(context.Background(), b.pool)
	require.NoError(t, err)
	return inst
}

// assertClean checks the simulator holds exactly the servers and keys of the given subscriptions
// (by name) and nothing else.
func (b *bundle) assertOnly(t testing.TB, subIDs ...int64) {
	t.Helper()
	var want []string
	for _, id := range subIDs {
		want = append(want, b.name(id))
	}
	var servers, keys []string
	for _, s := range b.sim.Servers() {
		servers = append(servers, s.Name)
	}
	for _, k := range b.sim.SSHKeys() {
		keys = append(keys, k.Name)
	}
	require.ElementsMatch(t, want, servers, "servers in the simulator")
	require.ElementsMatch(t, want, keys, "SSH keys in the simulator")
}
