-- name: LoginAttemptInsert :exec
INSERT INTO login_attempts (email, ip, succeeded) VALUES (@email::text, @ip::text, @succeeded::boolean);

-- name: LoginAttemptCountRecentFailures :one
-- Failures since @since for the account and for the address, counted apart.
SELECT
    count(*) FILTER (WHERE email = @email::text)::bigint AS by_email,
    count(*) FILTER (WHERE ip = @ip::text)::bigint AS by_ip
FROM login_attempts
WHERE NOT succeeded
  AND attempted_at > @since::timestamptz
  AND (email = @email::text OR ip = @ip::text);

-- name: LoginAttemptDeleteBefore :execrows
DELETE FROM login_attempts WHERE attempted_at < @before::timestamptz;
