package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// seedSQL inserts $1 customers (provisioner public key $2, host public key $3) with a subscription each, in a realistic mix of states (of every
// 20: 14 ready, 2 never provisioned, 1 failed, 1 destroyed, 1 waiting for cloud-init, 1 creating),
// with the event timeline and the Hetzner actions a real provisioning leaves.
const seedSQL = `
WITH c AS (
    INSERT INTO customers (email, name, telegram_user_id)
    SELECT format('load-%s@example.com', g), format('Load customer %s', g), 100000 + g
    FROM generate_series(1, $1) g
    RETURNING id
), m AS (
    SELECT id, CASE
        WHEN id % 20 < 14 THEN 'ready'
        WHEN id % 20 < 16 THEN NULL
        WHEN id % 20 = 16 THEN 'failed'
        WHEN id % 20 = 17 THEN 'destroyed'
        WHEN id % 20 = 18 THEN 'cloud_init'
        ELSE 'creating' END::provisioning_status AS st
    FROM c
)
INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status,
    hetzner_server_id, hetzner_ssh_key_id, vps_ip_address, vps_hostname,
    provisioning_error, failed_step, provisioned_at, deprovisioned_at, step_started_at,
    ssh_public_key, ssh_private_key, ssh_host_key_public, ssh_host_key_private, created_at, updated_at)
SELECT id, (ARRAY['personal', 'plus', 'pro'])[1 + id % 3],
    CASE WHEN id % 50 = 0 THEN 'past_due' WHEN id % 97 = 0 THEN 'canceled' ELSE 'active' END,
    st,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN 50000000 + id END,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN 2000000 + id END,
    CASE WHEN st IN ('ready', 'cloud_init') THEN '10.0.0.0'::inet + id END,
    CASE WHEN st IS NOT NULL THEN format('rachel-load-%s', id) END,
    CASE WHEN st = 'failed' THEN 'The VPS did not call back within CALLBACK_DEADLINE (15m0s). Retry connects over SSH anyway; Destroy removes the VPS.' END,
    CASE WHEN st = 'failed' THEN 'cloud_init'::provisioning_status END,
    CASE WHEN st = 'ready' THEN now() - make_interval(days => (id % 400)::int) END,
    CASE WHEN st = 'destroyed' THEN now() - make_interval(days => (id % 30)::int) END,
    CASE WHEN st IS NOT NULL THEN now() - make_interval(secs => (20 + id % 40)::float8) END,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN $2::text END,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN '\x00'::bytea END,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN $3::text END,
    CASE WHEN st IN ('ready', 'failed', 'cloud_init', 'creating') THEN '\x00'::bytea END,
    now() - make_interval(days => (1 + id % 500)::int), now() - make_interval(days => (id % 30)::int)
FROM m`

// seedEventsSQL gives every provisioned seeded subscription a timeline and its finished actions.
const seedEventsSQL = `
WITH events AS (
    INSERT INTO provisioning_events (subscription_id, occurred_at, step, kind, message, actor)
    SELECT s.id, s.step_started_at - make_interval(secs => (90 - 10 * k)::float8),
        (ARRAY['pending', 'creating', 'creating', 'cloud_init', 'cloud_init', 'injecting_secrets', 'injecting_secrets', 'ready'])[k]::provisioning_status,
        (ARRAY['entered', 'entered', 'completed', 'entered', 'completed', 'entered', 'completed', 'entered'])[k],
        (ARRAY['Provisioning requested', 'Creating the SSH key and the server', 'Done', 'Server running', 'Done',
               'Writing the secrets over SSH', 'Done', 'Ready'])[k],
        CASE WHEN k = 1 THEN 'bench@rachel.local' ELSE 'worker' END
    FROM subscriptions s CROSS JOIN generate_series(1, 8) k
    WHERE s.vps_hostname LIKE 'rachel-load-%'
      AND (s.provisioning_status IN ('ready', 'destroyed') OR k <= 4)
    RETURNING 1
)
INSERT INTO hetzner_actions (id, subscription_id, command, status, progress, created_at, finished_at)
SELECT 800000000 + s.id * 2 + a, s.id, (ARRAY['create_server', 'start_server'])[a + 1],
    CASE WHEN s.provisioning_status = 'creating' THEN 'running' ELSE 'success' END,
    CASE WHEN s.provisioning_status = 'creating' THEN 40 ELSE 100 END,
    s.step_started_at, CASE WHEN s.provisioning_status = 'creating' THEN NULL ELSE s.step_started_at + interval '15 seconds' END
FROM subscriptions s CROSS JOIN generate_series(0, 1) a
WHERE s.hetzner_server_id >= 50000000 AND s.provisioning_status <> 'creating'`

