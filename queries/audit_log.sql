-- name: AuditInsert :exec
INSERT INTO audit_log (admin_id, admin_email, action, customer_id, subscription_id, ip, detail)
VALUES (sqlc.narg(admin_id)::bigint, @admin_email::text, @action::text, sqlc.narg(customer_id)::bigint,
        sqlc.narg(subscription_id)::bigint, @ip::text, @detail::text);

-- name: AuditList :many
-- Each filter applies when set: one subscription, one admin (by the email recorded), one action,
-- and occurred_at in [since, until). Planned per call (database.PlanPerCall), so the filters not
-- set fold away and an index serves the rest newest first: audit_log_occurred_at_idx,
-- audit_log_subscription_occurred_idx, audit_log_admin_email_idx or audit_log_action_idx.
SELECT * FROM audit_log
WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint)
  AND (sqlc.narg(admin_email)::text IS NULL OR admin_email = sqlc.narg(admin_email)::text)
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz)
ORDER BY occurred_at DESC, id DESC
LIMIT @lim::int OFFSET @off::int;

-- name: AuditCountUpTo :one
-- How many entries the filters select, counting no further than @cap (planned per call): the
-- newest first, so the list's indexes serve the count too.
SELECT count(*) FROM (
    SELECT 1 FROM audit_log
    WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint)
      AND (sqlc.narg(admin_email)::text IS NULL OR admin_email = sqlc.narg(admin_email)::text)
      AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
      AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
      AND (sqlc.narg(until)::timestamptz IS NULL OR occurred_at < sqlc.narg(until)::timestamptz)
    ORDER BY occurred_at DESC, id DESC
    LIMIT @cap::int
) x;

-- name: AuditEstimate :one
-- The planner's estimate of the audit log's size (kept by ANALYZE and autovacuum); 0 when the
-- table was never analyzed.
SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = 'audit_log'::regclass;

-- name: AuditActions :many
-- The actions recorded so far, for the filter's choices: one probe of audit_log_action_idx per
-- distinct action (a loose index scan), not a read of the whole log.
WITH RECURSIVE a AS (
    (SELECT action FROM audit_log ORDER BY action LIMIT 1)
    UNION ALL
    SELECT (SELECT l.action FROM audit_log l WHERE l.action > a.action ORDER BY l.action LIMIT 1)
    FROM a WHERE a.action IS NOT NULL
)
SELECT action::text FROM a WHERE action IS NOT NULL;
