-- +goose Up
-- Admin roles: viewer (read), operator (provision, retry, re-inject, reboot), owner (destroy,
-- reconcile actions, policies, notifications, admins). Every admin that existed before roles is
-- an owner; new admins name their role explicitly (no default).
ALTER TABLE admins
    ADD COLUMN role text NOT NULL DEFAULT 'owner' CHECK (role IN ('viewer', 'operator', 'owner')),
    -- A disabled admin cannot sign in and has no sessions; the row stays for the audit log.
    ADD COLUMN disabled_at timestamptz,
    -- Set for an invited admin's one-time password: the first sign-in must replace it.
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE admins ALTER COLUMN role DROP DEFAULT;

-- +goose Down
ALTER TABLE admins DROP COLUMN updated_at, DROP COLUMN must_change_password, DROP COLUMN disabled_at, DROP COLUMN role;
