-- name: NotifyIncidentListOpen :many
SELECT * FROM notify_incidents WHERE resolved_at IS NULL ORDER BY opened_at DESC, id DESC LIMIT @lim::int;

-- name: NotifyEventOldestUnsent :one
SELECT occurred_at FROM notify_events WHERE message_id IS NULL ORDER BY occurred_at LIMIT 1;

-- name: NotifyEventTakeUnsent :many
-- The events waiting for a message, locked so two workers never send one twice.
SELECT e.id, e.what, e.occurred_at, i.key, i.kind, i.summary, i.subscription_id, i.opened_at
FROM notify_events e JOIN notify_incidents i ON i.id = e.incident_id
WHERE e.message_id IS NULL
ORDER BY e.occurred_at, e.id
LIMIT @lim::int
FOR UPDATE OF e SKIP LOCKED;

-- name: NotifyEventAttach :exec
UPDATE notify_events SET message_id = @message_id::bigint WHERE id = ANY(@ids::bigint[]);

-- name: NotifyMessageInsert :one
INSERT INTO notify_messages (created_at, kind, subject, body, event_count)
VALUES (@now::timestamptz, @kind::text, @subject::text, @body::text, @event_count::int)
RETURNING id;

-- name: NotifyDeliveryInsert :one
INSERT INTO notify_deliveries (message_id, channel) VALUES (@message_id::bigint, @channel::text) RETURNING id;

-- name: NotifyDeliveryGet :one
SELECT d.id, d.channel, d.status, d.attempts, m.id AS message_id, m.kind, m.subject, m.body, m.created_at AS message_created_at
FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id
WHERE d.id = @id::bigint;

-- name: NotifyDeliveryRecord :exec
UPDATE notify_deliveries
SET status = @status::text, attempts = @attempts::int, last_error = @last_error::text, updated_at = now(),
    sent_at = CASE WHEN @status::text = 'sent' THEN now() ELSE sent_at END
WHERE id = @id::bigint;

-- name: NotifyDeliveryRecent :many
SELECT d.id, d.channel, d.status, d.attempts, d.last_error, d.created_at, d.updated_at, d.sent_at,
       m.kind, m.subject, m.event_count
FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id
ORDER BY d.id DESC
LIMIT @lim::int;

-- The detectors (notify/scan.go) work in bounded batches whose cost follows the incidents and the
-- rows in the condition, never the whole table: each scan resolves up to @lim open incidents whose
-- condition no longer holds, and lists up to @lim rows in the condition without an open incident
-- (lowest ID first) for the notifier to open; the rest follow at the next scan. An incident is
-- never resolved because a list was cut short.

