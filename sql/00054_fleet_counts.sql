-- +goose Up
-- The dashboard's fleet (servers, monthly cost, unpriced servers, provisionings waiting for the
-- server limit) and placement's servers per Hetzner project, maintained like the counts per status
-- (00035): summing every subscription with a server on every request was a sequential scan of
-- the table, 68 ms at 100,000 subscriptions (issue 14).
--
-- Each subscription contributes, in its project ('' while none is recorded):
--   servers      1 if it holds a server
--   held         1 if it holds a server or is creating one (what placement counts)
--   monthly_eur  its server's monthly price, if it holds a priced server
--   unpriced     1 if it holds a server without a recorded price
--   waiting      1 if it waits for the server limit in the creating step
-- Writers insert deltas (no row every writer must lock); readers add the deltas to the totals
-- and fold them in now and then (fleet_counts_fold).

-- +goose StatementBegin
CREATE FUNCTION fleet_contribution(hetzner_project text, hetzner_server_id bigint,
    provisioning_status provisioning_status, server_price_monthly numeric, limit_wait_since timestamptz,
    OUT project text, OUT servers bigint, OUT held bigint, OUT monthly_eur numeric, OUT unpriced bigint,
    OUT waiting bigint)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(hetzner_project, ''),
           (hetzner_server_id IS NOT NULL)::int::bigint,
           (hetzner_server_id IS NOT NULL OR provisioning_status IS NOT DISTINCT FROM 'creating')::int::bigint,
           CASE WHEN hetzner_server_id IS NOT NULL THEN coalesce(server_price_monthly, 0) ELSE 0 END,
           (hetzner_server_id IS NOT NULL AND server_price_monthly IS NULL)::int::bigint,
           (limit_wait_since IS NOT NULL AND provisioning_status IS NOT DISTINCT FROM 'creating')::int::bigint
$$;
-- +goose StatementEnd

