-- name: AuditInsert :exec
INSERT INTO audit_log (admin_id, admin_email, action, customer_id, subscription_id, ip, detail)
VALUES (sqlc.narg(admin_id)::bigint, @admin_email::text, @action::text, sqlc.narg(customer_id)::bigint,
        sqlc.narg(subscription_id)::bigint, @ip::text, @detail::text);

-- name: AuditList :many
-- Each filter applies when set: one subscription, one admin (by the email recorded), one action,
-- and occurred_at in [since, until).
SELECT * FROM audit_log
WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint)
  AND (sqlc.narg(admin_email)::text IS NULL OR admin_email = sqlc.narg(admin_email)::text)
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz)
ORDER BY occurred_at DESC, id DESC
LIMIT @lim::int OFFSET @off::int;

-- name: AuditCount :one
SELECT count(*) FROM audit_log
WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint)
  AND (sqlc.narg(admin_email)::text IS NULL OR admin_email = sqlc.narg(admin_email)::text)
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz);

-- name: AuditActions :many
-- The actions recorded so far, for the filter's choices.
SELECT DISTINCT action FROM audit_log ORDER BY action;
