package health_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/health"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/testkit"
	"github.com/rachelcloud/admin/internal/teststack"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// healthSSHPort is where this package's simulated VPSes serve SSH (each on its own loopback
// address; a port of its own keeps it apart from other packages' simulators).
const healthSSHPort = 22071

var actor = audit.Actor{Email: "ops@example.com", IP: "192.0.2.1"}

func form(email, expires string) customer.Form {
	return customer.Form{
		Email: email, Name: "Ann Example", Plan: "personal", BillingStatus: "active",
		ClaudeAccessToken: "sk-ant-oat01-access-token", ClaudeRefreshToken: "sk-ant-ort01-refresh-token",
		ClaudeTokenExpiresAt: expires,
		TelegramBotToken:     "123456789:AAEhBP0av28bottokenvalue0123456789", OwnerTelegramUserID: "4242",
	}
}

// clock is a settable clock for the checker, so recorded times are exact.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// The health check over real SSH to an emulated VPS: running is up; one failure is not yet down;
// two in a row flag it with when it was last seen running and open an incident; running again
// clears both. A VPS presenting another host key than the pinned one is not trusted: the check
// fails without running anything on it.
func TestCheckAllFlagsAnAssistantDownAfterTwoFailures(t *testing.T) {
	t.Parallel()
	s := teststack.New(t, teststack.Options{Options: testenv.Options{Sim: hcloudsim.Config{SSHPort: healthSSHPort}}, NoWeb: true})
	ctx := context.Background()
	_, id, err := s.Deps.Customers.Create(ctx, form("health@example.com", ""), actor)
	require.NoError(t, err)
	require.NoError(t, s.Service.Provision(ctx, id, actor))
	var sub db.Subscription
	testkit.Eventually(t, fmt.Sprintf("subscription %d ready", id), func() error {
		sub, err = db.New().SubscriptionGet(ctx, s.Pool, id)
		require.NoError(t, err)
		if st := sub.ProvisioningStatus; st == nil || *st != db.ProvisioningStatusReady {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	m := s.Sim.Machine(*sub.HetznerServerID)
	require.NotNil(t, m)

	n, err := notify.New(s.Pool, s.Config, notify.Options{})
	require.NoError(t, err)
	clk := &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	c := health.New(s.Pool, s.Config, health.Options{Notify: n, Clock: clk.Now, Log: s.Log, Timeout: testkit.HangGuard(t)})

	h, err := c.Of(ctx, id)
	require.NoError(t, err)
	require.Nil(t, h, "never checked")

	// Running: up, seen now.
	res, err := c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Up: 1}, res)
	h, err = c.Of(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "up", h.State)
	require.Equal(t, "active (running)", h.Detail)
	require.Zero(t, h.ConsecutiveFailures)
	require.NotNil(t, h.LastSeenAt)
	seen := clk.Now()
	require.True(t, h.LastSeenAt.Equal(seen), "last seen %v, want %v", h.LastSeenAt, seen)

	// The assistant stops, as root on the VPS would stop it.
	_, stderr, status := m.RunAs("root", "systemctl stop "+cloudinit.UnitName, nil)
	require.Zero(t, status, stderr)
	clk.Set(seen.Add(time.Minute))
	res, err = c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1}, res, "one failure is not yet down")
	down, err := c.Down(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, down)
	open, err := n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, open, "nothing notified on one failure")

	clk.Set(seen.Add(2 * time.Minute))
	res, err = c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1, Down: 1}, res)
	down, err = c.Down(ctx, 10)
	require.NoError(t, err)
	require.Len(t, down, 1)
	require.Equal(t, id, down[0].SubscriptionID)
	require.Equal(t, "down", down[0].State)
	require.Equal(t, int32(health.DownAfter), down[0].ConsecutiveFailures)
	require.Contains(t, down[0].Detail, cloudinit.UnitName+" is inactive (dead)")
	require.NotNil(t, down[0].LastSeenAt)
	require.True(t, down[0].LastSeenAt.Equal(seen), "last seen running %v, want %v", down[0].LastSeenAt, seen)
	open, err = n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, string(notify.KindAssistantDown), open[0].Kind)
	require.Contains(t, open[0].Summary, "Last seen running 2026-03-01 10:00 UTC")
	require.Contains(t, open[0].Summary, "health@example.com")

	// Running again: up, no longer flagged, the incident resolved.
	_, stderr, status = m.RunAs("root", "systemctl start "+cloudinit.UnitName, nil)
	require.Zero(t, status, stderr)
	clk.Set(seen.Add(3 * time.Minute))
	res, err = c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Up: 1}, res)
	down, err = c.Down(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, down)
	open, err = n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, open)

	// Another host key pinned: the VPS is not trusted, and no command reaches it.
	other, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `UPDATE subscriptions SET ssh_host_key_public = $2 WHERE id = $1`, id, other.Public)
	require.NoError(t, err)
	before := len(m.Commands())
	res, err = c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1}, res)
	h, err = c.Of(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "unreachable", h.State)
	require.Contains(t, h.Detail, "a wrong host key is refused")
	require.Len(t, m.Commands(), before, "nothing ran on a VPS with another host key")
}

