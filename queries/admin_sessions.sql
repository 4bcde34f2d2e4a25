-- name: SessionCreate :one
INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, ip, user_agent, expires_at, second_factor_pending)
VALUES (@token_hash::bytea, @admin_id::bigint, @csrf_token::text, @ip::text, @user_agent::text, @expires_at::timestamptz,
        @second_factor_pending::boolean)
RETURNING *;

-- name: SessionGet :one
-- A session that has neither expired absolutely nor been idle since before @idle_since, of an
-- admin who is not disabled.
SELECT sqlc.embed(admin_sessions), admins.email AS admin_email, admins.role AS admin_role,
       admins.must_change_password AS admin_must_change_password,
       (admins.totp_enabled_at IS NOT NULL)::boolean AS admin_second_factor
FROM admin_sessions
JOIN admins ON admins.id = admin_sessions.admin_id
WHERE admin_sessions.token_hash = @token_hash::bytea
  AND admin_sessions.expires_at > now()
  AND admin_sessions.last_seen_at > @idle_since::timestamptz
  AND admins.disabled_at IS NULL;

-- name: SessionTouch :exec
UPDATE admin_sessions SET last_seen_at = now()
WHERE token_hash = @token_hash::bytea AND last_seen_at < now() - interval '30 seconds';

-- name: SessionDelete :exec
DELETE FROM admin_sessions WHERE token_hash = @token_hash::bytea;

-- name: SessionDeleteByAdmin :exec
DELETE FROM admin_sessions WHERE admin_id = @admin_id::bigint;

-- name: SessionDeleteOthersOfAdmin :execrows
-- Every session of the admin but the one making the request (after a password change).
DELETE FROM admin_sessions WHERE admin_id = @admin_id::bigint AND token_hash <> @keep_token_hash::bytea;

-- name: SessionDeleteExpired :execrows
DELETE FROM admin_sessions
WHERE expires_at <= now() OR last_seen_at <= @idle_since::timestamptz;
