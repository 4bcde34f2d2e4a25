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