// heldListener accepts TCP connections and never answers; it holds them until `batch` are open
// at once, then closes them all (batch 0: never).
type heldListener struct {
	mu       sync.Mutex
	held     []net.Conn
	accepted int
}

func (h *heldListener) serve(ln net.Listener, batch int) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.accepted++
		h.held = append(h.held, conn)
		if batch > 0 && len(h.held) >= batch {
			for _, c := range h.held {
				_ = c.Close()
			}
			h.held = nil
		}
		h.mu.Unlock()
	}
}

// inFlight counts the checker's open connections (from its dial to its close) and the most at once.
type inFlight struct {
	mu         sync.Mutex
	open, most int
}

func (f *inFlight) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.open++
	f.most = max(f.most, f.open)
	f.mu.Unlock()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		f.done()
		return nil, err
	}
	return &countedConn{Conn: conn, f: f}, nil
}

func (f *inFlight) done() { f.mu.Lock(); f.open--; f.mu.Unlock() }

type countedConn struct {
	net.Conn
	f    *inFlight
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(c.f.done)
	return c.Conn.Close()
}

// readySubscription makes a customer's subscription ready at 127.0.0.1 with real (encrypted)
// keys, as the provisioner leaves it, without a VPS behind it.
func readySubscription(t *testing.T, env *testenv.Env, email string) int64 {
	t.Helper()
	ctx := context.Background()
	_, id, err := customer.NewService(env.Pool, env.Config.Keyring).Create(ctx, form(email, ""), actor)
	require.NoError(t, err)
	kp, err := sshkey.Generate(sshkey.Ed25519, "rachel")
	require.NoError(t, err)
	enc, err := env.Config.Keyring.Encrypt(kp.PrivateKeyPEM, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: id})
	require.NoError(t, err)
	hk, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	_, err = env.Pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = $2,
		vps_ip_address = '127.0.0.1', provisioned_at = now(), ssh_private_key = $3, ssh_public_key = $4,
		ssh_host_key_private = '\x00', ssh_host_key_public = $5 WHERE id = $1`, id, 900000+id, enc, kp.PublicKey, hk.Public)
	require.NoError(t, err)
	return id
}

func envWithListener(t *testing.T) (*testenv.Env, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	return testenv.New(t, testenv.Options{NoSim: true, Env: map[string]string{"VPS_SSH_PORT": port}}), ln
}

// No more VPSes than Options.Concurrency are checked at once: sshd here holds every connection
// until two are open together, so a bound of two is reached but never passed, and every VPS is
// checked.
func TestCheckAllBoundsConcurrency(t *testing.T) {
	t.Parallel()
	env, ln := envWithListener(t)
	held := &heldListener{}
	go held.serve(ln, 2)
	for i := range 4 {
		readySubscription(t, env, fmt.Sprintf("c%d@example.com", i))
	}
	f := &inFlight{}
	c := health.New(env.Pool, env.Config, health.Options{Concurrency: 2, Timeout: testkit.HangGuard(t), Dial: f.dial})
	res, err := c.CheckAll(context.Background())
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 4, Failing: 4}, res)
	held.mu.Lock()
	require.Equal(t, 4, held.accepted)
	held.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Equal(t, 2, f.most, "at most Concurrency checks at once")
	require.Zero(t, f.open, "every connection closed")
}

// A VPS whose sshd accepts and never answers costs Options.Timeout, then counts as unreachable.
func TestCheckAllGivesUpAfterTheTimeout(t *testing.T) {
	t.Parallel()
	env, ln := envWithListener(t)
	go (&heldListener{}).serve(ln, 0)
	id := readySubscription(t, env, "silent@example.com")
	c := health.New(env.Pool, env.Config, health.Options{Timeout: 100 * time.Millisecond})
	res, err := c.CheckAll(context.Background())
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1}, res)
	h, err := c.Of(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "unreachable", h.State)
	require.Equal(t, int32(1), h.ConsecutiveFailures)
}

// The Claude tokens past or within the warning of their expiry are listed soonest first, the
// expired ones marked; one far off and customers without an expiry are not.
func TestExpiringTokens(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoSim: true})
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	customers := customer.NewService(env.Pool, env.Config.Keyring)
	ids := map[string]int64{}
	for email, at := range map[string]string{
		"near@example.com":   now.Add(48 * time.Hour).Format(time.RFC3339),
		"past@example.com":   now.Add(-time.Hour).Format(time.RFC3339),
		"nearer@example.com": now.Add(time.Hour).Format(time.RFC3339),
		"far@example.com":    now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"none@example.com":   "",
	} {
		_, sid, err := customers.Create(ctx, form(email, at), actor)
		require.NoError(t, err)
		ids[email] = sid
	}
	c := health.New(env.Pool, env.Config, health.Options{Clock: func() time.Time { return now }})
	got, err := c.ExpiringTokens(ctx, 7*24*time.Hour)
	require.NoError(t, err)
	var emails []string
	for _, te := range got {
		emails = append(emails, te.Email)
		require.Equal(t, ids[te.Email], te.SubscriptionID)
		require.Equal(t, te.Email == "past@example.com", te.Expired, te.Email)
	}
	require.Equal(t, []string{"past@example.com", "nearer@example.com", "near@example.com"}, emails)
	require.True(t, got[0].ExpiresAt.Equal(now.Add(-time.Hour)))

	got, err = c.ExpiringTokens(ctx, 0)
	require.NoError(t, err)
	require.Len(t, got, 1, "without a warning only the expired")
	require.Equal(t, "past@example.com", got[0].Email)
}

// With more assistants down than a run's NotifyBatch (3), their incidents all open over a few runs
// and none is resolved and reopened while its assistant stays down; one resolves exactly when its
// assistant is no longer down (here: re-injected, so no longer ready).
func TestDownIncidentsPastOneBatch(t *testing.T) {
	t.Parallel()
	env, ln := envWithListener(t)
	go (&heldListener{}).serve(ln, 1) // every connection closed at once: unreachable
	var ids []int64
	for i := range 7 {
		ids = append(ids, readySubscription(t, env, fmt.Sprintf("down%d@example.com", i)))
	}
	ctx := context.Background()
	n, err := notify.New(env.Pool, env.Config, notify.Options{})
	require.NoError(t, err)
	c := health.New(env.Pool, env.Config, health.Options{Notify: n, NotifyBatch: 3, Timeout: testkit.HangGuard(t)})
	events := func() map[string]int {
		rows, err := env.Pool.Query(ctx, `SELECT e.what, count(*)::int FROM notify_events e
			JOIN notify_incidents i ON i.id = e.incident_id WHERE i.kind = 'assistant_down' GROUP BY e.what`)
		require.NoError(t, err)
		out := map[string]int{}
		for rows.Next() {
			var what string
			var k int
			require.NoError(t, rows.Scan(&what, &k))
			out[what] = k
		}
		require.NoError(t, rows.Err())
		return out
	}

	res, err := c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 7, Failing: 7}, res, "one failure is not yet down")
	require.Empty(t, events())
	for i, want := range []int{3, 6, 7, 7, 7} {
		res, err := c.CheckAll(ctx)
		require.NoError(t, err)
		require.Equal(t, health.Result{Checked: 7, Failing: 7, Down: 7}, res, "run %d", i)
		require.Equal(t, map[string]int{"opened": want}, events(), "run %d", i)
	}
	open, err := n.OpenIncidents(ctx, 20)
	require.NoError(t, err)
	require.Len(t, open, 7)
	for _, inc := range open {
		require.Contains(t, ids, *inc.SubscriptionID)
		require.Contains(t, inc.Summary, fmt.Sprintf("The assistant of subscription #%d (down", *inc.SubscriptionID))
		require.Contains(t, inc.Summary, "is unreachable: SSH to 127.0.0.1:")
	}

	_, err = env.Pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'injecting_secrets' WHERE id = $1`, ids[5])
	require.NoError(t, err)
	res, err = c.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 6, Failing: 6, Down: 6}, res)
	require.Equal(t, map[string]int{"opened": 7, "resolved": 1}, events())
	var resolved int64
	require.NoError(t, env.Pool.QueryRow(ctx, `SELECT subscription_id FROM notify_incidents WHERE kind = 'assistant_down' AND resolved_at IS NOT NULL`).Scan(&resolved))
	require.Equal(t, ids[5], resolved)
}

