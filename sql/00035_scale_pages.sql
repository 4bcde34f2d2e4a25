-- +goose Up
-- Pages that do not grow with the fleet (issue 14): every sort and filter of the subscription list,
-- the dashboard, the audit log and the reconcile page is served by an index, substring search by
-- trigrams, and the counts per provisioning status are maintained instead of counted per request.

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it. It ships in
-- Debian's postgresql package (contrib).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Substring search covers the customer's email and name and the server's name and IPv4, which live
-- in two tables; no index can serve an OR across a join. Each subscription therefore keeps the text
-- it is searched by, the four fields separated by a unit separator (U+001F, which the search refuses),
-- kept current by triggers, and one trigram index serves the search. The list query still checks
-- each field on its own, so the separator never joins two fields into a match.
ALTER TABLE subscriptions ADD COLUMN search_text text NOT NULL DEFAULT '';

-- +goose StatementBegin
CREATE FUNCTION subscription_search_text(email text, name text, hostname text, ip inet) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(email, '') || E'\x1f' || coalesce(name, '') || E'\x1f' || coalesce(hostname, '')
        || E'\x1f' || coalesce(host(ip), '')
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION subscriptions_set_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.customer_id IS NOT DISTINCT FROM OLD.customer_id
           AND NEW.vps_hostname IS NOT DISTINCT FROM OLD.vps_hostname
           AND NEW.vps_ip_address IS NOT DISTINCT FROM OLD.vps_ip_address THEN
            RETURN NEW;
        END IF;
    END IF;
    SELECT subscription_search_text(c.email, c.name, NEW.vps_hostname, NEW.vps_ip_address)
    INTO NEW.search_text FROM customers c WHERE c.id = NEW.customer_id;
    NEW.search_text := coalesce(NEW.search_text, '');
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_search_text BEFORE INSERT OR UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_set_search_text();

-- +goose StatementBegin
CREATE FUNCTION customers_propagate_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE subscriptions s
    SET search_text = subscription_search_text(NEW.email, NEW.name, s.vps_hostname, s.vps_ip_address)
    WHERE s.customer_id = NEW.id;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER customers_search_text AFTER UPDATE OF email, name ON customers
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION customers_propagate_search_text();

UPDATE subscriptions s
SET search_text = subscription_search_text(c.email, c.name, s.vps_hostname, s.vps_ip_address)
FROM customers c WHERE c.id = s.customer_id;

CREATE INDEX subscriptions_search_trgm_idx ON subscriptions USING gin (search_text gin_trgm_ops);

