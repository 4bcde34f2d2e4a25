-- name: HetznerActionInsert :exec
-- Records an action before anything waits on it; recording twice (a retried step) is harmless.
INSERT INTO hetzner_actions (id, subscription_id, command, status, progress, error_code, error_message, finished_at)
VALUES (@id::bigint, @subscription_id::bigint, @command::text, @status::text, @progress::int,
        sqlc.narg(error_code)::text, sqlc.narg(error_message)::text,
        CASE WHEN @status::text = 'running' THEN NULL ELSE now() END)
ON CONFLICT (id) DO NOTHING;

-- name: HetznerActionListRunning :many
-- Every action in flight, of every subscription: the poller's batch.
SELECT id, subscription_id, progress FROM hetzner_actions WHERE status = 'running' ORDER BY id LIMIT @lim::int;

-- name: HetznerActionListRunningInProject :many
-- The actions in flight of the subscriptions in one Hetzner project: that project's poller's batch.
-- A subscription without a recorded project is the first project's (@first_project), where the
-- worker looks for its resources.
SELECT a.id, a.subscription_id, a.progress FROM hetzner_actions a
JOIN subscriptions s ON s.id = a.subscription_id
WHERE a.status = 'running' AND coalesce(s.hetzner_project, @first_project::text) = @project::text
ORDER BY a.id LIMIT @lim::int;

-- name: HetznerActionFinish :one
UPDATE hetzner_actions
SET status = @status::text, progress = @progress::int, error_code = sqlc.narg(error_code)::text,
    error_message = sqlc.narg(error_message)::text, finished_at = now()
WHERE id = @id::bigint AND status = 'running'
RETURNING *;

-- name: HetznerActionProgress :exec
UPDATE hetzner_actions SET progress = @progress::int WHERE id = @id::bigint AND status = 'running';

-- name: HetznerActionListSince :many
-- The actions of one step: those recorded since it started.
SELECT * FROM hetzner_actions
WHERE subscription_id = @subscription_id::bigint AND created_at >= @since::timestamptz
ORDER BY id;

-- name: HetznerActionAnyRunning :one
SELECT EXISTS (SELECT 1 FROM hetzner_actions WHERE subscription_id = @subscription_id::bigint AND status = 'running')::bool AS running;
