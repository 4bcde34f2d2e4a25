-- name: NotifyIncidentOpen :one
-- Opens an incident unless one with the key is open already (then no row).
INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
VALUES (@key::text, @kind::text, sqlc.narg(subscription_id)::bigint, @summary::text, @now::timestamptz)
ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING
RETURNING id;

-- name: NotifyIncidentResolve :one
UPDATE notify_incidents SET resolved_at = @now::timestamptz
WHERE key = @key::text AND resolved_at IS NULL
RETURNING id;

-- name: NotifyIncidentOpenKeys :many
SELECT key FROM notify_incidents WHERE kind = @kind::text AND resolved_at IS NULL ORDER BY key;

-- name: NotifyIncidentListOpen :many
SELECT * FROM notify_incidents WHERE resolved_at IS NULL ORDER BY opened_at DESC, id DESC LIMIT @lim::int;

-- name: NotifyEventInsert :exec
INSERT INTO notify_events (incident_id, what, occurred_at) VALUES (@incident_id::bigint, @what::text, @now::timestamptz);

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

-- name: NotifyFailedSubscriptions :many
SELECT s.id, c.email AS customer_email, s.failed_step, coalesce(s.provisioning_error, '')::text AS provisioning_error
FROM subscriptions s JOIN customers c ON c.id = s.customer_id
WHERE s.provisioning_status = 'failed'
ORDER BY s.id
LIMIT 5000;

-- name: NotifyWorkingSubscriptions :many
-- Subscriptions in a state a worker drives (@states: state.Working).
SELECT s.id, c.email AS customer_email, s.provisioning_status, s.step_started_at
FROM subscriptions s JOIN customers c ON c.id = s.customer_id
WHERE s.provisioning_status = ANY(CAST(@states::text[] AS provisioning_status[]))
  AND s.step_started_at IS NOT NULL
ORDER BY s.id
LIMIT 5000;

-- name: NotifyOpenFindings :many
SELECT id, kind, hetzner_server_id, server_name, subscription_id, first_seen_at
FROM reconcile_findings WHERE resolved_at IS NULL ORDER BY id LIMIT 5000;

-- name: NotifyLimitWaiting :one
-- Provisionings waiting for Hetzner's server limit (served by subscriptions_limit_wait_idx).
SELECT count(*)::int AS waiting, coalesce(min(limit_wait_since), now())::timestamptz AS since
FROM subscriptions WHERE limit_wait_since IS NOT NULL;
