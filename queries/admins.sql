-- name: AdminCreate :one
INSERT INTO admins (email, password_hash)
VALUES (@email::text, @password_hash::text)
RETURNING *;

-- name: AdminGetByEmail :one
SELECT * FROM admins WHERE email = @email::text;

-- name: AdminSetPassword :exec
UPDATE admins SET password_hash = @password_hash::text WHERE id = @id::bigint;