-- One index per sort of the list (newest is the primary key; email is customers' unique index).
-- Status sorts in lifecycle order, newest first within a status.
CREATE INDEX subscriptions_status_id_idx ON subscriptions (provisioning_status, id DESC);
DROP INDEX subscriptions_status_idx;
CREATE INDEX subscriptions_updated_idx ON subscriptions (updated_at DESC, id DESC);
CREATE INDEX subscriptions_status_updated_idx ON subscriptions (provisioning_status, updated_at DESC, id DESC);
-- The dashboard's stuck provisionings: the longest-running step of each in-flight state first.
CREATE INDEX subscriptions_status_step_started_idx ON subscriptions (provisioning_status, step_started_at)
    WHERE step_started_at IS NOT NULL;
CREATE INDEX customers_name_idx ON customers (name, id);

-- Counts per provisioning status ('none': never provisioned), maintained so the dashboard and the
-- list never count the table. Writers only insert deltas (no row every writer must lock, so
-- provisionings in parallel neither wait for each other nor deadlock); readers add the deltas to
-- the counts, and fold them in now and then (subscription_status_counts_fold).
CREATE TABLE subscription_status_counts (
    status text PRIMARY KEY,
    n      bigint NOT NULL
);
CREATE TABLE subscription_status_deltas (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status text NOT NULL,
    n      bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION subscription_status_deltas_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO subscription_status_deltas (status, n)
        SELECT coalesce(provisioning_status::text, 'none'), count(*) FROM new_rows GROUP BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO subscription_status_deltas (status, n)
        SELECT coalesce(provisioning_status::text, 'none'), -count(*) FROM old_rows GROUP BY 1;
    ELSE
        INSERT INTO subscription_status_deltas (status, n)
        SELECT st, sum(d) FROM (
            SELECT coalesce(provisioning_status::text, 'none') AS st, 1 AS d FROM new_rows
            UNION ALL
            SELECT coalesce(provisioning_status::text, 'none'), -1 FROM old_rows
        ) x GROUP BY st HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_count_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscription_status_deltas_record();
CREATE TRIGGER subscriptions_count_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscription_status_deltas_record();
CREATE TRIGGER subscriptions_count_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION subscription_status_deltas_record();

-- +goose StatementBegin
CREATE FUNCTION subscription_status_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM subscription_status_deltas;
    DELETE FROM subscription_status_counts;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_count_truncate AFTER TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION subscription_status_counts_truncate();

-- Folds the deltas into the counts; one caller at a time (others return at once). Deltas committed
-- meanwhile stay for the next fold; a delta is deleted and added in the same transaction, so no
-- reader ever sees it twice or not at all.
-- +goose StatementBegin
CREATE FUNCTION subscription_status_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('subscription_status_counts_fold')) THEN
        RETURN;
    END IF;
    WITH d AS (
        DELETE FROM subscription_status_deltas RETURNING status, n
    ), s AS (
        SELECT status, sum(n)::bigint AS n FROM d GROUP BY status
    )
    INSERT INTO subscription_status_counts (status, n) SELECT status, n FROM s
    ON CONFLICT (status) DO UPDATE SET n = subscription_status_counts.n + EXCLUDED.n;
END;
$$;
-- +goose StatementEnd

INSERT INTO subscription_status_counts (status, n)
SELECT coalesce(provisioning_status::text, 'none'), count(*) FROM subscriptions GROUP BY 1;

-- The audit log of one subscription, newest first.
CREATE INDEX audit_log_subscription_occurred_idx ON audit_log (subscription_id, occurred_at DESC, id DESC)
    WHERE subscription_id IS NOT NULL;
DROP INDEX audit_log_subscription_idx;

-- The reconcile page: open findings, oldest first.
CREATE INDEX reconcile_findings_open_seen_idx ON reconcile_findings (first_seen_at, id) WHERE resolved_at IS NULL;

-- +goose Down
DROP INDEX reconcile_findings_open_seen_idx;
CREATE INDEX audit_log_subscription_idx ON audit_log (subscription_id);
DROP INDEX audit_log_subscription_occurred_idx;
DROP FUNCTION subscription_status_counts_fold();
DROP TRIGGER subscriptions_count_truncate ON subscriptions;
DROP FUNCTION subscription_status_counts_truncate();
DROP TRIGGER subscriptions_count_delete ON subscriptions;
DROP TRIGGER subscriptions_count_update ON subscriptions;
DROP TRIGGER subscriptions_count_insert ON subscriptions;
DROP FUNCTION subscription_status_deltas_record();
DROP TABLE subscription_status_deltas;
DROP TABLE subscription_status_counts;
DROP INDEX customers_name_idx;
DROP INDEX subscriptions_status_step_started_idx;
DROP INDEX subscriptions_status_updated_idx;
DROP INDEX subscriptions_updated_idx;
CREATE INDEX subscriptions_status_idx ON subscriptions (provisioning_status, id);
DROP INDEX subscriptions_status_id_idx;
DROP INDEX subscriptions_search_trgm_idx;
DROP TRIGGER customers_search_text ON customers;
DROP FUNCTION customers_propagate_search_text();
DROP TRIGGER subscriptions_search_text ON subscriptions;
DROP FUNCTION subscriptions_set_search_text();
DROP FUNCTION subscription_search_text(text, text, text, inet);
ALTER TABLE subscriptions DROP COLUMN search_text;
