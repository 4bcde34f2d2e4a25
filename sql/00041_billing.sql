-- +goose Up
-- The billing-driven lifecycle: the owner's policy, when each subscription's billing status last
-- changed and whether an admin holds it, the billing system's API tokens and its idempotent reports.

-- One row: the policy, off until an owner switches it on.
CREATE TABLE billing_policy (
    singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled             boolean NOT NULL DEFAULT false,
    canceled_grace_days integer NOT NULL DEFAULT 2 CHECK (canceled_grace_days BETWEEN 0 AND 365),
    past_due_grace_days integer NOT NULL DEFAULT 7 CHECK (past_due_grace_days BETWEEN 0 AND 365),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text NOT NULL DEFAULT ''
);
INSERT INTO billing_policy DEFAULT VALUES;

-- Per subscription: since when its billing status holds, and an admin's hold on its destroy.
CREATE TABLE billing_lifecycle (
    subscription_id bigint PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    status_since    timestamptz NOT NULL,
    held_at         timestamptz,
    held_by         text NOT NULL DEFAULT ''
);
INSERT INTO billing_lifecycle (subscription_id, status_since) SELECT id, updated_at FROM subscriptions;

-- Every change of billing_status, however it is made (the API, the customer form), restarts the
-- clock; the API then sets the time it received the report.
-- +goose StatementBegin
CREATE FUNCTION billing_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.billing_status IS DISTINCT FROM OLD.billing_status THEN
        INSERT INTO billing_lifecycle (subscription_id, status_since) VALUES (NEW.id, now())
        ON CONFLICT (subscription_id) DO UPDATE SET status_since = now();
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER subscriptions_billing_status AFTER INSERT OR UPDATE OF billing_status ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION billing_status_changed();

-- API tokens for systems elsewhere (the billing system). Only the SHA-256 of a token is kept; the
-- token is shown once when it is created.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    scope        text NOT NULL CHECK (scope IN ('billing')),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text NOT NULL DEFAULT ''
);

-- Reports received, by idempotency key per token: a repeat is answered from here and changes nothing.
CREATE TABLE billing_reports (
    token_id        bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash    bytea NOT NULL,
    response_status integer NOT NULL,
    response_body   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, idempotency_key)
);

-- +goose Down
DROP TABLE billing_reports;
DROP TABLE api_tokens;
DROP TRIGGER subscriptions_billing_status ON subscriptions;
DROP FUNCTION billing_status_changed();
DROP TABLE billing_lifecycle;
DROP TABLE billing_policy;
