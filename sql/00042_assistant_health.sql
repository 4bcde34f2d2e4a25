-- +goose Up
-- The assistant's health after ready: the latest check of each ready VPS (over SSH, pinned to its
-- host key: systemctl is-active of the assistant's unit), and when it was last seen running.
CREATE TABLE assistant_health (
    subscription_id      bigint PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    checked_at           timestamptz NOT NULL,
    state                text NOT NULL CHECK (state IN ('up', 'down', 'unreachable')),
    detail               text NOT NULL DEFAULT '',
    last_seen_at         timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0
);
CREATE INDEX assistant_health_failing_idx ON assistant_health (consecutive_failures) WHERE consecutive_failures > 0;

-- +goose Down
DROP TABLE assistant_health;
