-- +goose Up
-- Pooled key pairs whose private key no key of the keyring decrypts (a keyring that lost a key,
-- a damaged row). They are set aside here, whole, instead of blocking every provisioning that
-- would take them; an operator who restores the missing key can look at them, nothing else does.
CREATE TABLE ssh_key_pool_quarantine (
    id             bigint PRIMARY KEY,
    algorithm      text NOT NULL,
    public_key     text NOT NULL,
    private_key    bytea NOT NULL,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE ssh_key_pool_quarantine;
