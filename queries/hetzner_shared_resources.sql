-- name: SharedResourceGet :one
SELECT * FROM hetzner_shared_resources WHERE project = @project::text AND name = @name::text;

-- name: SharedResourcePut :one
-- The first writer wins; a second worker that raced to create the same resource adopts it.
INSERT INTO hetzner_shared_resources (project, name, kind, hetzner_id)
VALUES (@project::text, @name::text, @kind::text, @hetzner_id::bigint)
ON CONFLICT (project, name) DO UPDATE SET name = EXCLUDED.name
RETURNING *;

-- name: SharedResourceDelete :exec
DELETE FROM hetzner_shared_resources WHERE project = @project::text AND name = @name::text;
