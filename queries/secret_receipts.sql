-- name: SecretReceiptInsert :one
INSERT INTO secret_receipts (subscription_id, files) VALUES (@subscription_id::bigint, @files::jsonb)
RETURNING *;
