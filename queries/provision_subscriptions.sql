-- Queries of the provisioning state machine on subscriptions. Status changes are conditional on
-- the status the caller saw, so a concurrent change (a destroy, a callback) wins cleanly. The
-- states a move starts from are its @sources, passed from the transition table
-- (internal/provision/state, state.Sources); the state it moves to is written here and checked
-- against the table by a test that runs every move in every state.

-- name: ProvisionEnter :one
-- Moves to a new step @next, clearing any failure, if the status is still @from (NULL: never
-- provisioned) and one the event moves (@sources, '' for NULL); the caller checked @next against
-- the table (state.Check).
UPDATE subscriptions
SET provisioning_status = @next::provisioning_status,
    step_started_at     = now(),
    provisioning_error  = NULL,
    failed_step         = NULL,
    updated_at          = now()
WHERE id = @id::bigint
  AND provisioning_status IS NOT DISTINCT FROM sqlc.narg(from_status)::provisioning_status
  AND coalesce(provisioning_status::text, '') = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionFail :one
-- Fails the current step @step (kept for Retry), if the status is still @step and a step that
-- can fail (@sources: state.Sources(state.StepFailed)).
UPDATE subscriptions
SET provisioning_status = 'failed',
    failed_step         = @step::provisioning_status,
    provisioning_error  = @reason::text,
    updated_at          = now()
WHERE id = @id::bigint AND provisioning_status = @step::provisioning_status
  AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionSetKeys :one
-- Stores the access key pair and host key once; a second call (a retried step) keeps the first.
UPDATE subscriptions
SET ssh_private_key      = @ssh_private_key::bytea,
    ssh_public_key       = @ssh_public_key::text,
    ssh_host_key_private = @ssh_host_key_private::bytea,
    ssh_host_key_public  = @ssh_host_key_public::text,
    updated_at           = now()
WHERE id = @id::bigint AND ssh_private_key IS NULL
RETURNING *;

-- name: ProvisionSetSSHKeyID :exec
UPDATE subscriptions SET hetzner_ssh_key_id = sqlc.narg(ssh_key_id)::bigint, updated_at = now()
WHERE id = @id::bigint;

-- name: ProvisionSetCallbackToken :one
-- Records the token baked into the server's user data (its hash, and the token encrypted), before
-- the server is created, unless one is already recorded: a token minted while a create may still
-- be in flight is never replaced, except on purpose (@replace: the stored one is unusable, and
-- the caller says so in the event log). No row: another attempt stored a token first.
UPDATE subscriptions
SET callback_token_hash = @hash::bytea, callback_token = @token::bytea,
    callback_received_at = NULL, callback_expires_at = NULL, updated_at = now()
WHERE id = @id::bigint AND (callback_token IS NULL OR @replace::boolean)
RETURNING *;

-- name: ProvisionSetServer :exec
UPDATE subscriptions
SET hetzner_server_id = @server_id::bigint,
    vps_hostname      = @hostname::text,
    vps_ip_address    = sqlc.narg(ip)::inet,
    updated_at        = now()
WHERE id = @id::bigint;

-- name: ProvisionClearServer :exec
UPDATE subscriptions SET hetzner_server_id = NULL, vps_ip_address = NULL, updated_at = now()
WHERE id = @id::bigint;

-- name: ProvisionAwaitCallback :one
-- state.ServerUp (creating → cloud_init): the callback deadline starts now.
UPDATE subscriptions
SET provisioning_status = 'cloud_init',
    step_started_at     = now(),
    callback_expires_at = now() + make_interval(secs => @deadline_seconds::float8),
    updated_at          = now()
WHERE id = @id::bigint AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionGetByCallbackToken :one
SELECT * FROM subscriptions WHERE callback_token_hash = @hash::bytea FOR UPDATE;

-- name: ProvisionCallbackReceived :one
-- state.CallbackReceived (cloud_init → injecting_secrets); the token is spent. A VPS may call back
-- before the poller has seen its start action finish, so creating is accepted too.
UPDATE subscriptions
SET provisioning_status  = 'injecting_secrets',
    step_started_at      = now(),
    callback_token_hash  = NULL,
    callback_token       = NULL,
    callback_received_at = now(),
    updated_at           = now()
