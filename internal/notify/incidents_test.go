package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/notify/notifytest"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

// openKeys lists the keys of the open incidents by kind.
func (b *bundle) openKeys(t *testing.T) map[string][]string {
	t.Helper()
	incidents, err := b.n.OpenIncidents(context.Background(), 500)
	require.NoError(t, err)
	keys := map[string][]string{}
	for _, i := range incidents {
		keys[i.Kind] = append(keys[i.Kind], i.Key)
	}
	return keys
}

// count runs a count(*) query.
func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// messages are the stored messages' subjects and bodies, oldest first.
func (b *bundle) messages(t *testing.T) (subjects, bodies []string) {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT subject, body FROM notify_messages ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var s, body string
		require.NoError(t, rows.Scan(&s, &body))
		subjects, bodies = append(subjects, s), append(bodies, body)
	}
	require.NoError(t, rows.Err())
	return subjects, bodies
}

// TestIncidentOpensOncePerKeyAndReopensAfterResolve: opening an open incident again changes
// nothing (no second row, no second event), resolving it records one event (only for its own
// kind), and the same condition coming back later is a new incident. An unknown kind is refused
// and stores nothing.
func TestIncidentOpensOncePerKeyAndReopensAfterResolve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	c := notify.Condition{Key: "assistant_down:7", Kind: notify.KindAssistantDown, Summary: "Assistant of #7 last seen 20 minutes ago"}

	opened, err := b.n.OpenBatch(ctx, b.pool, notify.KindAssistantDown, []notify.Condition{c})
	require.NoError(t, err)
	require.Equal(t, 1, opened)
	opened, err = b.n.OpenBatch(ctx, b.pool, notify.KindAssistantDown, []notify.Condition{c, c})
	require.NoError(t, err)
	require.Zero(t, opened, "already open")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notify_incidents WHERE key = $1`, c.Key))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notify_events`))

	open, err := b.n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, open, 1)
	resolved, err := b.n.ResolveIDs(ctx, b.pool, notify.KindOrphan, []int64{open[0].ID})
	require.NoError(t, err)
	require.Zero(t, resolved, "an incident of another kind is left alone")
	resolved, err = b.n.ResolveIDs(ctx, b.pool, notify.KindAssistantDown, []int64{open[0].ID})
	require.NoError(t, err)
	require.Equal(t, 1, resolved)
	resolved, err = b.n.ResolveIDs(ctx, b.pool, notify.KindAssistantDown, []int64{open[0].ID})
	require.NoError(t, err)
	require.Zero(t, resolved, "nothing open to resolve")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notify_events WHERE what = 'resolved'`))

	opened, err = b.n.OpenBatch(ctx, b.pool, notify.KindAssistantDown, []notify.Condition{c})
	require.NoError(t, err)
	require.Equal(t, 1, opened, "the condition came back")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notify_incidents WHERE key = $1`, c.Key))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notify_incidents WHERE key = $1 AND resolved_at IS NULL`, c.Key))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM notify_events`))

	_, err = b.n.OpenBatch(ctx, b.pool, "no_such_kind", []notify.Condition{{Key: "x:1", Summary: "s"}})
	require.ErrorContains(t, err, `unknown incident kind "no_such_kind"`)
	_, err = b.n.ResolveIDs(ctx, b.pool, "no_such_kind", []int64{1})
	require.ErrorContains(t, err, `unknown incident kind "no_such_kind"`)
	require.Zero(t, b.count(t, `SELECT count(*) FROM notify_incidents WHERE key = 'x:1'`))

	// Sync with the same condition twice and a second one: one incident each; without them, resolved.
	cs := []notify.Condition{c, {Key: "assistant_down:8", Summary: "Assistant of #8 last seen 30 minutes ago"}}
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, cs))
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, cs))
	require.ElementsMatch(t, []string{"assistant_down:7", "assistant_down:8"}, b.openKeys(t)["assistant_down"])
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, cs[1:]))
	require.Equal(t, []string{"assistant_down:8"}, b.openKeys(t)["assistant_down"])
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, nil))
	require.Empty(t, b.openKeys(t))
}

