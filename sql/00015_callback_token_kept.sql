-- +goose Up
-- The callback token itself, encrypted with the keyring (bound to this table, column and row),
-- beside its hash. A creating step that runs again (a crash, a timeout, a Retry) bakes the same
-- token into the user data instead of minting a new one: a create request still in flight from
-- an earlier attempt then makes a server whose callback is still accepted.
ALTER TABLE subscriptions ADD COLUMN callback_token bytea;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN callback_token;
