-- name: LoginAttemptInsert :exec
INSERT INTO login_attempts (email, ip, succeeded) VALUES (@email::text, @ip::text, @succeeded::boolean);

-- name: LoginAttemptDeleteBefore :execrows
DELETE FROM login_attempts WHERE attempted_at < @before::timestamptz;
