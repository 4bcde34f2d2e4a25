-- name: SSHKeyPoolTake :one
-- Takes one pre-generated pair; SKIP LOCKED lets many provisionings take different pairs at once.
DELETE FROM ssh_key_pool
WHERE id = (
    SELECT id FROM ssh_key_pool WHERE algorithm = @algorithm::text ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- name: SSHKeyPoolInsert :one
INSERT INTO ssh_key_pool (algorithm, public_key, private_key)
VALUES (@algorithm::text, @public_key::text, '\x00'::bytea)
RETURNING id;

-- name: SSHKeyPoolSetPrivate :exec
-- The private key is encrypted bound to the row's ID, which exists only after the insert.
UPDATE ssh_key_pool SET private_key = @private_key::bytea WHERE id = @id::bigint;

-- name: SSHKeyPoolCount :one
SELECT count(*) FROM ssh_key_pool WHERE algorithm = @algorithm::text;

-- name: SSHKeyPoolListAll :many
-- For key rotation: every pooled private key, locked until rotation commits.
SELECT id, private_key FROM ssh_key_pool ORDER BY id FOR UPDATE;

-- name: SSHKeyPoolQuarantine :exec
-- Sets a pooled pair that cannot be decrypted aside (its row was already taken from the pool).
INSERT INTO ssh_key_pool_quarantine (id, algorithm, public_key, private_key, reason, created_at)
VALUES (@id::bigint, @algorithm::text, @public_key::text, @private_key::bytea, @reason::text, @created_at::timestamptz)
ON CONFLICT (id) DO NOTHING;

-- name: SSHKeyPoolQuarantineCount :one
SELECT count(*) FROM ssh_key_pool_quarantine;