CREATE TABLE fleet_counts (
    project     text PRIMARY KEY,
    servers     bigint  NOT NULL,
    held        bigint  NOT NULL,
    monthly_eur numeric NOT NULL,
    unpriced    bigint  NOT NULL,
    waiting     bigint  NOT NULL
);
CREATE TABLE fleet_deltas (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project     text    NOT NULL,
    servers     bigint  NOT NULL,
    held        bigint  NOT NULL,
    monthly_eur numeric NOT NULL,
    unpriced    bigint  NOT NULL,
    waiting     bigint  NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION fleet_deltas_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fleet_deltas (project, servers, held, monthly_eur, unpriced, waiting)
        SELECT f.project, sum(f.servers), sum(f.held), sum(f.monthly_eur), sum(f.unpriced), sum(f.waiting)
        FROM new_rows r, fleet_contribution(r.hetzner_project, r.hetzner_server_id, r.provisioning_status, r.server_price_monthly, r.limit_wait_since) f
        GROUP BY f.project
        HAVING sum(f.servers) <> 0 OR sum(f.held) <> 0 OR sum(f.monthly_eur) <> 0
            OR sum(f.unpriced) <> 0 OR sum(f.waiting) <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO fleet_deltas (project, servers, held, monthly_eur, unpriced, waiting)
        SELECT f.project, -sum(f.servers), -sum(f.held), -sum(f.monthly_eur), -sum(f.unpriced), -sum(f.waiting)
        FROM old_rows r, fleet_contribution(r.hetzner_project, r.hetzner_server_id, r.provisioning_status, r.server_price_monthly, r.limit_wait_since) f
        GROUP BY f.project
        HAVING sum(f.servers) <> 0 OR sum(f.held) <> 0 OR sum(f.monthly_eur) <> 0
            OR sum(f.unpriced) <> 0 OR sum(f.waiting) <> 0;
    ELSE
        INSERT INTO fleet_deltas (project, servers, held, monthly_eur, unpriced, waiting)
        SELECT project, sum(servers), sum(held), sum(monthly_eur), sum(unpriced), sum(waiting)
        FROM (
            SELECT f.* FROM new_rows r, fleet_contribution(r.hetzner_project, r.hetzner_server_id, r.provisioning_status, r.server_price_monthly, r.limit_wait_since) f
            UNION ALL
            SELECT f.project, -f.servers, -f.held, -f.monthly_eur, -f.unpriced, -f.waiting
            FROM old_rows r, fleet_contribution(r.hetzner_project, r.hetzner_server_id, r.provisioning_status, r.server_price_monthly, r.limit_wait_since) f
        ) x
        GROUP BY project
        HAVING sum(servers) <> 0 OR sum(held) <> 0 OR sum(monthly_eur) <> 0
            OR sum(unpriced) <> 0 OR sum(waiting) <> 0;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_fleet_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_deltas_record();
CREATE TRIGGER subscriptions_fleet_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_deltas_record();
CREATE TRIGGER subscriptions_fleet_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION fleet_deltas_record();

-- +goose StatementBegin
CREATE FUNCTION fleet_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM fleet_deltas;
    DELETE FROM fleet_counts;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_fleet_truncate AFTER TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION fleet_counts_truncate();

-- Folds the deltas into the totals; one caller at a time (others return at once). A delta is
-- deleted and added in the same transaction, so no reader sees it twice or not at all.
-- +goose StatementBegin
CREATE FUNCTION fleet_counts_fold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('fleet_counts_fold')) THEN
        RETURN;
    END IF;
    WITH d AS (
        DELETE FROM fleet_deltas RETURNING project, servers, held, monthly_eur, unpriced, waiting
    ), s AS (
        SELECT project, sum(servers)::bigint AS servers, sum(held)::bigint AS held, sum(monthly_eur) AS monthly_eur,
               sum(unpriced)::bigint AS unpriced, sum(waiting)::bigint AS waiting
        FROM d GROUP BY project
    )
    INSERT INTO fleet_counts (project, servers, held, monthly_eur, unpriced, waiting)
    SELECT project, servers, held, monthly_eur, unpriced, waiting FROM s
    ON CONFLICT (project) DO UPDATE SET servers = fleet_counts.servers + EXCLUDED.servers,
        held = fleet_counts.held + EXCLUDED.held, monthly_eur = fleet_counts.monthly_eur + EXCLUDED.monthly_eur,
        unpriced = fleet_counts.unpriced + EXCLUDED.unpriced, waiting = fleet_counts.waiting + EXCLUDED.waiting;
END;
$$;
-- +goose StatementEnd

INSERT INTO fleet_counts (project, servers, held, monthly_eur, unpriced, waiting)
SELECT f.project, sum(f.servers), sum(f.held), sum(f.monthly_eur), sum(f.unpriced), sum(f.waiting)
FROM subscriptions r, fleet_contribution(r.hetzner_project, r.hetzner_server_id, r.provisioning_status, r.server_price_monthly, r.limit_wait_since) f
GROUP BY f.project;

-- Placement read the servers per project through this index; it reads fleet_counts now.
DROP INDEX subscriptions_project_used_idx;

-- The dashboard's coming destroys and the billing policy read the canceled and past-due
-- subscriptions; this index keeps that from scanning the table.
CREATE INDEX subscriptions_billing_ending_idx ON subscriptions (id) WHERE billing_status IN ('canceled', 'past_due');

-- +goose Down
DROP INDEX subscriptions_billing_ending_idx;
CREATE INDEX subscriptions_project_used_idx ON subscriptions (hetzner_project)
    WHERE hetzner_project IS NOT NULL AND (hetzner_server_id IS NOT NULL OR provisioning_status = 'creating');
DROP TRIGGER subscriptions_fleet_truncate ON subscriptions;
DROP FUNCTION fleet_counts_truncate();
DROP TRIGGER subscriptions_fleet_delete ON subscriptions;
DROP TRIGGER subscriptions_fleet_update ON subscriptions;
DROP TRIGGER subscriptions_fleet_insert ON subscriptions;
DROP FUNCTION fleet_deltas_record();
DROP FUNCTION fleet_counts_fold();
DROP TABLE fleet_deltas;
DROP TABLE fleet_counts;
DROP FUNCTION fleet_contribution(text, bigint, provisioning_status, numeric, timestamptz);