// TestCheckAllRotatesPastOneBatch: with more ready VPSes than a run checks (CheckBatch 2), each
// run checks those never checked, then those checked longest ago: every VPS is checked within
// three runs, and the fourth starts again with the oldest.
func TestCheckAllRotatesPastOneBatch(t *testing.T) {
	t.Parallel()
	env, ln := envWithListener(t)
	go (&heldListener{}).serve(ln, 1) // every connection closed at once: unreachable
	var ids []int64
	for i := range 5 {
		ids = append(ids, readySubscription(t, env, fmt.Sprintf("rot%d@example.com", i)))
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c := health.New(env.Pool, env.Config, health.Options{CheckBatch: 2, Clock: clock, Timeout: testkit.HangGuard(t)})
	ctx := context.Background()
	checks := func() []int32 { // consecutive failures per VPS, in ids' order
		t.Helper()
		out := make([]int32, len(ids))
		for i, id := range ids {
			h, err := c.Of(ctx, id)
			require.NoError(t, err)
			if h != nil {
				out[i] = h.ConsecutiveFailures
			}
		}
		return out
	}
	for run, want := range [][]int32{{1, 1, 0, 0, 0}, {1, 1, 1, 1, 0}, {2, 1, 1, 1, 1}, {2, 2, 2, 1, 1}} {
		res, err := c.CheckAll(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, res.Checked, "run %d", run)
		require.Equal(t, want, checks(), "run %d", run)
		now = now.Add(time.Minute)
	}
}
