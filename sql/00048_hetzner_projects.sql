-- +goose Up
-- Several Hetzner projects (issue 14): a subscription records the project its server lives in;
-- the rate-limit budget, the learnt server limit and the shared firewall are per project.
-- Everything from before lived in HCLOUD_TOKEN's project, named 'default'.

-- Set when the creating step places the subscription (before anything is created in Hetzner);
-- NULL while nothing was placed.
ALTER TABLE subscriptions ADD COLUMN hetzner_project text;
UPDATE subscriptions SET hetzner_project = 'default'
WHERE provisioning_status IS NOT NULL AND provisioning_status <> 'pending';

-- Placement counts the servers (and placements in flight) of each project.
CREATE INDEX subscriptions_project_used_idx ON subscriptions (hetzner_project)
    WHERE hetzner_project IS NOT NULL AND (hetzner_server_id IS NOT NULL OR provisioning_status = 'creating');

ALTER TABLE hetzner_rate_limit DROP CONSTRAINT hetzner_rate_limit_pkey;
ALTER TABLE hetzner_rate_limit DROP COLUMN singleton;
ALTER TABLE hetzner_rate_limit ADD COLUMN project text NOT NULL DEFAULT 'default' PRIMARY KEY;

ALTER TABLE hetzner_project_limit DROP CONSTRAINT hetzner_project_limit_pkey;
ALTER TABLE hetzner_project_limit DROP COLUMN singleton;
ALTER TABLE hetzner_project_limit ADD COLUMN project text NOT NULL DEFAULT 'default' PRIMARY KEY;

ALTER TABLE hetzner_shared_resources DROP CONSTRAINT hetzner_shared_resources_pkey;
ALTER TABLE hetzner_shared_resources ADD COLUMN project text NOT NULL DEFAULT 'default';
ALTER TABLE hetzner_shared_resources ADD PRIMARY KEY (project, name);

-- An orphan is deleted with its project's token.
ALTER TABLE reconcile_findings ADD COLUMN project text NOT NULL DEFAULT 'default';

-- +goose Down
ALTER TABLE reconcile_findings DROP COLUMN project;
DELETE FROM hetzner_shared_resources WHERE project <> 'default';
ALTER TABLE hetzner_shared_resources DROP CONSTRAINT hetzner_shared_resources_pkey;
ALTER TABLE hetzner_shared_resources DROP COLUMN project;
ALTER TABLE hetzner_shared_resources ADD PRIMARY KEY (name);
DELETE FROM hetzner_project_limit WHERE project <> 'default';
ALTER TABLE hetzner_project_limit DROP COLUMN project;
ALTER TABLE hetzner_project_limit ADD COLUMN singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton);
DELETE FROM hetzner_rate_limit WHERE project <> 'default';
ALTER TABLE hetzner_rate_limit DROP COLUMN project;
ALTER TABLE hetzner_rate_limit ADD COLUMN singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton);
DROP INDEX subscriptions_project_used_idx;
ALTER TABLE subscriptions DROP COLUMN hetzner_project;
