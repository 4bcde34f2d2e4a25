package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/billing"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/notify/notifytest"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

type bundle struct {
	pool  *pgxpool.Pool
	svc   *billing.Service
	n     *notify.Notifier
	clock *notifytest.Clock
}

var owner = audit.Actor{AdminID: 0, Email: "owner@example.com", IP: "192.0.2.9"}

func setup(t *testing.T) *bundle { t.Helper(); return setupBatch(t, 0) }

// setupBatch is setup with the policy's batch (0: the default).
func setupBatch(t *testing.T, batch int) *bundle {
	t.Helper()
	pool := dbtest.New(t)
	kr, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	cfg, err := config.Load(func(k string) string { return map[string]string{"RACHEL_KEYRING": kr}[k] })
	require.NoError(t, err)
	prov, err := provision.NewService(pool, cfg)
	require.NoError(t, err)
	clock := notifytest.NewClock(time.Now())
	n, err := notify.New(pool, cfg, notify.Options{Clock: clock.Now})
	require.NoError(t, err)
	return &bundle{pool: pool, svc: billing.New(pool, prov, billing.Options{Clock: clock.Now, Notify: n, Batch: batch}), n: n, clock: clock}
}

// readySubscription makes a subscription with a live server.
func (b *bundle) readySubscription(t *testing.T, billingStatus string) int64 {
	t.Helper()
	var id int64
	err := b.pool.QueryRow(context.Background(), `
		WITH c AS (INSERT INTO customers (email, name) VALUES ($1, 'Customer') RETURNING id)
		INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, hetzner_server_id,
		    vps_ip_address, provisioned_at)
		SELECT id, 'personal', $2, 'ready', $3, '192.0.2.10', now() FROM c RETURNING id`,
		fmt.Sprintf("c%d@example.com", time.Now().UnixNano()), billingStatus, time.Now().UnixNano()%1_000_000_000).Scan(&id)
	require.NoError(t, err)
	return id
}

func (b *bundle) status(t *testing.T, id int64) string {
	t.Helper()
	var st *string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT provisioning_status::text FROM subscriptions WHERE id = $1`, id).Scan(&st))
	if st == nil {
		return ""
	}
	return *st
}

func (b *bundle) auditCount(t *testing.T, action, actor string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1 AND admin_email LIKE $2`, action, actor).Scan(&n))
	return n
}

func (b *bundle) token(t *testing.T) *billing.Token {
	t.Helper()
	tok, _, err := b.svc.CreateToken(context.Background(), "billing system", owner)
	require.NoError(t, err)
	row, err := b.svc.Authenticate(context.Background(), "Bearer "+tok, billing.ScopeBilling, "192.0.2.1")
	require.NoError(t, err)
	return row
}

func (b *bundle) report(t *testing.T, tok *billing.Token, key string, id int64, status string) billing.Response {
	t.Helper()
	body := fmt.Sprintf(`{"subscription_id": %d, "billing_status": %q}`, id, status)
	resp, err := b.svc.Report(context.Background(), tok, key, []byte(body), "192.0.2.1")
	require.NoError(t, err)
	return resp
}

func TestCanceledIsDestroyedAfterTheGracePeriodUnlessHeld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.svc.SetPolicy(ctx, billing.PolicyForm{Enabled: true, CanceledDays: 2, PastDueDays: 7}, owner))
	tok := b.token(t)
	doomed := b.readySubscription(t, "active")
	held := b.readySubscription(t, "active")

	for i, id := range []int64{doomed, held} {
		resp := b.report(t, tok, fmt.Sprintf("cancel-%d", i), id, "canceled")
		require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
		var ans billing.StatusAnswer
		require.NoError(t, json.Unmarshal(resp.Body, &ans))
		require.True(t, ans.Changed)
		require.NotNil(t, ans.DestroyAfter)
		require.WithinDuration(t, b.clock.Now().Add(48*time.Hour), *ans.DestroyAfter, time.Second)
	}
	require.NoError(t, b.svc.Hold(ctx, held, owner))

	// A day in: nothing yet, a countdown on the dashboard.
	b.clock.Advance(23 * time.Hour)
	res, err := b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.Result{Held: 1}, res)
	cd, err := b.svc.CountdownOf(ctx, doomed)
	require.NoError(t, err)
	require.NotNil(t, cd)
	require.InDelta(t, (25 * time.Hour).Seconds(), cd.Left.Seconds(), 2)
	scheduled, err := b.svc.Scheduled(ctx, 10)
	require.NoError(t, err)
	require.Len(t, scheduled, 2)

	// The day before: a notification for the one that is not held.
	b.clock.Advance(2 * time.Hour)
	res, err = b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.Result{Warned: 1, Held: 1}, res)
	open, err := b.n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, string(notify.KindBillingDestroySoon), open[0].Kind)
	require.Equal(t, doomed, *open[0].SubscriptionID)
	require.Equal(t, "ready", b.status(t, doomed))

	// The grace period is over: destroyed, by the policy; the held one stays.
	b.clock.Advance(23*time.Hour + time.Minute)
	res, err = b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.Result{Destroyed: 1, Held: 1}, res)
	require.Equal(t, "destroying", b.status(t, doomed))
	require.Equal(t, "ready", b.status(t, held))
	require.Equal(t, 1, b.auditCount(t, "vps.destroy", billing.PolicyActor))
	require.Equal(t, 1, b.auditCount(t, "billing.policy.destroy", billing.PolicyActor))
	open, err = b.n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, open, "the warning is resolved once the destroy runs")

	// Released, the held one goes at the next run.
	require.NoError(t, b.svc.Release(ctx, held, owner))
	res, err = b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Destroyed)
	require.Equal(t, "destroying", b.status(t, held))
	require.Equal(t, 1, b.auditCount(t, "billing.hold", owner.Email))
	require.Equal(t, 1, b.auditCount(t, "billing.release", owner.Email))
}

