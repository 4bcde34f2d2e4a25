-- name: CustomerCreate :one
INSERT INTO customers (email, name, telegram_user_id)
VALUES (@email::text, @name::text, sqlc.narg(telegram_user_id)::bigint)
RETURNING *;

-- name: CustomerUpdate :one
UPDATE customers
SET email = @email::text, name = @name::text, telegram_user_id = sqlc.narg(telegram_user_id)::bigint, updated_at = now()
WHERE id = @id::bigint
RETURNING *;

-- name: CustomerGet :one
SELECT * FROM customers WHERE id = @id::bigint;
