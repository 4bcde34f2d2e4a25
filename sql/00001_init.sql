-- +goose Up
-- The admin app's data model. Secrets are stored as AES-256-GCM ciphertexts (bytea) produced by
-- internal/secrets, bound to table, column and row; never as plain text.

CREATE TYPE provisioning_status AS ENUM (
    'pending',
    'creating',
    'cloud_init',
    'injecting_secrets',
    'ready',
    'failed',
    'destroying',
    'destroyed'
);

CREATE TABLE admins (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE admin_sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    admin_id     bigint NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    ip           text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX admin_sessions_admin_id_idx ON admin_sessions (admin_id);
CREATE INDEX admin_sessions_expires_at_idx ON admin_sessions (expires_at);

-- Sign-in attempts, for throttling per account and per address.
CREATE TABLE login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text NOT NULL,
    ip           text NOT NULL,
    succeeded    boolean NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email_idx ON login_attempts (email, attempted_at);
CREATE INDEX login_attempts_ip_idx ON login_attempts (ip, attempted_at);

CREATE TABLE customers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email            text NOT NULL UNIQUE CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' AND length(email) <= 254),
    name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    telegram_user_id bigint CHECK (telegram_user_id > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per customer. Every token is a ciphertext; the *_updated_at columns let the UI say
-- "set, updated <time>" without ever decrypting.
CREATE TABLE customer_secrets (
    customer_id                 bigint PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    claude_access_token         bytea,
    claude_refresh_token        bytea,
    claude_token_expires_at     bytea,
    telegram_bot_token          bytea,
    owner_telegram_user_id      bytea,
    claude_updated_at           timestamptz,
    telegram_updated_at         timestamptz,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id          bigint NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    plan                 text NOT NULL CHECK (plan IN ('personal', 'plus', 'pro')),
    billing_status       text NOT NULL CHECK (billing_status IN ('trialing', 'active', 'past_due', 'canceled')),

    -- The seed's nine VPS fields.
    hetzner_server_id    bigint UNIQUE,
    hetzner_ssh_key_id   bigint UNIQUE,
    vps_ip_address       inet,
    vps_hostname         text UNIQUE CHECK (vps_hostname ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    provisioning_status  provisioning_status,
    provisioning_error   text,
    provisioned_at       timestamptz,
    deprovisioned_at     timestamptz,
    ssh_private_key      bytea,

    -- What the provisioner needs besides them.
    ssh_public_key       text,
    ssh_host_key_private bytea,
    ssh_host_key_public  text,
    failed_step          provisioning_status,
    step_started_at      timestamptz,
    callback_token_hash  bytea CHECK (length(callback_token_hash) = 32),
    callback_expires_at  timestamptz,
    callback_received_at timestamptz,

    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),

    -- failed carries its reason and step; nothing else carries either.
    CONSTRAINT failed_has_reason CHECK (
        coalesce(provisioning_status = 'failed', false) = (provisioning_error IS NOT NULL)
        AND coalesce(provisioning_status = 'failed', false) = (failed_step IS NOT NULL)
    ),
    CONSTRAINT failed_step_is_a_step CHECK (failed_step IS NULL OR failed_step NOT IN ('ready', 'failed', 'destroyed')),
    -- ready means a live, reachable server.
    CONSTRAINT ready_has_server CHECK (
        provisioning_status IS DISTINCT FROM 'ready'
        OR (hetzner_server_id IS NOT NULL AND vps_ip_address IS NOT NULL AND provisioned_at IS NOT NULL)
    ),
    -- destroyed means nothing is left in Hetzner.
    CONSTRAINT destroyed_has_nothing CHECK (
        provisioning_status IS DISTINCT FROM 'destroyed'
        OR (hetzner_server_id IS NULL AND hetzner_ssh_key_id IS NULL AND deprovisioned_at IS NOT NULL)
    ),
    CONSTRAINT private_key_with_public CHECK ((ssh_private_key IS NULL) = (ssh_public_key IS NULL)),
    CONSTRAINT host_key_pair CHECK ((ssh_host_key_private IS NULL) = (ssh_host_key_public IS NULL))
);
CREATE INDEX subscriptions_customer_id_idx ON subscriptions (customer_id);
CREATE INDEX subscriptions_status_idx ON subscriptions (provisioning_status, id);

-- Hetzner actions we are waiting on. The poller reads them all in batched GET /actions?id=… calls.
CREATE TABLE hetzner_actions (
    id              bigint PRIMARY KEY, -- Hetzner's action ID
    subscription_id bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    command         text NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'error')),
    progress        integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error_code      text,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX hetzner_actions_running_idx ON hetzner_actions (id) WHERE status = 'running';
CREATE INDEX hetzner_actions_subscription_idx ON hetzner_actions (subscription_id);

-- Every state change of a provisioning, with who did it.
CREATE TABLE provisioning_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    step            provisioning_status NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('entered', 'info', 'error', 'completed')),
    message         text NOT NULL,
    actor           text NOT NULL
);
CREATE INDEX provisioning_events_subscription_idx ON provisioning_events (subscription_id, id);

-- What secret injection wrote to a VPS: paths and hashes, never the secret.
CREATE TABLE secret_receipts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    written_at      timestamptz NOT NULL DEFAULT now(),
    files           jsonb NOT NULL CHECK (jsonb_typeof(files) = 'array')
);
CREATE INDEX secret_receipts_subscription_idx ON secret_receipts (subscription_id, id);

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    admin_id        bigint REFERENCES admins (id) ON DELETE SET NULL,
    admin_email     text NOT NULL,
    action          text NOT NULL,
    customer_id     bigint REFERENCES customers (id) ON DELETE SET NULL,
    subscription_id bigint REFERENCES subscriptions (id) ON DELETE SET NULL,
    ip              text NOT NULL DEFAULT '',
    detail          text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_subscription_idx ON audit_log (subscription_id);

-- Drift found by the reconciler: orphans (in Hetzner, not live in the database) and ghosts
-- (live in the database, gone from Hetzner). Resolved findings are kept for history.
CREATE TABLE reconcile_findings (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('orphan', 'ghost')),
    hetzner_server_id bigint NOT NULL,
    server_name       text NOT NULL DEFAULT '',
    subscription_id   bigint REFERENCES subscriptions (id) ON DELETE SET NULL,
    server_created_at timestamptz,
    server_type       text NOT NULL DEFAULT '',
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    resolution        text
);
CREATE UNIQUE INDEX reconcile_findings_open_idx ON reconcile_findings (kind, hetzner_server_id) WHERE resolved_at IS NULL;

-- Shared Hetzner resources the service creates once and reuses (e.g. the SSH-only firewall).
CREATE TABLE hetzner_shared_resources (
    name       text PRIMARY KEY,
    kind       text NOT NULL,
    hetzner_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Pre-generated provisioner key pairs, so a burst of provisionings does not wait on RSA generation.
CREATE TABLE ssh_key_pool (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    algorithm   text NOT NULL,
    public_key  text NOT NULL,
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE ssh_key_pool;
DROP TABLE hetzner_shared_resources;
DROP TABLE reconcile_findings;
DROP TABLE audit_log;
DROP TABLE secret_receipts;
DROP TABLE provisioning_events;
DROP TABLE hetzner_actions;
DROP TABLE subscriptions;
DROP TABLE customer_secrets;
DROP TABLE customers;
DROP TABLE login_attempts;
DROP TABLE admin_sessions;
DROP TABLE admins;
DROP TYPE provisioning_status;
