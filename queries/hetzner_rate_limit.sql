-- name: RateLimitPut :exec
INSERT INTO hetzner_rate_limit (lim, remaining, reset_at, seen_at)
VALUES (@lim::int, @remaining::int, @reset_at::timestamptz, now())
ON CONFLICT (singleton) DO UPDATE
SET lim = EXCLUDED.lim, remaining = EXCLUDED.remaining, reset_at = EXCLUDED.reset_at, seen_at = EXCLUDED.seen_at;

-- name: RateLimitGet :one
SELECT * FROM hetzner_rate_limit;
