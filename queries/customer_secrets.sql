-- name: CustomerSecretsGet :one
SELECT * FROM customer_secrets WHERE customer_id = @customer_id::bigint;

-- name: CustomerSecretsUpsert :one
-- Secret fields are write-only: a NULL argument keeps what is stored.
INSERT INTO customer_secrets (
    customer_id, claude_access_token, claude_refresh_token, claude_token_expires_at,
    telegram_bot_token, owner_telegram_user_id, claude_updated_at, telegram_updated_at
) VALUES (
    @customer_id::bigint, sqlc.narg(claude_access_token)::bytea, sqlc.narg(claude_refresh_token)::bytea,
    sqlc.narg(claude_token_expires_at)::bytea, sqlc.narg(telegram_bot_token)::bytea,
    sqlc.narg(owner_telegram_user_id)::bytea,
    CASE WHEN sqlc.narg(claude_access_token)::bytea IS NOT NULL OR sqlc.narg(claude_refresh_token)::bytea IS NOT NULL
              OR sqlc.narg(claude_token_expires_at)::bytea IS NOT NULL THEN now() END,
    CASE WHEN sqlc.narg(telegram_bot_token)::bytea IS NOT NULL OR sqlc.narg(owner_telegram_user_id)::bytea IS NOT NULL THEN now() END
)
ON CONFLICT (customer_id) DO UPDATE SET
    claude_access_token     = coalesce(EXCLUDED.claude_access_token, customer_secrets.claude_access_token),
    claude_refresh_token    = coalesce(EXCLUDED.claude_refresh_token, customer_secrets.claude_refresh_token),
    claude_token_expires_at = coalesce(EXCLUDED.claude_token_expires_at, customer_secrets.claude_token_expires_at),
    telegram_bot_token      = coalesce(EXCLUDED.telegram_bot_token, customer_secrets.telegram_bot_token),
    owner_telegram_user_id  = coalesce(EXCLUDED.owner_telegram_user_id, customer_secrets.owner_telegram_user_id),
    claude_updated_at       = coalesce(EXCLUDED.claude_updated_at, customer_secrets.claude_updated_at),
    telegram_updated_at     = coalesce(EXCLUDED.telegram_updated_at, customer_secrets.telegram_updated_at),
    updated_at              = now()
RETURNING *;

-- name: CustomerSecretsListAll :many
-- For key rotation: every row, to re-encrypt under the primary key. Locked until rotation
-- commits, so a secret changed meanwhile waits and is never overwritten by its older value.
SELECT * FROM customer_secrets ORDER BY customer_id FOR UPDATE;

-- name: CustomerSecretsReplace :exec
-- Rotation only: rewrites the ciphertexts without touching the updated-at times.
UPDATE customer_secrets SET
    claude_access_token = sqlc.narg(claude_access_token)::bytea,
    claude_refresh_token = sqlc.narg(claude_refresh_token)::bytea,
    claude_token_expires_at = sqlc.narg(claude_token_expires_at)::bytea,
    telegram_bot_token = sqlc.narg(telegram_bot_token)::bytea,
    owner_telegram_user_id = sqlc.narg(owner_telegram_user_id)::bytea
WHERE customer_id = @customer_id::bigint;