// seedHistorySQL adds older history until the tables hold $1 provisioning events and $1 audit
// entries in all: earlier provisionings of the same subscriptions (retried, destroyed and
// provisioned again) and the admin actions behind them, spread over the past year.
const seedHistorySQL = `
WITH n AS (SELECT greatest($1::int - (SELECT count(*) FROM provisioning_events), 0) AS events),
subs AS (SELECT min(id) AS lo, max(id) - min(id) + 1 AS span FROM subscriptions),
ev AS (
    INSERT INTO provisioning_events (subscription_id, occurred_at, step, kind, message, actor)
    SELECT subs.lo + g % subs.span, now() - make_interval(days => (30 + g % 330)::int, secs => (g % 86400)::float8),
        (ARRAY['pending', 'creating', 'cloud_init', 'injecting_secrets', 'ready', 'destroying', 'destroyed'])[1 + g % 7]::provisioning_status,
        (ARRAY['entered', 'info', 'completed', 'error'])[1 + g % 4],
        'Earlier provisioning', 'worker'
    FROM n, subs, generate_series(1, n.events) g
    RETURNING 1
)
INSERT INTO audit_log (occurred_at, admin_email, action, subscription_id, ip, detail)
SELECT now() - make_interval(days => (g % 365)::int, secs => (g % 86400)::float8), 'bench@rachel.local',
    (ARRAY['provision', 'retry', 'destroy', 'customer_update', 'reinject'])[1 + g % 5], subs.lo + g % subs.span, '127.0.0.1', ''
FROM subs, generate_series(1, $1::int) g`

// fragmentPages is how many different subscriptions' fragments the load runs poll.
const fragmentPages = 500

// loadCounts are the requests per (page, clients) of the page-load phase.
var loadCounts = map[string]map[int]int{
	LoadStatic:    {1: 1000, 16: 5000, 64: 10000},
	LoadFragment:  {1: 500, 16: 3000, 64: 6000},
	LoadList:      {1: 200, 16: 2000, 64: 2000},
	LoadDashboard: {1: 200, 16: 2000, 64: 2000},
}

// HistoryPerSubscription is how many provisioning events and audit entries the page-load phase
// puts in the database per subscription (1,000,000 of each at 100,000 subscriptions).
const HistoryPerSubscription = 10

// loadPhase fills the database with subscriptions and measures the polled pages beside a
// static file.
func (b *bench) loadPhase(ctx context.Context, s *stack) error {
	b.progress("inserting %d subscriptions", b.o.Subscriptions)
	start := time.Now()
	access, err := sshkey.GenerateHostKey()
	if err != nil {
		return err
	}
	host, err := sshkey.GenerateHostKey()
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, seedSQL, b.o.Subscriptions, access.Public+" rachel-provisioner", host.Public); err != nil {
		return fmt.Errorf("seed subscriptions: %w", err)
	}
	if _, err := s.pool.Exec(ctx, seedEventsSQL); err != nil {
		return fmt.Errorf("seed events: %w", err)
	}
	if _, err := s.pool.Exec(ctx, seedHistorySQL, b.o.Subscriptions*HistoryPerSubscription); err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions`).Scan(&total); err != nil {
		return err
	}
	b.report.Subscriptions = total
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM provisioning_events), (SELECT count(*) FROM audit_log)`).Scan(
		&b.report.Events, &b.report.AuditEntries); err != nil {
		return err
	}
	// The fragments of subscriptions in progress: what open status pages poll. Each request asks
	// for the next one, as many admins watching different provisionings would.
	rows, err := s.pool.Query(ctx, `SELECT id FROM subscriptions WHERE provisioning_status IN ('creating', 'cloud_init') ORDER BY id LIMIT $1`, fragmentPages)
	if err != nil {
		return fmt.Errorf("pick subscriptions in progress: %w", err)
	}
	fragIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(fragIDs) == 0 {
		return fmt.Errorf("pick subscriptions in progress: %d found: %w", len(fragIDs), err)
	}
	b.report.FragmentPages = len(fragIDs)
	b.progress("%d subscriptions, %d events, %d audit entries in the database (%.1f s)", total, b.report.Events, b.report.AuditEntries, time.Since(start).Seconds())

	var token string
	authSvc := auth.NewService(s.pool, s.cfg.SessionIdle, s.cfg.SessionMaxAge)
	password := auth.GeneratePassword()
	if _, err := authSvc.CreateAdmin(ctx, benchAdmin, password); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	token, _, err = authSvc.SignIn(ctx, benchAdmin, password, "127.0.0.1", "rachel-bench")
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	// The web app's session cookie (httpapp's sessionCookie).
	header := http.Header{"Cookie": {"rachel_session=" + token}}

	var fragURLs []string
	for _, id := range fragIDs {
		fragURLs = append(fragURLs, fmt.Sprintf("%s/subscriptions/%d/status", s.webURL, id))
	}
	pages := []struct {
		name string
		urls []string
		want int
	}{
		{LoadStatic, []string{s.webURL + "/static/app.css"}, http.StatusOK},
		{LoadFragment, fragURLs, http.StatusOK},
		{LoadList, []string{s.webURL + "/subscriptions"}, http.StatusOK},
		{LoadDashboard, []string{s.webURL + "/"}, http.StatusOK},
	}
	for _, c := range []int{1, 16, 64} {
		for _, p := range pages {
			n := max(int(float64(loadCounts[p.name][c])*b.o.LoadScale), c)
			stopProfile := func() {}
			if b.o.WebProfile != "" && p.name == LoadFragment && c == 64 {
				stopProfile = startCPUProfile(b.o.WebProfile)
			}
			res, err := LoadURLs(ctx, p.name, p.urls, header, c, n, p.want)
			stopProfile()
			if err != nil {
				return err
			}
			b.report.Load = append(b.report.Load, res)
			b.progress("%-8s c=%-2d %6d requests: %7.0f req/s, p50 %6.2f ms, p99 %6.2f ms, %d errors",
				p.name, c, res.Requests, res.RPS, res.P50ms, res.P99ms, res.Errors)
		}
	}
	return nil
}
