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
-- One page of the subscription list. @status: '' for all, 'none' for never provisioned, else a
-- provisioning status. @search is matched as a substring of the email, name, server name or IPv4
-- through search_text's trigram index (the caller escapes LIKE wildcards and refuses U+001F, the
-- separator of the fields, so a match never spans two). Run it planned for its parameters
-- (database.PlanPerCall): then the conditions and sort keys that do not apply fold away and an
-- index serves each sort (newest: the primary key; email and name: the customer's copied into the
-- subscription, subscriptions_email_idx and subscriptions_name_idx; status and recently changed:
-- subscriptions_status_id_idx, subscriptions_updated_idx), each sort filtered by status (the
-- indexes that begin with provisioning_status) and the search (the trigram index).
SELECT
    s.id, s.customer_id, s.plan, s.billing_status, s.provisioning_status, s.failed_step,
    s.vps_hostname, s.vps_ip_address, s.hetzner_server_id, s.step_started_at, s.updated_at,
    s.server_type, s.server_location, s.server_price_monthly, s.hetzner_project,
    c.email AS customer_email, c.name AS customer_name
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
WHERE (@status::text = ''
       OR (@status::text = 'none' AND s.provisioning_status IS NULL)
       OR s.provisioning_status = nullif(nullif(@status::text, ''), 'none')::provisioning_status)
  AND (@search::text = '' OR s.search_text ILIKE '%' || @search::text || '%')
ORDER BY
    CASE WHEN @sort::text = 'email' THEN s.customer_email END ASC,
    CASE WHEN @sort::text = 'name' THEN s.customer_name END ASC,
    CASE WHEN @sort::text = 'status' THEN s.provisioning_status END ASC,
    CASE WHEN @sort::text = 'updated' THEN s.updated_at END DESC,
    s.id DESC
LIMIT @lim::int OFFSET @off::int;

-- name: SubscriptionCountUpTo :one
-- How many subscriptions match the list's filters, counting no further than @cap (planned per
-- call, like SubscriptionList): the newest first, so an index serves the count however it is filtered.
SELECT count(*) FROM (
    SELECT 1 FROM subscriptions s
    WHERE (@status::text = ''
           OR (@status::text = 'none' AND s.provisioning_status IS NULL)
           OR s.provisioning_status = nullif(nullif(@status::text, ''), 'none')::provisioning_status)
      AND (@search::text = '' OR s.search_text ILIKE '%' || @search::text || '%')
    ORDER BY s.id DESC
    LIMIT @cap::int
) x;

-- name: SubscriptionAttention :many
-- The dashboard's attention list in one round trip: the @lim most recently failed subscriptions
-- (@failed; through subscriptions_status_updated_idx), then per state of @states the @lim whose
-- step started before that state's @started_before, longest first (through
-- subscriptions_status_step_started_id_idx). since is when it failed, or when its step started.
(SELECT s.id, s.provisioning_status, s.failed_step, s.updated_at AS since, c.email AS customer_email, c.name AS customer_name
 FROM subscriptions s
 JOIN customers c ON c.id = s.customer_id
 WHERE s.provisioning_status = CAST(@failed::text AS provisioning_status)
 ORDER BY s.updated_at DESC, s.id DESC
 LIMIT @lim::int)
UNION ALL
(SELECT x.id, x.provisioning_status, x.failed_step, x.since, x.customer_email, x.customer_name
 FROM unnest(@states::text[]) WITH ORDINALITY AS w(status, n)
 CROSS JOIN LATERAL (
     SELECT s.id, s.provisioning_status, s.failed_step, s.step_started_at AS since, c.email AS customer_email, c.name AS customer_name
     FROM subscriptions s
     JOIN customers c ON c.id = s.customer_id
     WHERE s.provisioning_status = CAST(w.status AS provisioning_status)
       AND s.step_started_at IS NOT NULL
       AND s.step_started_at < (@started_before::timestamptz[])[w.n]
     ORDER BY s.step_started_at, s.id
     LIMIT @lim::int
 ) x);

-- name: SubscriptionCountByStatus :many
-- Subscriptions per provisioning status ('none': never provisioned), from the maintained counts
-- plus the deltas not yet folded in (deltas: how many delta rows there were; see
-- SubscriptionStatusCountsFold). A status may be counted 0.
SELECT status::text AS status, sum(n)::bigint AS n, sum(deltas)::bigint AS deltas
FROM (
    SELECT status, n, 0 AS deltas FROM subscription_status_counts
    UNION ALL
    SELECT status, n, 1 FROM subscription_status_deltas
) x
GROUP BY status
ORDER BY status;

-- name: SubscriptionStatusCountsFold :exec
-- Folds the deltas into the maintained counts (one caller at a time; the others return at once).
SELECT subscription_status_counts_fold();

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
       OR s.provisioning_status = nullif(nullif(@status::text, ''), 'none')::provisioning_status)
  AND (@search::text = '' OR s.search_text ILIKE '%' || @search::text || '%')
ORDER BY s.id
LIMIT @lim::int;

-- name: PlannerPreferIndexes :exec
-- For the rest of the transaction, plans read through an index wherever one serves: the planner
-- prices a trigram search's ILIKE on every row of a sequential scan far below its real cost, and
-- with a page's LIMIT and bounded OFFSET an index (the trigram index, or the sort's, stopping
-- early) always serves a search.
SELECT set_config('enable_seqscan', 'off', true);

-- name: PlannerReadMatches :exec
-- For the rest of the transaction, a search reads its matches through the trigram index (bitmap
-- scans only) and sorts them: the page query of a search whose count found few matches. A walk
-- of the sort's index, filtering as it goes, may pass over most of the table before it finds a
-- page of rare matches (the planner assumes matches are spread evenly; names and numbers cluster).
SELECT set_config('enable_indexscan', 'off', true), set_config('enable_indexonlyscan', 'off', true);

-- name: SubscriptionCountByServer :one
SELECT count(*) FROM subscriptions WHERE hetzner_server_id = @hetzner_server_id::bigint;
