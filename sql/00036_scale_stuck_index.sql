-- +goose Up
-- The dashboard's stuck provisionings are read longest-running first with the ID as tie-break
-- (ORDER BY step_started_at, id LIMIT n): with the ID in the index the read stops after n rows,
-- where an index on (provisioning_status, step_started_at) alone read every stuck row of a state
-- (thousands when a whole batch overran its step) to sort them.
CREATE INDEX subscriptions_status_step_started_id_idx ON subscriptions (provisioning_status, step_started_at, id)
    WHERE step_started_at IS NOT NULL;
DROP INDEX subscriptions_status_step_started_idx;

-- +goose Down
CREATE INDEX subscriptions_status_step_started_idx ON subscriptions (provisioning_status, step_started_at)
    WHERE step_started_at IS NOT NULL;
DROP INDEX subscriptions_status_step_started_id_idx;