// TestStuckIncidentFollowsTheStep: a step is stuck only once it runs past its expected time; the
// incident names the step, so moving on resolves it and being stuck in the next step opens a new one.
func TestStuckIncidentFollowsTheStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.failed(t, 1)[0]
	step := func(status string, startedAgo time.Duration) {
		t.Helper()
		_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = $2, failed_step = NULL,
			provisioning_error = NULL, step_started_at = $3 WHERE id = $1`, id, status, b.clock.Now().Add(-startedAgo))
		require.NoError(t, err)
		require.NoError(t, b.n.Scan(ctx))
	}

	step("creating", provision.ExpectedDuration("creating")-time.Second)
	require.Empty(t, b.openKeys(t), "still within the expected time; the failure resolved")

	b.clock.Advance(2 * time.Second)
	require.NoError(t, b.n.Scan(ctx))
	require.Equal(t, map[string][]string{"provision_stuck": {fmt.Sprintf("provision_stuck:%d:creating", id)}}, b.openKeys(t))
	var summary string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT summary FROM notify_incidents WHERE resolved_at IS NULL`).Scan(&summary))
	require.Contains(t, summary, fmt.Sprintf("Subscription #%d", id))
	require.Contains(t, summary, "in step creating")
	require.Contains(t, summary, "longer than the expected 3m0s")

	step("cloud_init", time.Second)
	require.Empty(t, b.openKeys(t), "moved on: resolved")
	step("cloud_init", provision.ExpectedDuration("cloud_init")+time.Second)
	require.Equal(t, map[string][]string{"provision_stuck": {fmt.Sprintf("provision_stuck:%d:cloud_init", id)}}, b.openKeys(t))

	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = 4242,
		vps_ip_address = '192.0.2.10', provisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, b.n.Scan(ctx))
	require.Empty(t, b.openKeys(t), "ready is no working state")
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notify_incidents WHERE kind = 'provision_stuck' AND resolved_at IS NOT NULL`))
}

// TestServerLimitIsOneIncident: however many provisionings fail by or wait for the server limit,
// there is one server-limit incident; it resolves when none does any more.
func TestServerLimitIsOneIncident(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ids := b.failed(t, 3)
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_error = $2 WHERE id = ANY($1)`, ids[:2],
		provision.ReasonLimitReached+", so it would not create the server (resource_limit_exceeded).")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'pending', failed_step = NULL,
		provisioning_error = NULL, step_started_at = $2, limit_wait_since = $2 WHERE id = $1`, ids[2], b.clock.Now())
	require.NoError(t, err)
	require.NoError(t, b.n.Scan(ctx))
	keys := b.openKeys(t)
	require.Equal(t, []string{"server_limit"}, keys["server_limit"])
	require.Len(t, keys["provision_failed"], 2)
	var summary string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT summary FROM notify_incidents WHERE key = 'server_limit'`).Scan(&summary))
	require.Contains(t, summary, "1 provisioning(s) are waiting for Hetzner's server limit", "the wait is named first")

	// Nobody waits, but two still failed by it: still the same open incident.
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET limit_wait_since = NULL WHERE id = $1`, ids[2])
	require.NoError(t, err)
	require.NoError(t, b.n.Scan(ctx))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notify_incidents WHERE kind = 'server_limit'`))

	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'destroyed', failed_step = NULL,
		provisioning_error = NULL, deprovisioned_at = now() WHERE id = ANY($1)`, ids[:2])
	require.NoError(t, err)
	require.NoError(t, b.n.Scan(ctx))
	require.Empty(t, b.openKeys(t))
}

// TestReconcileFindingsLinkToTheReconcilePage: a ghost found by the reconciler opens an incident
// whose message points at the Reconcile page (not the subscription's), and resolves with its finding.
func TestReconcileFindingsLinkToTheReconcilePage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.failed(t, 1)[0]
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', failed_step = NULL,
		provisioning_error = NULL, hetzner_server_id = 4242, vps_ip_address = '192.0.2.10', provisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name, subscription_id)
		VALUES ('ghost', 4242, 'rachel-sub-x', $1)`, id)
	require.NoError(t, err)
	b.tick(t)
	require.Equal(t, map[string][]string{"ghost": {"ghost:4242"}}, b.openKeys(t))

	b.clock.Advance(61 * time.Second)
	b.tick(t)
	subjects, bodies := b.messages(t)
	require.Equal(t, []string{fmt.Sprintf("[Rachel Cloud] Server gone from Hetzner: subscription #%d", id)}, subjects)
	require.Contains(t, bodies[0], "Server 4242 (rachel-sub-x) is live in the database but gone from Hetzner")
	require.Contains(t, bodies[0], "https://admin.example.com/reconcile\n")
	require.NotContains(t, bodies[0], "/subscriptions/")

	_, err = b.pool.Exec(ctx, `UPDATE reconcile_findings SET resolved_at = now(), resolution = 'marked gone'`)
	require.NoError(t, err)
	b.tick(t)
	require.Empty(t, b.openKeys(t))
}

