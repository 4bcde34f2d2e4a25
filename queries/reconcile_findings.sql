-- name: FindingUpsert :one
-- Records drift once; seeing it again only moves last_seen_at.
INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name, subscription_id, server_created_at, server_type, project)
VALUES (@kind::text, @hetzner_server_id::bigint, @server_name::text, sqlc.narg(subscription_id)::bigint,
        sqlc.narg(server_created_at)::timestamptz, @server_type::text, @project::text)
ON CONFLICT (kind, hetzner_server_id) WHERE resolved_at IS NULL
DO UPDATE SET last_seen_at = now(), subscription_id = EXCLUDED.subscription_id
RETURNING *;

-- name: FindingResolveUnseen :execrows
-- Drift that the latest run no longer saw has gone away on its own.
UPDATE reconcile_findings SET resolved_at = now(), resolution = 'no longer seen'
WHERE resolved_at IS NULL AND last_seen_at < @run_started_at::timestamptz;

-- name: FindingListOpen :many
-- The oldest @lim open findings, through reconcile_findings_open_seen_idx.
SELECT sqlc.embed(f), coalesce(c.email, '')::text AS customer_email
FROM reconcile_findings f
LEFT JOIN subscriptions s ON s.id = f.subscription_id
LEFT JOIN customers c ON c.id = s.customer_id
WHERE f.resolved_at IS NULL
ORDER BY f.first_seen_at, f.id
LIMIT @lim::int;

-- name: FindingGetOpen :one
SELECT sqlc.embed(f), coalesce(c.email, '')::text AS customer_email
FROM reconcile_findings f
LEFT JOIN subscriptions s ON s.id = f.subscription_id
LEFT JOIN customers c ON c.id = s.customer_id
WHERE f.id = @id::bigint AND f.resolved_at IS NULL;

-- name: FindingGetForUpdate :one
SELECT * FROM reconcile_findings WHERE id = @id::bigint FOR UPDATE;

-- name: FindingResolve :exec
UPDATE reconcile_findings SET resolved_at = now(), resolution = @resolution::text
WHERE id = @id::bigint AND resolved_at IS NULL;

-- name: ReconcileClock :one
-- The database's clock at the start of a run: findings not seen since are resolved.
SELECT now()::timestamptz AS now;
