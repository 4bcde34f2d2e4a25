-- name: ProvisioningEventInsert :one
INSERT INTO provisioning_events (subscription_id, step, kind, message, actor)
VALUES (@subscription_id::bigint, @step::provisioning_status, @kind::text, @message::text, @actor::text)
RETURNING *;

-- name: ProvisioningEventList :many
SELECT * FROM provisioning_events
WHERE subscription_id = @subscription_id::bigint
ORDER BY id;
