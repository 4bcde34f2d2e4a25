-- name: SubscriptionCreate :one
INSERT INTO subscriptions (customer_id, plan, billing_status)
VALUES (@customer_id::bigint, @plan::text, @billing_status::text)
RETURNING *;

-- name: SubscriptionUpdatePlan :one
UPDATE subscriptions SET plan = @plan::text, billing_status = @billing_status::text, updated_at = now()
WHERE id = @id::bigint
RETURNING *;

-- name: SubscriptionGet :one
SELECT * FROM subscriptions WHERE id = @id::bigint;

-- name: SubscriptionGetForUpdate :one
SELECT * FROM subscriptions WHERE id = @id::bigint FOR UPDATE;

-- name: SubscriptionListByCustomer :many
SELECT * FROM subscriptions WHERE customer_id = @customer_id::bigint ORDER BY id;

-- name: SubscriptionList :many
-- @status: '' for all, 'none' for never provisioned, else a provisioning_status.
-- @search is matched as a substring (the caller escapes LIKE wildcards).
SELECT
    s.id, s.customer_id, s.plan, s.billing_status, s.provisioning_status, s.failed_step,
    s.vps_hostname, s.vps_ip_address, s.hetzner_server_id, s.step_started_at, s.updated_at,
    c.email AS customer_email, c.name AS customer_name
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
WHERE (@status::text = ''
       OR (@status::text = 'none' AND s.provisioning_status IS NULL)
       OR s.provisioning_status::text = @status::text)
  AND (@search::text = ''
       OR c.email ILIKE '%' || @search::text || '%'
       OR c.name ILIKE '%' || @search::text || '%'
       OR s.vps_hostname ILIKE '%' || @search::text || '%'
       OR host(s.vps_ip_address) LIKE @search::text || '%')
ORDER BY
    CASE WHEN @sort::text = 'email' THEN c.email END ASC,
    CASE WHEN @sort::text = 'name' THEN c.name END ASC,
    CASE WHEN @sort::text = 'status' THEN s.provisioning_status::text END ASC,
    CASE WHEN @sort::text = 'updated' THEN s.updated_at END DESC,
    s.id DESC
LIMIT @lim::int OFFSET @off::int;

-- name: SubscriptionCount :one
SELECT count(*)
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
WHERE (@status::text = ''
       OR (@status::text = 'none' AND s.provisioning_status IS NULL)
       OR s.provisioning_status::text = @status::text)
  AND (@search::text = ''
       OR c.email ILIKE '%' || @search::text || '%'
       OR c.name ILIKE '%' || @search::text || '%'
       OR s.vps_hostname ILIKE '%' || @search::text || '%'
       OR host(s.vps_ip_address) LIKE @search::text || '%');

-- name: SubscriptionCountByStatus :many
SELECT coalesce(provisioning_status::text, 'none')::text AS status, count(*) AS n
FROM subscriptions
GROUP BY 1
ORDER BY 1;

-- name: SubscriptionKeysListAll :many
-- For key rotation: every encrypted key, locked until rotation commits (no lost update).
SELECT id, ssh_private_key, ssh_host_key_private, callback_token FROM subscriptions
WHERE ssh_private_key IS NOT NULL OR ssh_host_key_private IS NOT NULL OR callback_token IS NOT NULL
ORDER BY id FOR UPDATE;

-- name: SubscriptionKeysReplace :exec
UPDATE subscriptions SET ssh_private_key = sqlc.narg(ssh_private_key)::bytea, ssh_host_key_private = sqlc.narg(ssh_host_key_private)::bytea,
    callback_token = sqlc.narg(callback_token)::bytea
WHERE id = @id::bigint;

-- name: SubscriptionExportPage :many
-- The CSV export: the list's filter (keep this WHERE clause the same as SubscriptionList's), in
-- subscription ID order, a page at a time after @after_id, so an export of any size reads each
-- row once through the primary key and is not bounded by the list's pages.
SELECT
    s.id, s.customer_id, s.plan, s.billing_status, s.provisioning_status, s.failed_step,
    s.vps_hostname, s.vps_ip_address, s.hetzner_server_id, s.step_started_at, s.updated_at,
    c.email AS customer_email, c.name AS customer_name
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
WHERE s.id > @after_id::bigint
  AND (@status::text = ''
       OR (@status::text = 'none' AND s.provisioning_status IS NULL)
       OR s.provisioning_status::text = @status::text)
  AND (@search::text = ''
       OR c.email ILIKE '%' || @search::text || '%'
       OR c.name ILIKE '%' || @search::text || '%'
       OR s.vps_hostname ILIKE '%' || @search::text || '%'
       OR host(s.vps_ip_address) LIKE @search::text || '%')
ORDER BY s.id
LIMIT @lim::int;
