-- Queries of the Hetzner-as-it-is-today features: per-subscription server facts, the server
-- limit queue, preflight results and the learnt project limit.

-- name: ProvisionSetServerFacts :exec
-- Records what server was actually created for the subscription.
UPDATE subscriptions
SET server_type          = @server_type::text,
    server_location      = @server_location::text,
    server_image         = @server_image::text,
    server_price_monthly = sqlc.narg(price_monthly)::numeric,
    updated_at           = now()
WHERE id = @id::bigint;

-- name: LimitWaitStart :one
-- Puts the subscription in the queue for Hetzner's server limit (keeping its place if it is in it
-- already); true when it was not waiting before. Its place is the time its provisioning was
-- requested, so the queue keeps request order whatever order the creates met the limit in.
WITH prev AS (SELECT limit_wait_since FROM subscriptions WHERE id = @id::bigint)
UPDATE subscriptions s
SET limit_wait_since = coalesce(s.limit_wait_since,
        (SELECT max(e.occurred_at) FROM provisioning_events e
         WHERE e.subscription_id = s.id AND e.step = 'pending' AND e.kind = 'entered'),
        now()),
    updated_at = now()
WHERE s.id = @id::bigint
RETURNING (SELECT limit_wait_since IS NULL FROM prev)::boolean AS started;

-- name: LimitWaitEnd :exec
-- Takes the subscription out of the queue; the creating step's deadline starts afresh, since the
-- wait was not Hetzner being slow.
UPDATE subscriptions
SET limit_wait_since = NULL, step_started_at = now(), updated_at = now()
WHERE id = @id::bigint AND limit_wait_since IS NOT NULL;

-- name: LimitWaitAhead :one
-- How many subscriptions still creating wait for the server limit ahead of this one (requested
-- earlier); a subscription not in the queue queues behind all of them.
SELECT count(*)::int FROM subscriptions o
WHERE o.limit_wait_since IS NOT NULL
  AND o.provisioning_status = 'creating'
  AND o.id <> @id::bigint
  AND (o.limit_wait_since, o.id) < (coalesce(sqlc.narg(since)::timestamptz, 'infinity'::timestamptz), @id::bigint);

-- name: LimitWaitHead :one
-- The subscription first in the queue for the server limit, to wake when a server is freed.
SELECT id FROM subscriptions
WHERE limit_wait_since IS NOT NULL AND provisioning_status = 'creating'
ORDER BY limit_wait_since, id
LIMIT 1;

-- name: LimitWaitClearStale :exec
-- A subscription that left creating (destroyed, failed) leaves the queue.
UPDATE subscriptions SET limit_wait_since = NULL
WHERE limit_wait_since IS NOT NULL AND provisioning_status IS DISTINCT FROM 'creating';

-- name: PreflightPut :exec
INSERT INTO preflight_result (ok, reasons, checked_at)
VALUES (cardinality(@reasons::text[]) = 0, @reasons::text[], now())
ON CONFLICT (singleton) DO UPDATE
SET ok = EXCLUDED.ok, reasons = EXCLUDED.reasons, checked_at = EXCLUDED.checked_at;

-- name: PreflightGet :one
SELECT * FROM preflight_result;

-- name: ProjectLimitPut :exec
INSERT INTO hetzner_project_limit (project, server_limit, seen_at) VALUES (@project::text, @server_limit::int, now())
ON CONFLICT (project) DO UPDATE SET server_limit = EXCLUDED.server_limit, seen_at = EXCLUDED.seen_at;

-- name: ProjectLimitList :many
SELECT * FROM hetzner_project_limit ORDER BY project;

-- name: PlacementLock :exec
-- Serialises placements (per transaction), so that a burst spreads evenly over the projects.
SELECT pg_advisory_xact_lock(hashtextextended('rachel-project-placement', 0));

-- name: ProjectUsage :many
-- Per configured project (in the given order): the servers it holds or is creating for us, from
-- the maintained totals plus their unfolded deltas (00054), and the server limit learnt from
-- Hetzner (NULL: not hit yet). deltas counts the unfolded delta rows of all projects.
SELECT p.name::text AS project,
       (coalesce((SELECT held FROM fleet_counts c WHERE c.project = p.name), 0)
        + coalesce((SELECT sum(held) FROM fleet_deltas d WHERE d.project = p.name), 0))::int AS used,
       l.server_limit AS server_limit,
       (SELECT count(*) FROM fleet_deltas)::int AS deltas
FROM unnest(@names::text[]) WITH ORDINALITY AS p(name, ord)
LEFT JOIN hetzner_project_limit l ON l.project = p.name
ORDER BY p.ord;

-- name: ProvisionSetProject :execrows
-- Places the subscription in a project, or moves it from @from_project while it holds nothing
-- there (no server, no SSH key).
UPDATE subscriptions SET hetzner_project = @project::text, updated_at = now()
WHERE id = @id::bigint
  AND hetzner_project IS NOT DISTINCT FROM sqlc.narg(from_project)::text
  AND hetzner_server_id IS NULL AND hetzner_ssh_key_id IS NULL;

-- name: FleetSummary :one
-- The servers the app holds in Hetzner and their monthly cost from the catalog's prices, from the
-- totals the database maintains (00054) plus the deltas not yet folded in (deltas: how many delta
-- rows there were; see FleetCountsFold).
SELECT coalesce(sum(servers), 0)::int AS servers,
       coalesce(sum(monthly_eur), 0)::float8 AS monthly_eur,
       coalesce(sum(unpriced), 0)::int AS unpriced,
       coalesce(sum(waiting), 0)::int AS waiting,
       count(*) FILTER (WHERE delta)::int AS deltas
FROM (
    SELECT servers, monthly_eur, unpriced, waiting, false AS delta FROM fleet_counts
    UNION ALL
    SELECT servers, monthly_eur, unpriced, waiting, true FROM fleet_deltas
) x;

-- name: FleetCountsFold :exec
-- Folds the fleet deltas into the maintained totals (one caller at a time; the others return at once).
SELECT fleet_counts_fold();
