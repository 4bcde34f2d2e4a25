-- The benchmark's data (rachel-admin bench, internal/bench): a realistic database to load the
-- pages against and the reads of its phases. Nothing else runs these.

-- name: BenchSeedSubscriptions :exec
-- $1 customers (provisioner public key $2, host public key $3) with a subscription each, in a realistic mix of states (of every 20: 14 ready, 2
-- never provisioned, 1 failed, 1 destroyed, 1 waiting for cloud-init, 1 creating).
WITH c AS (
    INSERT INTO customers (email, name, telegram_user_id)
    SELECT format('load-%s@example.com', g), format('Load customer %s', g), 100000 + g
    FROM generate_series(1, $1::int) g
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
FROM m;

-- name: BenchSeedEvents :exec
-- Every provisioned seeded subscription's timeline (the whole one for those in the states $1, the
-- first half for the others) and its finished Hetzner actions.
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
      AND (s.provisioning_status::text = ANY($1::text[]) OR k <= 4)
    RETURNING 1
)
INSERT INTO hetzner_actions (id, subscription_id, command, status, progress, created_at, finished_at)
SELECT 800000000 + s.id * 2 + a, s.id, (ARRAY['create_server', 'start_server'])[a + 1],
    CASE WHEN s.provisioning_status = 'creating' THEN 'running' ELSE 'success' END,
    CASE WHEN s.provisioning_status = 'creating' THEN 40 ELSE 100 END,
    s.step_started_at, CASE WHEN s.provisioning_status = 'creating' THEN NULL ELSE s.step_started_at + interval '15 seconds' END
FROM subscriptions s CROSS JOIN generate_series(0, 1) a
WHERE s.hetzner_server_id >= 50000000 AND s.provisioning_status <> 'creating';

-- name: BenchSeedHistory :exec
-- Older history until the tables hold $1 provisioning events and $1 audit entries in all.
WITH want AS (SELECT greatest($1::int - (SELECT count(*) FROM provisioning_events), 0)::int AS events),
subs AS (SELECT min(id) AS lo, max(id) - min(id) + 1 AS span FROM subscriptions),
ev AS (
    INSERT INTO provisioning_events (subscription_id, occurred_at, step, kind, message, actor)
    SELECT subs.lo + g % subs.span, now() - make_interval(days => (30 + g % 330)::int, secs => (g % 86400)::float8),
        (ARRAY['pending', 'creating', 'cloud_init', 'injecting_secrets', 'ready', 'destroying', 'destroyed'])[1 + g % 7]::provisioning_status,
        (ARRAY['entered', 'info', 'completed', 'error'])[1 + g % 4],
        'Earlier provisioning', 'worker'
    FROM want, subs, generate_series(1, want.events) g
    RETURNING 1
)
INSERT INTO audit_log (occurred_at, admin_email, action, subscription_id, ip, detail)
SELECT now() - make_interval(days => (g % 365)::int, secs => (g % 86400)::float8), 'bench@rachel.local',
    (ARRAY['provision', 'retry', 'destroy', 'customer_update', 'reinject'])[1 + g % 5], subs.lo + g % subs.span, '127.0.0.1', ''
FROM subs, generate_series(1, $1::int) g;

-- name: BenchAnalyze :exec
ANALYZE;

-- name: BenchCounts :one
SELECT (SELECT count(*) FROM subscriptions) AS subscriptions,
       (SELECT count(*) FROM provisioning_events) AS events,
       (SELECT count(*) FROM audit_log) AS audit_entries;

-- name: BenchInProgress :many
-- The subscriptions whose status pages the fragment load polls: those in @states.
SELECT id FROM subscriptions WHERE provisioning_status::text = ANY(@states::text[]) ORDER BY id LIMIT @n::int;

-- name: BenchSeedBare :many
-- $1 customers with a subscription each, never provisioned (the memory phase provisions them).
WITH c AS (
    INSERT INTO customers (email, name) SELECT format('mem-%s@example.com', g), format('Memory customer %s', g)
    FROM generate_series(1, $1::int) g RETURNING id)
INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM c RETURNING id;

-- name: BenchInFlight :one
SELECT count(*) FILTER (WHERE provisioning_status = 'creating' AND hetzner_server_id IS NOT NULL) AS waiting,
       count(*) FILTER (WHERE provisioning_status = 'failed') AS failed
FROM subscriptions;

-- name: BenchCountStates :many
SELECT coalesce(provisioning_status::text, '')::text AS status, count(*) AS n
FROM subscriptions WHERE id = ANY(@ids::bigint[]) GROUP BY 1;

-- name: BenchResults :many
SELECT coalesce(provisioning_status::text, '')::text AS status, provisioned_at FROM subscriptions WHERE id = ANY(@ids::bigint[]);

-- name: BenchFailures :many
SELECT id, coalesce(failed_step::text, '')::text AS step, coalesce(provisioning_error, '')::text AS reason
FROM subscriptions WHERE id = ANY(@ids::bigint[]) AND provisioning_status = 'failed' ORDER BY id LIMIT 5;
