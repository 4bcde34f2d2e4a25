-- name: BillingPolicyGet :one
SELECT * FROM billing_policy WHERE singleton;

-- name: BillingPolicySet :exec
UPDATE billing_policy SET enabled = @enabled::boolean, canceled_grace_days = @canceled_grace_days::int,
    past_due_grace_days = @past_due_grace_days::int, updated_at = now(), updated_by = @updated_by::text
WHERE singleton;

-- name: BillingSubscriptionForUpdate :one
SELECT id, customer_id, billing_status FROM subscriptions WHERE id = @id::bigint FOR UPDATE;

-- name: BillingStatusSet :exec
UPDATE subscriptions SET billing_status = @billing_status::text, updated_at = now() WHERE id = @id::bigint;

-- name: BillingSince :exec
-- The time the report was received (the trigger wrote the database's now()).
INSERT INTO billing_lifecycle (subscription_id, status_since) VALUES (@subscription_id::bigint, @since::timestamptz)
ON CONFLICT (subscription_id) DO UPDATE SET status_since = EXCLUDED.status_since;

-- name: BillingHold :execrows
INSERT INTO billing_lifecycle (subscription_id, status_since, held_at, held_by)
SELECT s.id, s.updated_at, @now::timestamptz, @held_by::text FROM subscriptions s WHERE s.id = @subscription_id::bigint
ON CONFLICT (subscription_id) DO UPDATE SET held_at = EXCLUDED.held_at, held_by = EXCLUDED.held_by
WHERE billing_lifecycle.held_at IS NULL;

-- name: BillingRelease :execrows
UPDATE billing_lifecycle SET held_at = NULL, held_by = '' WHERE subscription_id = @subscription_id::bigint AND held_at IS NOT NULL;

-- name: BillingLifecycleGet :one
SELECT s.id, s.billing_status, s.provisioning_status, s.deprovisioned_at, l.status_since, l.held_at, l.held_by
FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
WHERE s.id = @id::bigint;

-- name: BillingToProvision :many
-- Active, and without a server since the billing status became active.
SELECT s.id FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
WHERE s.billing_status = 'active'
  AND (s.provisioning_status IS NULL
       OR (s.provisioning_status = 'destroyed' AND (s.deprovisioned_at IS NULL OR s.deprovisioned_at < l.status_since)))
ORDER BY s.id LIMIT 500;

-- name: BillingEnding :many
-- Canceled or past due with a server (or one on its way): candidates for the destroy, in a state
-- Destroy moves (@destroyable: state.Sources(state.Destroy)), the first @lim by when their status
-- began (served by subscriptions_billing_ending_idx: the cost follows the subscriptions ending,
-- not the table).
SELECT s.id, c.email AS customer_email, s.billing_status, s.provisioning_status, l.status_since, l.held_at, l.held_by
FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id JOIN customers c ON c.id = s.customer_id
WHERE s.billing_status IN ('canceled', 'past_due')
  AND s.provisioning_status = ANY(CAST(@destroyable::text[] AS provisioning_status[]))
ORDER BY l.status_since, s.id LIMIT @lim::int;

-- name: APITokenCreate :one
INSERT INTO api_tokens (name, scope, token_hash, prefix, created_by)
VALUES (@name::text, @scope::text, @token_hash::bytea, @prefix::text, @created_by::text)
RETURNING *;

-- name: APITokenByHash :one
SELECT * FROM api_tokens WHERE token_hash = @token_hash::bytea;

-- name: APITokenTouch :exec
UPDATE api_tokens SET last_used_at = now() WHERE id = @id::bigint;

-- name: APITokenRevoke :one
UPDATE api_tokens SET revoked_at = now(), revoked_by = @revoked_by::text
WHERE id = @id::bigint AND revoked_at IS NULL
RETURNING *;

-- name: APITokenList :many
SELECT * FROM api_tokens ORDER BY revoked_at IS NOT NULL, created_at DESC, id DESC LIMIT 200;

-- name: BillingReportClaim :one
-- Claims the key; no row when it was used before (then BillingReportGet answers).
INSERT INTO billing_reports (token_id, idempotency_key, request_hash, response_status, response_body)
VALUES (@token_id::bigint, @idempotency_key::text, @request_hash::bytea, 0, '')
ON CONFLICT DO NOTHING
RETURNING token_id;

-- name: BillingReportGet :one
SELECT * FROM billing_reports WHERE token_id = @token_id::bigint AND idempotency_key = @idempotency_key::text;

-- name: BillingReportAnswer :exec
UPDATE billing_reports SET response_status = @response_status::int, response_body = @response_body::text
WHERE token_id = @token_id::bigint AND idempotency_key = @idempotency_key::text;

-- The policy's batched reads (billing.Evaluate): each reads the ending subscriptions in a state
-- Destroy moves (@destroyable), not held, by when their grace period ends: @canceled_due and
-- @past_due_due are now minus each status's grace (due when the status began at or before it),
-- @canceled_warn and @past_due_warn a day later (a "destroy soon" warning while it began after
-- the due cutoff and at or before the warn one). Served by subscriptions_billing_ending_idx: the
-- cost follows the subscriptions ending, not the table.

-- name: BillingDue :many
-- The first @lim not held whose grace period is over, by when their status began. Each is
-- destroyed (and leaves the set), so the next run goes on with the rest.
SELECT s.id, s.billing_status, l.status_since
FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
WHERE s.billing_status IN ('canceled', 'past_due')
  AND s.provisioning_status = ANY(CAST(@destroyable::text[] AS provisioning_status[]))
  AND l.held_at IS NULL
  AND l.status_since <= CASE s.billing_status WHEN 'past_due' THEN @past_due_due::timestamptz ELSE @canceled_due::timestamptz END
ORDER BY l.status_since, s.id LIMIT @lim::int;

-- name: BillingSoonUnnotified :many
-- The first @lim due within a day (not yet due, not held) without an open billing_destroy_soon
-- incident, by when their status began; the customers are joined to the batch only.
WITH todo AS MATERIALIZED (
    SELECT s.id, l.status_since FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
    WHERE s.billing_status IN ('canceled', 'past_due')
      AND s.provisioning_status = ANY(CAST(@destroyable::text[] AS provisioning_status[]))
      AND l.held_at IS NULL
      AND l.status_since > CASE s.billing_status WHEN 'past_due' THEN @past_due_due::timestamptz ELSE @canceled_due::timestamptz END
      AND l.status_since <= CASE s.billing_status WHEN 'past_due' THEN @past_due_warn::timestamptz ELSE @canceled_warn::timestamptz END
      AND NOT EXISTS (SELECT 1 FROM notify_incidents i WHERE i.key = 'billing_destroy_soon:' || s.id AND i.resolved_at IS NULL)
    ORDER BY l.status_since, s.id
    LIMIT @lim::int
)
SELECT s.id, c.email AS customer_email, s.billing_status, t.status_since
FROM todo t JOIN subscriptions s ON s.id = t.id JOIN customers c ON c.id = s.customer_id
ORDER BY t.status_since, t.id;

-- name: BillingSoonGone :many
-- The first @lim open billing_destroy_soon incidents (by ID) whose subscription is no longer due
-- within a day: billing fine again, held, destroyed or on its way, due already, or gone.
SELECT i.id FROM notify_incidents i
WHERE i.kind = 'billing_destroy_soon' AND i.resolved_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
      WHERE s.id = i.subscription_id AND i.key = 'billing_destroy_soon:' || s.id
        AND s.billing_status IN ('canceled', 'past_due')
        AND s.provisioning_status = ANY(CAST(@destroyable::text[] AS provisioning_status[]))
        AND l.held_at IS NULL
        AND l.status_since > CASE s.billing_status WHEN 'past_due' THEN @past_due_due::timestamptz ELSE @canceled_due::timestamptz END
        AND l.status_since <= CASE s.billing_status WHEN 'past_due' THEN @past_due_warn::timestamptz ELSE @canceled_warn::timestamptz END)
ORDER BY i.id
LIMIT @lim::int;

-- name: BillingEndingCounts :one
-- How many ending subscriptions are held, and how many not held are due within a day.
SELECT count(*) FILTER (WHERE l.held_at IS NOT NULL)::int AS held,
       count(*) FILTER (WHERE l.held_at IS NULL
           AND l.status_since > CASE s.billing_status WHEN 'past_due' THEN @past_due_due::timestamptz ELSE @canceled_due::timestamptz END
           AND l.status_since <= CASE s.billing_status WHEN 'past_due' THEN @past_due_warn::timestamptz ELSE @canceled_warn::timestamptz END)::int AS soon
FROM subscriptions s JOIN billing_lifecycle l ON l.subscription_id = s.id
WHERE s.billing_status IN ('canceled', 'past_due')
  AND s.provisioning_status = ANY(CAST(@destroyable::text[] AS provisioning_status[]));
