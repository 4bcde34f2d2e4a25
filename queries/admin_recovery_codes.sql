-- name: RecoveryCodeInsert :exec
INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES (@admin_id::bigint, @code_hash::bytea);

-- name: RecoveryCodeDeleteByAdmin :exec
DELETE FROM admin_recovery_codes WHERE admin_id = @admin_id::bigint;

-- name: RecoveryCodeUse :execrows
-- Marks an unused code used; 0 rows: unknown or already used.
UPDATE admin_recovery_codes SET used_at = now()
WHERE admin_id = @admin_id::bigint AND code_hash = @code_hash::bytea AND used_at IS NULL;

-- name: RecoveryCodeCountUnused :one
SELECT count(*) FROM admin_recovery_codes WHERE admin_id = @admin_id::bigint AND used_at IS NULL;
