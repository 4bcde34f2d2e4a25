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

-- name: AdminSetTOTPPending :exec
UPDATE admins SET totp_pending_secret = @secret::bytea, updated_at = now() WHERE id = @id::bigint;

-- name: AdminEnableTOTP :exec
-- The pending secret becomes the secret; @step (the enrolment code's) cannot be used again.
UPDATE admins SET totp_secret = @secret::bytea, totp_pending_secret = NULL, totp_enabled_at = now(),
    totp_last_step = @step::bigint, updated_at = now()
WHERE id = @id::bigint;

-- name: AdminUseTOTPStep :execrows
-- Accepts a code's time step only if it is later than every step accepted before (no replay).
UPDATE admins SET totp_last_step = @step::bigint WHERE id = @id::bigint AND totp_last_step < @step::bigint;

-- name: AdminResetTOTP :exec
UPDATE admins SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL, totp_last_step = 0, updated_at = now()
WHERE id = @id::bigint;

-- name: AdminTOTPSecretsListAll :many
-- For key rotation: every encrypted TOTP secret.
SELECT id, totp_secret, totp_pending_secret FROM admins
WHERE totp_secret IS NOT NULL OR totp_pending_secret IS NOT NULL
ORDER BY id FOR UPDATE;

-- name: AdminTOTPSecretsReplace :exec
UPDATE admins SET totp_secret = sqlc.narg(totp_secret)::bytea, totp_pending_secret = sqlc.narg(totp_pending_secret)::bytea
WHERE id = @id::bigint;
