-- name: AuditInsert :exec
INSERT INTO audit_log (admin_id, admin_email, action, customer_id, subscription_id, ip, detail)
VALUES (sqlc.narg(admin_id)::bigint, @admin_email::text, @action::text, sqlc.narg(customer_id)::bigint,
        sqlc.narg(subscription_id)::bigint, @ip::text, @detail::text);

-- name: AuditList :many
SELECT * FROM audit_log
WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint)
ORDER BY occurred_at DESC, id DESC
LIMIT @lim::int OFFSET @off::int;

-- name: AuditCount :one
SELECT count(*) FROM audit_log
WHERE (sqlc.narg(subscription_id)::bigint IS NULL OR subscription_id = sqlc.narg(subscription_id)::bigint);
