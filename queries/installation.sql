-- name: InstallationID :one
-- This installation's ID, in the names and labels of what it creates in Hetzner.
SELECT id FROM installation;
