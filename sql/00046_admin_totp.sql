-- +goose Up
-- TOTP second factor (RFC 6238). Secrets are AES-256-GCM ciphertexts from internal/secrets, bound
-- to admins.<column> and the admin's row. totp_last_step is the last time step a code was accepted
-- for: a code of that step or an earlier one is refused, so a code cannot be replayed.
ALTER TABLE admins
    ADD COLUMN totp_secret bytea,
    ADD COLUMN totp_pending_secret bytea,
    ADD COLUMN totp_enabled_at timestamptz,
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT totp_enabled_has_secret CHECK ((totp_enabled_at IS NULL) = (totp_secret IS NULL));

-- Single-use recovery codes: only their SHA-256 (they are 80-bit random, so a fast hash suffices).
CREATE TABLE admin_recovery_codes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id   bigint NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (admin_id, code_hash)
);

-- A session whose password was right but whose second factor is still to come: it reaches
-- nothing but the code form.
ALTER TABLE admin_sessions ADD COLUMN second_factor_pending boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE admin_sessions DROP COLUMN second_factor_pending;
DROP TABLE admin_recovery_codes;
ALTER TABLE admins DROP CONSTRAINT totp_enabled_has_secret, DROP COLUMN totp_last_step, DROP COLUMN totp_enabled_at,
    DROP COLUMN totp_pending_secret, DROP COLUMN totp_secret;