func TestActiveWithoutServerIsProvisionedAndPolicyOffDoesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		WITH c AS (INSERT INTO customers (email, name) VALUES ('new@example.com', 'New') RETURNING id)
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'trialing' FROM c RETURNING id`).Scan(&id))
	canceled := b.readySubscription(t, "canceled")
	tok := b.token(t)
	require.Equal(t, http.StatusOK, b.report(t, tok, "k1", id, "active").Status)

	// Off: nothing happens, however long.
	b.clock.Advance(30 * 24 * time.Hour)
	res, err := b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.Result{}, res)
	require.Equal(t, "", b.status(t, id))
	require.Equal(t, "ready", b.status(t, canceled))

	require.NoError(t, b.svc.SetPolicy(ctx, billing.PolicyForm{Enabled: true, CanceledDays: 2, PastDueDays: 7}, owner))
	require.Equal(t, 1, b.auditCount(t, "billing.policy", owner.Email))
	res, err = b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Provisioned)
	require.Equal(t, 1, res.Destroyed, "canceled long before the policy was switched on")
	require.Equal(t, "pending", b.status(t, id))
	require.Equal(t, 1, b.auditCount(t, "vps.provision", billing.PolicyActor))
	require.Equal(t, 1, b.auditCount(t, "billing.policy.provision", billing.PolicyActor))

	// Provisioned once: the next run does not provision again.
	res, err = b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Provisioned)
}

func TestRepeatedReportWithTheSameKeyChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tok := b.token(t)
	id := b.readySubscription(t, "active")

	first := b.report(t, tok, "evt_123", id, "past_due")
	require.Equal(t, http.StatusOK, first.Status)
	require.False(t, first.Replayed)
	var since1 time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT status_since FROM billing_lifecycle WHERE subscription_id = $1`, id).Scan(&since1))

	b.clock.Advance(time.Hour)
	again := b.report(t, tok, "evt_123", id, "past_due")
	require.True(t, again.Replayed)
	require.Equal(t, first.Status, again.Status)
	require.JSONEq(t, string(first.Body), string(again.Body))
	var since2 time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT status_since FROM billing_lifecycle WHERE subscription_id = $1`, id).Scan(&since2))
	require.Equal(t, since1, since2)
	require.Equal(t, 1, b.auditCount(t, "billing.status", "api-token:%"))

	// The same key with another body is refused and changes nothing.
	other := b.report(t, tok, "evt_123", id, "canceled")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status)
	var st string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT billing_status FROM subscriptions WHERE id = $1`, id).Scan(&st))
	require.Equal(t, "past_due", st)

	// Bad input is refused with nothing stored; the key is still free for a correct request.
	for body, want := range map[string]int{`{"subscription_id": 1}`: 422, `nope`: 400, `{"subscription_id": 99999, "billing_status": "active"}`: 404,
		`{"subscription_id": 1, "billing_status": "active", "extra": 1}`: 400} {
		resp, err := b.svc.Report(ctx, tok, "evt_bad", []byte(body), "192.0.2.1")
		require.NoError(t, err)
		require.Equal(t, want, resp.Status, body)
	}
	resp, err := b.svc.Report(ctx, tok, "", []byte(`{"subscription_id": 1, "billing_status": "active"}`), "192.0.2.1")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.Status)
	require.Equal(t, http.StatusOK, b.report(t, tok, "evt_bad", id, "active").Status)
}

