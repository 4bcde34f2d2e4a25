-- Session-level advisory locks the provisioning workers hold on their own connection: the action
-- poller's leadership. A key is hashed from a name, so no lock number needs to be agreed on.

-- name: WorkerLockTry :one
SELECT pg_try_advisory_lock(hashtextextended(@key::text, 0))::bool AS locked;

-- name: WorkerLock :exec
SELECT pg_advisory_lock(hashtextextended(@key::text, 0));

-- name: WorkerUnlock :exec
SELECT pg_advisory_unlock(hashtextextended(@key::text, 0));
