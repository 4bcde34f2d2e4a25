-- +goose Up
-- The audit log is filtered by admin and by action, each within a time range, newest first.
CREATE INDEX audit_log_admin_email_idx ON audit_log (admin_email, occurred_at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, occurred_at DESC, id DESC);

-- +goose Down
DROP INDEX audit_log_action_idx;
DROP INDEX audit_log_admin_email_idx;