func TestBadOrRevokedTokenIsRefusedAndAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, h := range []string{"", "Bearer ", "Bearer rcb_not-a-token", "Basic Zm9vOmJhcg=="} {
		_, err := b.svc.Authenticate(ctx, h, billing.ScopeBilling, "198.51.100.7")
		require.ErrorIs(t, err, billing.ErrUnauthorized, h)
	}
	tok, row, err := b.svc.CreateToken(ctx, "stripe bridge", owner)
	require.NoError(t, err)
	require.Regexp(t, `^rcb_[A-Za-z0-9_-]{43}$`, tok)
	var stored []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT token_hash FROM api_tokens WHERE id = $1`, row.ID).Scan(&stored))
	require.NotContains(t, string(stored), tok, "only the hash is stored")

	_, err = b.svc.Authenticate(ctx, "Bearer "+tok, billing.ScopeBilling, "198.51.100.7")
	require.NoError(t, err)
	require.NoError(t, b.svc.RevokeToken(ctx, row.ID, owner))
	_, err = b.svc.Authenticate(ctx, "Bearer "+tok, billing.ScopeBilling, "198.51.100.7")
	require.ErrorIs(t, err, billing.ErrUnauthorized)

	require.Equal(t, 5, b.auditCount(t, "api.refused", "api"))
	var detail, ip string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT detail, ip FROM audit_log WHERE action = 'api.refused' ORDER BY id DESC LIMIT 1`).Scan(&detail, &ip))
	require.Contains(t, detail, `revoked token "stripe bridge"`)
	require.Equal(t, "198.51.100.7", ip)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE detail LIKE '%' || $1 || '%'`, tok[4:]).Scan(&n))
	require.Zero(t, n, "the token is in no audit entry")
	require.Equal(t, 1, b.auditCount(t, "api_token.revoke", owner.Email))
}

// events counts the billing_destroy_soon incidents' events by what ("opened", "resolved").
func (b *bundle) events(t *testing.T) map[string]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT e.what, count(*)::int FROM notify_events e
		JOIN notify_incidents i ON i.id = e.incident_id WHERE i.kind = 'billing_destroy_soon' GROUP BY e.what`)
	require.NoError(t, err)
	out := map[string]int{}
	for rows.Next() {
		var what string
		var n int
		require.NoError(t, rows.Scan(&what, &n))
		out[what] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// TestPolicyPastOneBatch: with more ending subscriptions than a run's batch (3), the "destroy
// soon" notifications all open over a few runs and none is resolved and reopened while its
// subscription stays due within a day; one resolves exactly when its condition goes (held); the
// destroys go on at the next run, past held subscriptions whose status began earlier.
func TestPolicyPastOneBatch(t *testing.T) {
	t.Parallel()
	b := setupBatch(t, 3)
	ctx := context.Background()
	require.NoError(t, b.svc.SetPolicy(ctx, billing.PolicyForm{Enabled: true, CanceledDays: 2, PastDueDays: 7}, owner))
	// Held first, so their status began earliest: a batch read by when the status began would
	// hold only these.
	var held []int64
	for range 3 {
		id := b.readySubscription(t, "canceled")
		require.NoError(t, b.svc.Hold(ctx, id, owner))
		held = append(held, id)
	}
	var ending []int64
	for range 7 {
		ending = append(ending, b.readySubscription(t, "canceled"))
	}

	// Within a day of the destroy: three notifications per run, none resolved.
	b.clock.Advance(25 * time.Hour)
	for i, want := range []int{3, 6, 7, 7, 7} {
		res, err := b.svc.Evaluate(ctx)
		require.NoError(t, err)
		require.Equal(t, billing.Result{Warned: 7, Held: 3}, res, "run %d", i)
		require.Equal(t, map[string]int{"opened": want}, b.events(t), "run %d", i)
	}
	open, err := b.n.OpenIncidents(ctx, 20)
	require.NoError(t, err)
	require.Len(t, open, 7)
	for _, inc := range open {
		require.Contains(t, ending, *inc.SubscriptionID)
		require.Contains(t, inc.Summary, "the billing policy destroys its server at")
	}

	// Held: its notification, and only it, is resolved.
	require.NoError(t, b.svc.Hold(ctx, ending[4], owner))
	res, err := b.svc.Evaluate(ctx)
	require.NoError(t, err)
	require.Equal(t, billing.Result{Warned: 6, Held: 4}, res)
	require.Equal(t, map[string]int{"opened": 7, "resolved": 1}, b.events(t))
	var resolved int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT subscription_id FROM notify_incidents WHERE kind = 'billing_destroy_soon' AND resolved_at IS NOT NULL`).Scan(&resolved))
	require.Equal(t, ending[4], resolved)

	// Due: three destroyed per run, the rest at the next; their notifications resolved as the
	// runs go, the held ones untouched.
	b.clock.Advance(24 * time.Hour)
	for i, want := range []int{3, 3, 0} {
		res, err := b.svc.Evaluate(ctx)
		require.NoError(t, err)
		require.Equal(t, billing.Result{Destroyed: want, Held: 4}, res, "run %d", i)
	}
	for _, id := range ending {
		want := "destroying"
		if id == ending[4] {
			want = "ready"
		}
		require.Equal(t, want, b.status(t, id), "subscription %d", id)
	}
	for _, id := range held {
		require.Equal(t, "ready", b.status(t, id))
	}
	require.Equal(t, 6, b.auditCount(t, "vps.destroy", billing.PolicyActor))
	require.Equal(t, 6, b.auditCount(t, "billing.policy.destroy", billing.PolicyActor))
	require.Equal(t, map[string]int{"opened": 7, "resolved": 7}, b.events(t))
	open, err = b.n.OpenIncidents(ctx, 20)
	require.NoError(t, err)
	require.Empty(t, open)
}
