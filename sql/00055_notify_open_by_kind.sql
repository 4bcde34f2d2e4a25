-- +goose Up
-- The notification detectors resolve the open incidents of a kind in batches, lowest ID first
-- (queries/notify.sql): with the ID in the index a batch reads only open incidents of its kind,
-- where (kind) alone left the planner walking the primary key over every incident ever resolved.
CREATE INDEX notify_incidents_kind_open_id_idx ON notify_incidents (kind, id) WHERE resolved_at IS NULL;
DROP INDEX notify_incidents_kind_open_idx;

-- +goose Down
CREATE INDEX notify_incidents_kind_open_idx ON notify_incidents (kind) WHERE resolved_at IS NULL;
DROP INDEX notify_incidents_kind_open_id_idx;
