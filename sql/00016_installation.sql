-- +goose Up
-- Ownership in Hetzner that another installation, or this database restored from a backup,
-- cannot mistake for its own.
--
-- The installation ID is generated once, when this migration runs, and goes into the name and the
-- labels of everything the service creates in Hetzner: a second installation sharing the Hetzner
-- project has its own, so it neither adopts nor deletes (nor reports) this one's servers and keys.
CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         text NOT NULL CHECK (id ~ '^[a-z0-9]{12}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (id) VALUES (substr(replace(gen_random_uuid()::text, '-', ''), 1, 12));

-- Every subscription's own random tag, in the labels of its server and key. A database restored
-- with its ID sequence rolled back hands out a subscription ID again, with a new tag: the server
-- of the subscription that had that ID before the restore carries the old tag, and is not adopted
-- or deleted as this one's. (Existing rows each get their own value: the default is volatile.)
ALTER TABLE subscriptions ADD COLUMN hetzner_tag text NOT NULL
    DEFAULT substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)
    CHECK (hetzner_tag ~ '^[a-z0-9]{16}$');

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN hetzner_tag;
DROP TABLE installation;
