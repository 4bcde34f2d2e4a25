-- +goose Up
-- Hetzner as it is today: what server each subscription actually got, the wait for the project's
-- server limit, the last preflight result and what Hetzner told us about the project's limit.

-- The server actually created (not the configuration of the day): type, location, image and the
-- catalog's net monthly price in EUR for that type in that location.
ALTER TABLE subscriptions
    ADD COLUMN server_type          text,
    ADD COLUMN server_location      text,
    ADD COLUMN server_image         text,
    ADD COLUMN server_price_monthly numeric(12, 4) CHECK (server_price_monthly >= 0),
    -- Set while the creating step waits for Hetzner's server limit; the oldest waiter goes first.
    ADD COLUMN limit_wait_since     timestamptz;

CREATE INDEX subscriptions_limit_wait_idx ON subscriptions (limit_wait_since, id)
    WHERE limit_wait_since IS NOT NULL;

-- The last preflight of a worker (or `rachel-admin preflight`), for every process: the dashboard
-- shows it, and Provision is refused while it failed.
CREATE TABLE preflight_result (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    ok         boolean NOT NULL,
    reasons    text[] NOT NULL DEFAULT '{}',
    checked_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ok = (cardinality(reasons) = 0))
);

-- Hetzner has no endpoint for a project's limits: the server limit is learnt when a create is
-- refused with resource_limit_exceeded (it is then the number of servers the project holds).
CREATE TABLE hetzner_project_limit (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    server_limit integer NOT NULL CHECK (server_limit >= 0),
    seen_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE hetzner_project_limit;
DROP TABLE preflight_result;
DROP INDEX subscriptions_limit_wait_idx;
ALTER TABLE subscriptions
    DROP COLUMN limit_wait_since,
    DROP COLUMN server_price_monthly,
    DROP COLUMN server_image,
    DROP COLUMN server_location,
    DROP COLUMN server_type;
