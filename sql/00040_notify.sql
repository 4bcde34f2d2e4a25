-- +goose Up
-- Notifications: incidents the app detected, the events (opened, resolved) waiting to be sent,
-- the messages they were coalesced into, and one delivery per message and channel.

-- An incident is open while its condition holds; one open incident per key (e.g.
-- provision_failed:42), so detecting it again changes nothing.
CREATE TABLE notify_incidents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    kind            text NOT NULL CHECK (kind IN ('provision_failed', 'provision_stuck', 'orphan', 'ghost',
                        'preflight_failing', 'assistant_down', 'server_limit', 'billing_destroy_soon')),
    subscription_id bigint REFERENCES subscriptions (id) ON DELETE SET NULL,
    summary         text NOT NULL,
    opened_at       timestamptz NOT NULL,
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX notify_incidents_open_key_idx ON notify_incidents (key) WHERE resolved_at IS NULL;
CREATE INDEX notify_incidents_kind_open_idx ON notify_incidents (kind) WHERE resolved_at IS NULL;

-- A message sent to every channel: one incident's event, a digest of several, or a test.
CREATE TABLE notify_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('incident', 'digest', 'test')),
    subject     text NOT NULL,
    body        text NOT NULL,
    event_count integer NOT NULL DEFAULT 0
);

-- What happened to an incident, waiting to be coalesced into a message (message_id NULL).
CREATE TABLE notify_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES notify_incidents (id) ON DELETE CASCADE,
    what        text NOT NULL CHECK (what IN ('opened', 'resolved')),
    occurred_at timestamptz NOT NULL,
    message_id  bigint REFERENCES notify_messages (id) ON DELETE SET NULL
);
CREATE INDEX notify_events_unsent_idx ON notify_events (occurred_at, id) WHERE message_id IS NULL;

-- One message to one channel, sent by a River job; its outcome for the settings page.
CREATE TABLE notify_deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES notify_messages (id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel IN ('email', 'webhook')),
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retrying', 'sent', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX notify_deliveries_recent_idx ON notify_deliveries (id DESC);

-- +goose Down
DROP TABLE notify_deliveries;
DROP TABLE notify_events;
DROP TABLE notify_messages;
DROP TABLE notify_incidents;
