-- name: HealthReadySubscriptions :many
-- The ready VPSes one run checks: the @lim checked longest ago, never checked first, so a fleet
-- larger than a run's batch is checked in rotation (it reads every ready subscription to choose:
-- a background job every HEALTH_CHECK_INTERVAL, not a page).
SELECT s.id, c.email AS customer_email, s.vps_ip_address, s.ssh_private_key, s.ssh_host_key_public, s.provisioned_at
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
LEFT JOIN assistant_health h ON h.subscription_id = s.id
WHERE s.provisioning_status = 'ready'
ORDER BY h.checked_at NULLS FIRST, s.id
LIMIT @lim::int;

-- name: HealthRecord :exec
INSERT INTO assistant_health (subscription_id, checked_at, state, detail, last_seen_at, consecutive_failures)
VALUES (@subscription_id::bigint, @checked_at::timestamptz, @state::text, @detail::text,
        CASE WHEN @state::text = 'up' THEN @checked_at::timestamptz ELSE sqlc.narg(provisioned_at)::timestamptz END,
        CASE WHEN @state::text = 'up' THEN 0 ELSE 1 END)
ON CONFLICT (subscription_id) DO UPDATE SET
    checked_at = EXCLUDED.checked_at, state = EXCLUDED.state, detail = EXCLUDED.detail,
    last_seen_at = CASE WHEN EXCLUDED.state = 'up' THEN EXCLUDED.checked_at
                        ELSE coalesce(assistant_health.last_seen_at, EXCLUDED.last_seen_at) END,
    consecutive_failures = CASE WHEN EXCLUDED.state = 'up' THEN 0 ELSE assistant_health.consecutive_failures + 1 END;

-- name: HealthForgetNotReady :exec
-- A VPS that is no longer ready (re-injected, destroyed) starts afresh when it is ready again.
DELETE FROM assistant_health h USING subscriptions s
WHERE s.id = h.subscription_id AND s.provisioning_status IS DISTINCT FROM 'ready';

-- name: HealthListDown :many
SELECT h.*, c.email AS customer_email, c.name AS customer_name, s.customer_id
FROM assistant_health h JOIN subscriptions s ON s.id = h.subscription_id JOIN customers c ON c.id = s.customer_id
WHERE s.provisioning_status = 'ready' AND h.consecutive_failures >= @down_after::int
ORDER BY h.last_seen_at NULLS FIRST, h.subscription_id
LIMIT @lim::int;

-- name: HealthGet :one
SELECT * FROM assistant_health WHERE subscription_id = @subscription_id::bigint;

-- name: HealthClaudeExpiries :many
-- Customers with a Claude token expiry, and their latest subscription.
SELECT cs.customer_id, cs.claude_token_expires_at, c.email, c.name,
       coalesce(s.id, 0)::bigint AS subscription_id, s.provisioning_status
FROM customer_secrets cs
JOIN customers c ON c.id = cs.customer_id
LEFT JOIN LATERAL (SELECT id, provisioning_status FROM subscriptions WHERE customer_id = c.id ORDER BY id DESC LIMIT 1) s ON true
WHERE cs.claude_token_expires_at IS NOT NULL
ORDER BY cs.customer_id
LIMIT 20000;

-- The assistant_down incidents (health.CheckAll) in bounded batches: up to @lim down without an
-- open incident to open, up to @lim open incidents whose assistant is no longer down to resolve.
-- Down: ready, and @down_after failed checks in a row (assistant_health_failing_idx).

-- name: HealthDownUnnotified :many
-- Down without an open assistant_down incident, longest first; customers joined to the batch only.
WITH todo AS MATERIALIZED (
    SELECT h.subscription_id FROM assistant_health h JOIN subscriptions s ON s.id = h.subscription_id
    WHERE s.provisioning_status = 'ready' AND h.consecutive_failures >= @down_after::int
      AND NOT EXISTS (SELECT 1 FROM notify_incidents i WHERE i.key = 'assistant_down:' || h.subscription_id AND i.resolved_at IS NULL)
    ORDER BY h.last_seen_at NULLS FIRST, h.subscription_id
    LIMIT @lim::int
)
SELECT h.subscription_id, h.state, h.detail, h.last_seen_at, c.email AS customer_email
FROM todo t JOIN assistant_health h ON h.subscription_id = t.subscription_id
JOIN subscriptions s ON s.id = h.subscription_id JOIN customers c ON c.id = s.customer_id
ORDER BY h.last_seen_at NULLS FIRST, h.subscription_id;

-- name: HealthDownGone :many
-- Open assistant_down incidents (by ID) whose assistant is no longer down: up again, checked
-- fewer times in a row, no longer ready (forgotten), or the subscription gone.
SELECT i.id FROM notify_incidents i
WHERE i.kind = 'assistant_down' AND i.resolved_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM assistant_health h JOIN subscriptions s ON s.id = h.subscription_id
      WHERE h.subscription_id = i.subscription_id AND i.key = 'assistant_down:' || h.subscription_id
        AND s.provisioning_status = 'ready' AND h.consecutive_failures >= @down_after::int)
ORDER BY i.id
LIMIT @lim::int;

-- name: HealthCountDown :one
SELECT count(*)::int FROM assistant_health h JOIN subscriptions s ON s.id = h.subscription_id
WHERE s.provisioning_status = 'ready' AND h.consecutive_failures >= @down_after::int;