// TestDigestOrdersOpenedBeforeResolvedAndBoundsItsLines: a window with openings and resolutions
// is one digest, openings first; past 60 lines the rest are counted, not listed.
func TestDigestOrdersOpenedBeforeResolvedAndBoundsItsLines(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var down []notify.Condition
	for i := range 65 {
		down = append(down, notify.Condition{Key: fmt.Sprintf("assistant_down:%d", i), Summary: fmt.Sprintf("Assistant of #%d is down", i)})
	}
	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, down))
	b.clock.Advance(61 * time.Second)
	made, err := b.n.Dispatch(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, made)

	require.NoError(t, b.n.Sync(ctx, notify.KindAssistantDown, nil))
	require.NoError(t, b.n.Sync(ctx, notify.KindBillingDestroySoon, []notify.Condition{{Key: "billing_destroy_soon:1", Summary: "Subscription #1 is destroyed tomorrow"}}))
	// Events of the same window wait for it to close.
	made, err = b.n.Dispatch(ctx)
	require.NoError(t, err)
	require.Zero(t, made)
	b.clock.Advance(61 * time.Second)
	made, err = b.n.Dispatch(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, made)

	subjects, bodies := b.messages(t)
	require.Equal(t, []string{"[Rachel Cloud] Digest: 65 incidents opened, 0 resolved",
		"[Rachel Cloud] Digest: 1 incidents opened, 65 resolved"}, subjects)
	require.Equal(t, 60, strings.Count(bodies[0], "\n- "), bodies[0])
	require.Contains(t, bodies[0], "… and 5 more\n")
	require.Contains(t, bodies[0], "Opened — Assistant down (65):")
	opened := strings.Index(bodies[1], "Opened — Billing destroy due within a day (1):")
	resolved := strings.Index(bodies[1], "Resolved — Assistant down (65):")
	require.True(t, opened >= 0 && resolved > opened, bodies[1])
	require.Contains(t, bodies[1], "- Subscription #1 is destroyed tomorrow (https://admin.example.com/)")
	require.True(t, strings.HasSuffix(bodies[1], "\nDashboard: https://admin.example.com/\n"))
	require.Equal(t, 65+65+1, b.count(t, `SELECT count(*) FROM notify_events WHERE message_id IS NOT NULL`))
}

// TestSecretsInAConditionAreNeverStoredOrSent: a provisioning error quoting a configured secret
// (token, webhook secret, SMTP password) is scrubbed before the incident is stored, so neither
// the database nor any channel sees it.
func TestSecretsInAConditionAreNeverStoredOrSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.failed(t, 1)[0]
	leak := fmt.Sprintf("Hetzner said unauthorized for token hcloud-token-do-not-leak; webhook %s; smtp %s",
		notifytest.WebhookSecret, notifytest.SMTPPassword)
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_error = $2 WHERE id = $1`, id, leak)
	require.NoError(t, err)
	b.tick(t)
	b.clock.Advance(61 * time.Second)
	b.tick(t)

	var summary string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT summary FROM notify_incidents WHERE key = $1`, fmt.Sprintf("provision_failed:%d", id)).Scan(&summary))
	require.Contains(t, summary, "for token "+secrets.Redacted)
	_, bodies := b.messages(t)
	require.Len(t, bodies, 1)
	for _, s := range []string{summary, bodies[0]} {
		for _, secret := range []string{"hcloud-token-do-not-leak", notifytest.WebhookSecret, notifytest.SMTPPassword} {
			require.NotContains(t, s, secret)
		}
	}
	testkit.Eventually(t, "the email and the webhook", func() bool { return len(b.smtp.Mails()) == 1 && len(b.hook.Hooks()) == 1 })
	require.Contains(t, b.smtp.Mails()[0].Data, "Hetzner said unauthorized for token "+secrets.Redacted)
	b.noSecrets(t)
}