-- name: NotifyIncidentOpenBatch :many
-- Opens the incidents of one kind not open yet (@subscription_ids: 0 for none), recording an
-- "opened" event each, in the order given. Returns the opened incidents' IDs.
WITH opened AS (
    INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
    SELECT u.key, @kind::text, nullif((@subscription_ids::bigint[])[u.n], 0), (@summaries::text[])[u.n], @now::timestamptz
    FROM unnest(@keys::text[]) WITH ORDINALITY AS u(key, n)
    ORDER BY u.n
    ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'opened', @now::timestamptz FROM opened ORDER BY id
RETURNING incident_id;

-- name: NotifyIncidentResolveAbsent :many
-- Resolves the open incidents of one kind whose key is not among @keys (Sync: the caller sees the
-- whole picture), recording a "resolved" event each. Returns their IDs.
WITH resolved AS (
    UPDATE notify_incidents SET resolved_at = @now::timestamptz
    WHERE kind = @kind::text AND resolved_at IS NULL AND NOT (key = ANY(@keys::text[]))
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'resolved', @now::timestamptz FROM resolved ORDER BY id
RETURNING incident_id;

-- name: NotifyFailedUnnotified :many
-- Failed provisionings without an open provision_failed incident. The failed IDs are read whole
-- (from subscriptions_status_id_idx, as many as fail) before the anti-join: ordered by ID in one
-- query, a full walk of the primary key looked cheaper to the planner, and read every subscription
-- once all failures had their incident.
WITH failed AS MATERIALIZED (
    SELECT id FROM subscriptions WHERE provisioning_status = 'failed'
), todo AS MATERIALIZED (
    SELECT f.id FROM failed f
    WHERE NOT EXISTS (SELECT 1 FROM notify_incidents i WHERE i.key = 'provision_failed:' || f.id AND i.resolved_at IS NULL)
    ORDER BY f.id
    LIMIT @lim::int
)
SELECT s.id, c.email AS customer_email, s.failed_step, coalesce(s.provisioning_error, '')::text AS provisioning_error
FROM subscriptions s JOIN customers c ON c.id = s.customer_id
WHERE s.id = ANY(ARRAY(SELECT id FROM todo)) AND s.provisioning_status = 'failed'
ORDER BY s.id;

-- name: NotifyFailedResolve :many
-- Resolves open provision_failed incidents whose subscription is no longer failed (or is gone).
WITH resolved AS (
    UPDATE notify_incidents SET resolved_at = @now::timestamptz
    WHERE id = ANY(ARRAY(
        SELECT i.id FROM notify_incidents i
        WHERE i.kind = 'provision_failed' AND i.resolved_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM subscriptions s
                          WHERE s.id = i.subscription_id AND s.provisioning_status = 'failed'
                            AND i.key = 'provision_failed:' || s.id)
        ORDER BY i.id
        LIMIT @lim::int))
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'resolved', @now::timestamptz FROM resolved ORDER BY id
RETURNING incident_id;

-- name: NotifyFailedByLimit :one
-- The first failed provisioning whose reason starts with @reason (provision.ReasonLimitReached).
-- Read from the failed ones (materialized, as in NotifyFailedUnnotified: ordered by ID in one
-- query, the planner walked the primary key).
WITH failed AS MATERIALIZED (
    SELECT id, provisioning_error FROM subscriptions WHERE provisioning_status = 'failed'
)
SELECT id FROM failed
WHERE starts_with(coalesce(provisioning_error, ''), @reason::text)
ORDER BY id
LIMIT 1;

-- name: NotifyStuckUnnotified :many
-- Provisionings stuck in @state (one of state.Working, a query each so the planner sees how many
-- are in it) since before @cutoff (now minus its expected time) without an open provision_stuck
-- incident for it, longest stuck first: the order of subscriptions_status_step_started_id_idx.
-- The customers are joined to the batch only (joined before, they were read whole).
WITH todo AS MATERIALIZED (
    SELECT s.id FROM subscriptions s
    WHERE s.provisioning_status = @state::provisioning_status AND s.step_started_at < @cutoff::timestamptz
      AND NOT EXISTS (SELECT 1 FROM notify_incidents i
                      WHERE i.key = 'provision_stuck:' || s.id || ':' || @state::text AND i.resolved_at IS NULL)
    ORDER BY s.step_started_at, s.id
    LIMIT @lim::int
)
SELECT s.id, c.email AS customer_email, s.provisioning_status, s.step_started_at
FROM subscriptions s JOIN customers c ON c.id = s.customer_id
WHERE s.id = ANY(ARRAY(SELECT id FROM todo)) AND s.provisioning_status = @state::provisioning_status
ORDER BY s.step_started_at, s.id;

-- name: NotifyStuckResolve :many
-- Resolves open provision_stuck incidents whose subscription moved on from the step the key names
-- (or started it again, or is gone): no longer in it since before its @cutoffs entry (the entry
-- of its state in @states, state.Working; in no working state, none).
WITH resolved AS (
    UPDATE notify_incidents SET resolved_at = @now::timestamptz
    WHERE id = ANY(ARRAY(
        SELECT i.id FROM notify_incidents i
        WHERE i.kind = 'provision_stuck' AND i.resolved_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM subscriptions s
                          WHERE s.id = i.subscription_id
                            AND i.key = 'provision_stuck:' || s.id || ':' || s.provisioning_status
                            AND s.step_started_at < (@cutoffs::timestamptz[])[array_position(@states::text[], s.provisioning_status::text)])
        ORDER BY i.id
        LIMIT @lim::int))
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'resolved', @now::timestamptz FROM resolved ORDER BY id
RETURNING incident_id;

-- name: NotifyFindingsUnnotified :many
-- The reconciler's open findings (orphan, ghost) without an open incident of their kind, oldest
-- first (reconcile_findings_open_seen_idx).
SELECT f.id, f.kind, f.hetzner_server_id, f.server_name, f.subscription_id
FROM reconcile_findings f
WHERE f.resolved_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM notify_incidents i WHERE i.key = f.kind || ':' || f.hetzner_server_id AND i.resolved_at IS NULL)
ORDER BY f.first_seen_at, f.id
LIMIT @lim::int;

-- name: NotifyFindingsResolve :many
-- Resolves open orphan and ghost incidents (key kind:hetzner_server_id) whose finding is resolved.
WITH resolved AS (
    UPDATE notify_incidents SET resolved_at = @now::timestamptz
    WHERE id = ANY(ARRAY(
        SELECT i.id FROM notify_incidents i
        WHERE i.kind IN ('orphan', 'ghost') AND i.resolved_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM reconcile_findings f
                          WHERE f.resolved_at IS NULL AND f.kind = i.kind
                            AND f.hetzner_server_id = CASE WHEN split_part(i.key, ':', 2) ~ '^[0-9]{1,18}$'
                                                           THEN split_part(i.key, ':', 2)::bigint END
                            AND i.key = f.kind || ':' || f.hetzner_server_id)
        ORDER BY i.id
        LIMIT @lim::int))
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'resolved', @now::timestamptz FROM resolved ORDER BY id
RETURNING incident_id;

-- name: NotifyLimitWaiting :one
-- Provisionings waiting for Hetzner's server limit (served by subscriptions_limit_wait_idx).
SELECT count(*)::int AS waiting, coalesce(min(limit_wait_since), now())::timestamptz AS since
FROM subscriptions WHERE limit_wait_since IS NOT NULL;

-- name: NotifyIncidentResolveIDs :many
-- Resolves the open incidents of one kind among @ids (a detector found their condition gone, in
-- its own query: billing, health), recording a "resolved" event each. Returns their IDs.
WITH resolved AS (
    UPDATE notify_incidents SET resolved_at = @now::timestamptz
    WHERE id = ANY(@ids::bigint[]) AND kind = @kind::text AND resolved_at IS NULL
    RETURNING id
)
INSERT INTO notify_events (incident_id, what, occurred_at)
SELECT id, 'resolved', @now::timestamptz FROM resolved ORDER BY id
RETURNING incident_id;
