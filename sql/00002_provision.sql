-- +goose Up
-- What the provisioning service needs beyond the initial schema.

-- The callback handler finds a subscription by the hash of the token in the URL.
CREATE UNIQUE INDEX subscriptions_callback_token_hash_idx ON subscriptions (callback_token_hash)
    WHERE callback_token_hash IS NOT NULL;

-- The latest RateLimit-* headers a worker saw from Hetzner, for the dashboard of every process.
CREATE TABLE hetzner_rate_limit (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    lim        integer NOT NULL,
    remaining  integer NOT NULL,
    reset_at   timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE hetzner_rate_limit;
DROP INDEX subscriptions_callback_token_hash_idx;
