-- name: AdminCreate :one
INSERT INTO admins (email, password_hash, role, must_change_password)
VALUES (@email::text, @password_hash::text, @role::text, @must_change_password::boolean)
RETURNING *;

-- name: AdminGetByEmail :one
SELECT * FROM admins WHERE email = @email::text;

-- name: AdminGet :one
SELECT * FROM admins WHERE id = @id::bigint;

-- name: AdminGetForUpdate :one
SELECT * FROM admins WHERE id = @id::bigint FOR UPDATE;

-- name: AdminList :many
SELECT * FROM admins ORDER BY disabled_at IS NOT NULL, email;

-- name: AdminLockActiveOwners :many
-- Locks every enabled owner, so two owners demoting or disabling each other at once cannot leave
-- none: the second waits and then counts what the first left.
SELECT id FROM admins WHERE role = 'owner' AND disabled_at IS NULL ORDER BY id FOR UPDATE;

-- name: AdminSetPassword :exec
UPDATE admins SET password_hash = @password_hash::text, must_change_password = @must_change_password::boolean, updated_at = now()
WHERE id = @id::bigint;

-- name: AdminSetRole :exec
UPDATE admins SET role = @role::text, updated_at = now() WHERE id = @id::bigint;

-- name: AdminSetDisabled :exec
UPDATE admins SET disabled_at = CASE WHEN @disabled::boolean THEN now() END, updated_at = now()
WHERE id = @id::bigint;
