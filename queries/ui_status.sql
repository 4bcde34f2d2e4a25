-- name: UIStatusGet :one
-- Everything the status page shows about one subscription in one round trip, for the fragment
-- every open status page polls: the subscription (no key material) with its customer, and as JSON
-- its events, its Hetzner actions and its latest secret receipt. Each part is read through the
-- index on subscription_id.
SELECT s.id, s.customer_id, s.plan, s.billing_status, s.hetzner_server_id, s.hetzner_ssh_key_id,
       s.vps_ip_address, s.vps_hostname, s.provisioning_status, s.provisioning_error, s.provisioned_at,
       s.deprovisioned_at, s.ssh_host_key_public, s.failed_step, s.step_started_at,
       s.server_type, s.server_location, s.server_image, s.server_price_monthly,
       s.limit_wait_since, s.hetzner_project,
       c.email AS customer_email, c.name AS customer_name,
       coalesce((SELECT jsonb_agg(jsonb_build_object('at', e.occurred_at, 'step', e.step, 'kind', e.kind,
                                                     'message', e.message, 'actor', e.actor) ORDER BY e.id)
                 FROM provisioning_events e WHERE e.subscription_id = s.id), '[]')::jsonb AS events,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', a.id, 'command', a.command, 'status', a.status,
                                                     'progress', a.progress, 'error', a.error_message,
                                                     'created_at', a.created_at) ORDER BY a.id)
                 FROM hetzner_actions a WHERE a.subscription_id = s.id), '[]')::jsonb AS actions,
       (SELECT jsonb_build_object('written_at', sr.written_at, 'files', sr.files)
        FROM secret_receipts sr WHERE sr.subscription_id = s.id ORDER BY sr.id DESC LIMIT 1) AS receipt
FROM subscriptions s
JOIN customers c ON c.id = s.customer_id
WHERE s.id = @id::bigint;

-- name: StatusListen :exec
-- Subscribes the session to the announcements of sql/00003_status_notify.sql's triggers (the
-- payload is a subscription ID); the status cache drops that subscription's entry on each.
LISTEN subscription_changed;
