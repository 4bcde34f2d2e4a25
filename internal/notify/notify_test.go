package notify_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/notify/notifytest"
	"github.com/rachelcloud/admin/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

type bundle struct {
	pool  *pgxpool.Pool
	n     *notify.Notifier
	clock *notifytest.Clock
	smtp  *notifytest.SMTPServer
	hook  *notifytest.WebhookReceiver
	batch int // Options.ScanBatch; 0 for the default
}

// setup gives a notifier with both channels pointing at real receivers, and a River client
// running its jobs. edit may change its environment before the configuration is loaded (and
// b.batch).
func setup(t *testing.T, edit ...func(b *bundle, env map[string]string)) *bundle {
	t.Helper()
	b := &bundle{pool: dbtest.New(t), clock: notifytest.NewClock(time.Now()),
		smtp: notifytest.NewSMTPServer(t), hook: notifytest.NewWebhookReceiver(t)}
	env := map[string]string{
		"NOTIFY_SMTP_URL": b.smtp.URL(), "NOTIFY_WEBHOOK_URL": b.hook.URL,
		"NOTIFY_WEBHOOK_SECRET": notifytest.WebhookSecret, "NOTIFY_DIGEST_WINDOW": "1m",
		"HCLOUD_TOKEN": "hcloud-token-do-not-leak", "PUBLIC_BASE_URL": "https://admin.example.com",
	}
	for _, e := range edit {
		e(b, env)
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	b.n, err = notify.New(b.pool, cfg, notify.Options{Clock: b.clock.Now, RetryBase: 10 * time.Millisecond, ScanBatch: b.batch})
	require.NoError(t, err)
	workers := river.NewWorkers()
	require.NoError(t, b.n.Register(workers))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:  map[string]river.QueueConfig{notify.Queue: {MaxWorkers: 4}},
		Workers: workers, FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() {
		cancel()
		stopCtx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = rc.Stop(stopCtx)
	})
	return b
}

