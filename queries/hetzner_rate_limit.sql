-- name: RateLimitPut :exec
-- The latest RateLimit-* headers of one project's budget.
INSERT INTO hetzner_rate_limit (project, lim, remaining, reset_at, seen_at)
VALUES (@project::text, @lim::int, @remaining::int, @reset_at::timestamptz, now())
ON CONFLICT (project) DO UPDATE
SET lim = EXCLUDED.lim, remaining = EXCLUDED.remaining, reset_at = EXCLUDED.reset_at, seen_at = EXCLUDED.seen_at;

-- name: RateLimitList :many
-- Every project's latest budget (one row a project).
SELECT * FROM hetzner_rate_limit ORDER BY project;