WHERE id = @id::bigint AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionReady :one
-- state.Injected (injecting_secrets → ready).
UPDATE subscriptions
SET provisioning_status = 'ready', provisioned_at = coalesce(provisioned_at, now()), step_started_at = now(), updated_at = now()
WHERE id = @id::bigint AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionDestroyed :one
-- state.Deleted (destroying → destroyed): nothing is left in Hetzner: forget the keys and
-- addresses, keep the row and its history.
UPDATE subscriptions
SET provisioning_status  = 'destroyed',
    deprovisioned_at     = now(),
    step_started_at      = now(),
    hetzner_server_id    = NULL,
    hetzner_ssh_key_id   = NULL,
    vps_ip_address       = NULL,
    ssh_private_key      = NULL,
    ssh_public_key       = NULL,
    ssh_host_key_private = NULL,
    ssh_host_key_public  = NULL,
    callback_token_hash  = NULL,
    callback_token       = NULL,
    callback_expires_at  = NULL,
    updated_at           = now()
WHERE id = @id::bigint AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionResetForNewServer :exec
-- Before a fresh provisioning after destroy: the old server's timestamps no longer apply, and a
-- subscription that holds nothing in Hetzner any more is placed again (the project with the
-- most room now, not the one its last server happened to be in).
UPDATE subscriptions
SET provisioned_at = NULL, deprovisioned_at = NULL, callback_received_at = NULL, updated_at = now(),
    hetzner_project = CASE WHEN hetzner_server_id IS NULL AND hetzner_ssh_key_id IS NULL THEN NULL ELSE hetzner_project END
WHERE id = @id::bigint;

-- name: ProvisionCallbackOverdue :many
-- Subscriptions in @waiting (cloud_init) whose VPS did not call back in time.
SELECT id, callback_expires_at FROM subscriptions
WHERE provisioning_status = @waiting::provisioning_status AND callback_expires_at < now()
ORDER BY id;

-- name: ProvisionListWithServer :many
-- What the reconciler compares with Hetzner's listing.
SELECT id, hetzner_server_id, provisioning_status, vps_hostname, hetzner_project FROM subscriptions
WHERE hetzner_server_id IS NOT NULL;

-- name: ProvisionMarkServerGone :one
-- The server vanished behind our back (state.ServerVanished, state.MarkGone): fail at creating,
-- so Retry makes a new one; only if the status is still @from_status, the one the caller saw (a
-- concurrent Destroy wins), and one of the event's @sources.
UPDATE subscriptions
SET provisioning_status = 'failed',
    failed_step         = 'creating',
    provisioning_error  = @reason::text,
    callback_token_hash = NULL,
    callback_token      = NULL,
    hetzner_server_id   = NULL,
    vps_ip_address      = NULL,
    updated_at          = now()
WHERE id = @id::bigint AND provisioning_status = @from_status::provisioning_status
  AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionWaitingForKeys :one
-- Provisionings (in @states: before the server exists) that still need their access key pair:
-- the key pool waits for them.
SELECT count(*) FROM subscriptions
WHERE provisioning_status::text = ANY(@states::text[]) AND ssh_public_key IS NULL;

-- name: ProvisionCloudInitConfirmed :one
-- state.CloudInitSeen (cloud_init → injecting_secrets without a callback): the worker saw over
-- SSH, with the pinned host key, that cloud-init finished. The token is spent as if the VPS had
-- called back.
UPDATE subscriptions
SET provisioning_status = 'injecting_secrets',
    step_started_at     = now(),
    callback_token_hash = NULL,
    callback_token      = NULL,
    updated_at          = now()
WHERE id = @id::bigint AND provisioning_status::text = ANY(@sources::text[])
RETURNING *;

-- name: ProvisionRestartCallbackWait :exec
-- A Retry that resumes at cloud_init: the callback deadline starts again.
UPDATE subscriptions
SET callback_expires_at = now() + make_interval(secs => @deadline_seconds::float8), updated_at = now()
WHERE id = @id::bigint AND provisioning_status = 'cloud_init';

-- name: ProvisionListForgotten :many
-- Subscriptions in one of @states, untouched for @idle_secs, whose step job is not live (their IDs
-- are @with_live_job, read from River by the caller) and that wait for no running Hetzner action,
-- unless their step began more than @deadline_secs ago (the step's deadline must be enforced).
SELECT s.id FROM subscriptions s
WHERE s.provisioning_status::text = ANY(@states::text[])
  AND s.updated_at < now() - make_interval(secs => @idle_secs::float8)
  AND NOT (s.id = ANY(coalesce(@with_live_job::bigint[], '{}')))
  AND (NOT EXISTS (SELECT 1 FROM hetzner_actions a WHERE a.subscription_id = s.id AND a.status = 'running')
       OR s.step_started_at < now() - make_interval(secs => @deadline_secs::float8))
ORDER BY s.id
LIMIT 500;