// TestSMTPRefusedLoginIsRetriedAndNeverShowsThePassword: a wrong SMTP password keeps the email
// retrying with a reason naming the user, not the password, while the webhook is sent. With the
// right password the one email reaches every recipient.
func TestSMTPRefusedLoginIsRetriedAndNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	b := setup(t, func(b *bundle, env map[string]string) {
		env["NOTIFY_SMTP_URL"] = strings.Replace(b.smtp.URL("ops@example.com", "oncall@example.com"),
			notifytest.SMTPPassword, "wrong-password-do-not-leak", 1)
	})
	ctx := context.Background()
	b.failed(t, 1)
	b.tick(t)
	b.clock.Advance(61 * time.Second)
	b.tick(t)

	testkit.Eventually(t, "the webhook sent and the email retrying", func() bool {
		ds, err := b.n.Recent(ctx, 10)
		require.NoError(t, err)
		byChannel := map[string]notify.Delivery{}
		for _, d := range ds {
			byChannel[d.Channel] = d
		}
		return len(ds) == 2 && byChannel["webhook"].Status == "sent" && byChannel["email"].Status == "retrying" && byChannel["email"].Attempts >= 2
	})
	ds, err := b.n.Recent(ctx, 10)
	require.NoError(t, err)
	for _, d := range ds {
		if d.Channel == "email" {
			require.Contains(t, d.LastError, "SMTP authentication as "+notifytest.SMTPUser)
			require.NotContains(t, d.LastError, "wrong-password-do-not-leak")
		}
	}
	require.Empty(t, b.smtp.Mails())
	require.Len(t, b.hook.Hooks(), 1)

	right := setup(t, func(b *bundle, env map[string]string) {
		env["NOTIFY_SMTP_URL"] = b.smtp.URL("ops@example.com", "oncall@example.com")
	})
	require.NoError(t, right.n.Sync(ctx, notify.KindAssistantDown, []notify.Condition{{Key: "assistant_down:1", Summary: "Assistant of #1 is down"}}))
	right.clock.Advance(61 * time.Second)
	right.tick(t)
	testkit.Eventually(t, "the email", func() bool { return len(right.smtp.Mails()) == 1 })
	require.Equal(t, []string{"ops@example.com", "oncall@example.com"}, right.smtp.Mails()[0].To)
	require.Contains(t, right.smtp.Mails()[0].Data, "To: ops@example.com, oncall@example.com\r\n")
	right.noSecrets(t)
}

// TestEmailLineStartingWithADotArrivesIntact: a summary line beginning with "." (a path such as
// .ssh/authorized_keys) reaches the mailbox as written. The SMTP client dot-stuffs the DATA
// itself (RFC 5321 4.5.2), so stuffing it before would show the reader a doubled dot.
func TestEmailLineStartingWithADotArrivesIntact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.n.Sync(context.Background(), notify.KindAssistantDown, []notify.Condition{{Key: "assistant_down:3",
		Summary: "Assistant of #3 is down:\n.ssh/authorized_keys is missing\n..and so is .profile"}}))
	b.clock.Advance(61 * time.Second)
	b.tick(t)
	testkit.Eventually(t, "the email", func() bool { return len(b.smtp.Mails()) == 1 })
	data := b.smtp.Mails()[0].Data
	require.Contains(t, data, "down:\r\n.ssh/authorized_keys is missing\r\n..and so is .profile\r\n", data)
}

// TestPeriodicJobDetectsAndSends: the worker's periodic job (Jobs: its queue, workers and
// schedule) finds a failed provisioning and, once the digest window passed, sends it — nobody
// calls Tick by hand.
func TestPeriodicJobDetectsAndSends(t *testing.T) {
	t.Parallel()
	b := &bundle{pool: dbtest.New(t), clock: notifytest.NewClock(time.Now()), smtp: notifytest.NewSMTPServer(t)}
	env := map[string]string{"NOTIFY_SMTP_URL": b.smtp.URL(), "NOTIFY_DIGEST_WINDOW": "1m", "PUBLIC_BASE_URL": "https://admin.example.com"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	b.n, err = notify.New(b.pool, cfg, notify.Options{Clock: b.clock.Now, Tick: 50 * time.Millisecond, Log: testkit.Logger(t, slog.LevelWarn)})
	require.NoError(t, err)
	jobs := b.n.Jobs()
	workers := river.NewWorkers()
	require.NoError(t, jobs.Register(workers))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Queues: jobs.Queues, Workers: workers,
		PeriodicJobs: jobs.Periodic, FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() {
		cancel()
		stopCtx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = rc.Stop(stopCtx)
	})

	id := b.failed(t, 1)[0]
	testkit.Eventually(t, "the periodic scan to open the incident", func() bool {
		return len(b.openKeys(t)["provision_failed"]) == 1
	})
	require.Empty(t, b.smtp.Mails(), "the digest window is still open")
	b.clock.Advance(61 * time.Second)
	testkit.Eventually(t, "the periodic dispatch to send it", func() bool { return len(b.smtp.Mails()) == 1 })
	require.Contains(t, b.smtp.Mails()[0].Data, fmt.Sprintf("Subject: [Rachel Cloud] Provisioning failed: subscription #%d", id))
}
