-- +goose Up
-- Sign-in throttling counters, one row per bucket (see internal/auth/throttle.go):
--   pair:<account>|<address>  failures of one account from one address
--   addr:<address>            failures from one address, any account
--   acct:<account>            failures of one account from addresses it never signed in from
--   known:<admin id>|<address> the admin's last successful sign-in from that address
-- <account> is "admin:<id>" for an admin and a truncated SHA-256 for an email no admin has, so
-- a password typed into the email field is never stored as typed. An attempt is counted (the
-- row's failures incremented under its row lock) before the password is hashed, so parallel
-- attempts cannot all pass a check made before any of them was counted.
CREATE TABLE login_throttle (
    bucket       text PRIMARY KEY CHECK (length(bucket) <= 200),
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    -- Throttled attempts in this window; only the first is written to the audit log.
    suppressed   integer NOT NULL DEFAULT 0 CHECK (suppressed >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated_at_idx ON login_throttle (updated_at);

-- Emails typed at sign-in that belong to no admin (possibly a password typed into the email
-- field) were kept as typed; keep no trace of them.
UPDATE login_attempts SET email = '(unknown account)' WHERE email NOT IN (SELECT email FROM admins);
UPDATE audit_log SET admin_email = '(unknown account)'
WHERE admin_id IS NULL AND action IN ('sign_in_failed', 'sign_in_throttled')
  AND admin_email NOT IN (SELECT email FROM admins);

-- +goose Down
DROP TABLE login_throttle;
