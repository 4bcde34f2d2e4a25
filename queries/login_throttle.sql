-- name: LoginThrottleHit :one
-- Counts one attempt in @bucket (a new window when the last one began at or before @since) and
-- returns the failures in the window, this attempt included. The row stays locked until the
-- transaction ends, so concurrent attempts on one bucket are counted one after another.
INSERT INTO login_throttle AS t (bucket, window_start, failures, updated_at)
VALUES (@bucket::text, @now::timestamptz, 1, @now::timestamptz)
ON CONFLICT (bucket) DO UPDATE SET
    failures     = CASE WHEN t.window_start <= @since::timestamptz THEN 1 ELSE t.failures + 1 END,
    suppressed   = CASE WHEN t.window_start <= @since::timestamptz THEN 0 ELSE t.suppressed END,
    window_start = CASE WHEN t.window_start <= @since::timestamptz THEN @now::timestamptz ELSE t.window_start END,
    updated_at   = @now::timestamptz
RETURNING failures;

-- name: LoginThrottleSuppress :one
-- Counts a throttled attempt in @bucket; returns how many there were in this window (1: the
-- first, which is audited).
UPDATE login_throttle SET suppressed = suppressed + 1, updated_at = @now::timestamptz
WHERE bucket = @bucket::text
RETURNING suppressed;

-- name: LoginThrottleRefund :exec
-- Gives back the attempt a successful sign-in had counted.
UPDATE login_throttle SET failures = greatest(failures - 1, 0)
WHERE bucket = @bucket::text;

-- name: LoginThrottleDelete :exec
DELETE FROM login_throttle WHERE bucket = @bucket::text;

-- name: LoginThrottleMarkKnown :exec
-- Records a successful sign-in of an admin from an address.
INSERT INTO login_throttle (bucket, window_start, updated_at) VALUES (@bucket::text, @now::timestamptz, @now::timestamptz)
ON CONFLICT (bucket) DO UPDATE SET window_start = EXCLUDED.window_start, updated_at = EXCLUDED.updated_at;

-- name: LoginThrottleIsKnown :one
-- Whether the admin signed in successfully from the address since @since.
SELECT EXISTS (SELECT 1 FROM login_throttle WHERE bucket = @bucket::text AND window_start > @since::timestamptz);

-- name: LoginThrottleDeleteStale :execrows
-- Counters whose window ended before @window_since, and known addresses not used since @known_since.
DELETE FROM login_throttle
WHERE (bucket NOT LIKE 'known:%' AND updated_at < @window_since::timestamptz)
   OR (bucket LIKE 'known:%' AND window_start < @known_since::timestamptz);