// failed makes n subscriptions whose provisioning failed and returns their IDs.
func (b *bundle) failed(t *testing.T, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		var id int64
		err := b.pool.QueryRow(context.Background(), `
			WITH c AS (INSERT INTO customers (email, name) VALUES ($1, 'Customer') RETURNING id)
			INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, failed_step, provisioning_error)
			SELECT id, 'personal', 'active', 'failed', 'creating', 'Hetzner refused to create server (invalid_input: bad image)' FROM c
			RETURNING id`, fmt.Sprintf("c%d-%d@example.com", time.Now().UnixNano(), i)).Scan(&id)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// tick detects and dispatches as the periodic job does.
func (b *bundle) tick(t *testing.T) {
	t.Helper()
	require.NoError(t, b.n.Tick(context.Background()))
}

// noSecrets checks that nothing sent carries a configured secret.
func (b *bundle) noSecrets(t *testing.T) {
	t.Helper()
	var sent []string
	for _, m := range b.smtp.Mails() {
		sent = append(sent, m.Data)
	}
	for _, h := range b.hook.Hooks() {
		sent = append(sent, h.Text)
	}
	for _, s := range sent {
		for _, secret := range []string{notifytest.SMTPPassword, notifytest.WebhookSecret, "path-secret-do-not-leak", "hcloud-token-do-not-leak"} {
			require.NotContains(t, s, secret)
		}
	}
}

func TestFailureSendsOneEmailAndOneSignedWebhookThenItsResolution(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.failed(t, 1)[0]

	b.tick(t)
	made, err := b.n.Dispatch(context.Background())
	require.NoError(t, err)
	require.Zero(t, made, "the digest window is still open")

	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "one email and one webhook", func() bool { return len(b.smtp.Mails()) == 1 && len(b.hook.Hooks()) == 1 })
	mail := b.smtp.Mails()[0]
	require.Equal(t, []string{"ops@example.com"}, mail.To)
	require.Contains(t, mail.Data, fmt.Sprintf("Subject: [Rachel Cloud] Provisioning failed: subscription #%d", id))
	require.Contains(t, mail.Data, fmt.Sprintf("https://admin.example.com/subscriptions/%d", id))
	hook := b.hook.Hooks()[0]
	require.True(t, strings.HasPrefix(hook.Text, "[Rachel Cloud] Provisioning failed"), hook.Text)
	require.Equal(t, b.clock.Now().Unix(), hook.Timestamp)
	require.Zero(t, b.hook.Rejected())

	// Still failed: seen again, nothing more is sent.
	b.clock.Advance(5 * time.Minute)
	b.tick(t)
	made, err = b.n.Dispatch(context.Background())
	require.NoError(t, err)
	require.Zero(t, made)

	// Destroyed: the incident is resolved, and that is sent once.
	_, err = b.pool.Exec(context.Background(), `UPDATE subscriptions SET provisioning_status = 'destroyed',
		failed_step = NULL, provisioning_error = NULL, deprovisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	b.tick(t)
	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "the resolution", func() bool { return len(b.smtp.Mails()) == 2 && len(b.hook.Hooks()) == 2 })
	require.Contains(t, b.smtp.Mails()[1].Data, "Subject: [Rachel Cloud] Resolved: Provisioning failed")
	require.True(t, strings.HasPrefix(b.hook.Hooks()[1].Text, "[Rachel Cloud] Resolved: Provisioning failed"))

	deliveries, err := b.n.Recent(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, deliveries, 4)
	for _, d := range deliveries {
		require.Equal(t, "sent", d.Status, d.Channel)
	}
	b.noSecrets(t)
}

func TestFiftyFailuresAtOnceSendOneDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.failed(t, 50)
	b.tick(t)
	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "the digest", func() bool { return len(b.smtp.Mails()) == 1 && len(b.hook.Hooks()) == 1 })
	mail := b.smtp.Mails()[0].Data
	require.Contains(t, mail, "Subject: [Rachel Cloud] Digest: 50 incidents opened, 0 resolved")
	require.Contains(t, mail, "Opened — Provisioning failed (50):")
	require.Contains(t, mail, fmt.Sprintf("/subscriptions/%d", ids[49]))
	require.Contains(t, b.hook.Hooks()[0].Text, "Digest: 50 incidents opened")

	// Nothing else goes out: the 50 are one message.
	b.clock.Advance(10 * time.Minute)
	b.tick(t)
	made, err := b.n.Dispatch(context.Background())
	require.NoError(t, err)
	require.Zero(t, made)
	require.Len(t, b.smtp.Mails(), 1)
	b.noSecrets(t)
}

func TestChannelDownIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.hook.Down.Store(true)
	b.smtp.Down.Store(true)
	b.failed(t, 1)
	b.tick(t)
	b.clock.Advance(61 * time.Second)
	b.tick(t)

	// Both deliveries fail and are kept for retry, with the reason.
	testkit.Eventually(t, "both deliveries to fail once", func() bool {
		ds, err := b.n.Recent(context.Background(), 10)
		require.NoError(t, err)
		n := 0
		for _, d := range ds {
			if d.Status == "retrying" && d.Attempts >= 1 && d.LastError != "" {
				n++
			}
		}
		return n == 2
	})
	ds, err := b.n.Recent(context.Background(), 10)
	require.NoError(t, err)
	for _, d := range ds {
		require.NotContains(t, d.LastError, "path-secret-do-not-leak")
		require.NotContains(t, d.LastError, notifytest.SMTPPassword)
	}

	b.hook.Down.Store(false)
	b.smtp.Down.Store(false)
	testkit.Eventually(t, "the retries to deliver", func() bool { return len(b.smtp.Mails()) == 1 && len(b.hook.Hooks()) == 1 })
	testkit.Eventually(t, "both deliveries recorded as sent", func() bool {
		ds, err := b.n.Recent(context.Background(), 10)
		require.NoError(t, err)
		return len(ds) == 2 && ds[0].Status == "sent" && ds[1].Status == "sent" && ds[0].Attempts >= 2 && ds[1].Attempts >= 2
	})
	b.noSecrets(t)
}

func TestOtherIncidentKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.failed(t, 1)
	// Stuck: in creating for longer than the step is expected to take.
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', failed_step = NULL,
		provisioning_error = NULL, step_started_at = $2 WHERE id = $1`, ids[0], b.clock.Now().Add(-time.Hour))
	require.NoError(t, err)
	// The server limit.
	lim := b.failed(t, 1)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_error = $2 WHERE id = $1`, lim[0],
		"Hetzner's project limit is reached, so it would not create the server (server limit exceeded).")
	require.NoError(t, err)
	// An orphan found by the reconciler.
	_, err = b.pool.Exec(ctx, `INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name) VALUES ('orphan', 777, 'rachel-sub-999')`)
	require.NoError(t, err)
	// Preflight failing, as the worker stores its result; assistant down is raised by its package.
	require.NoError(t, db.New().PreflightPut(ctx, b.pool, []string{"image: debian-12 is not available in fsn1"}))
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, []notify.Condition{{Key: "assistant_down:1", Summary: "Assistant of #1 last seen 20 minutes ago"}}))
	b.tick(t)

	open, err := b.n.OpenIncidents(ctx, 50)
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, i := range open {
		kinds[i.Kind]++
	}
	require.Equal(t, map[string]int{"provision_stuck": 1, "provision_failed": 1, "server_limit": 1, "orphan": 1,
		"preflight_failing": 1, "assistant_down": 1}, kinds)

	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "one digest", func() bool { return len(b.smtp.Mails()) == 1 })
	require.Contains(t, b.smtp.Mails()[0].Data, "Digest: 6 incidents opened")

	// Preflight passes again: resolved.
	require.NoError(t, db.New().PreflightPut(ctx, b.pool, []string{}))
	b.tick(t) // the scan resolves it; the next window sends that
	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "the resolution", func() bool { return len(b.smtp.Mails()) == 2 })
	require.Contains(t, b.smtp.Mails()[1].Data, "Resolved: Preflight failing")
}

func TestSignature(t *testing.T) {
	t.Parallel()
	sig := notify.Sign([]byte("k"), "1700000000", []byte(`{"text":"x"}`))
	require.True(t, notify.Verify([]byte("k"), "1700000000", []byte(`{"text":"x"}`), sig))
	require.False(t, notify.Verify([]byte("k"), "1700000001", []byte(`{"text":"x"}`), sig))
	require.False(t, notify.Verify([]byte("other"), "1700000000", []byte(`{"text":"x"}`), sig))
}
