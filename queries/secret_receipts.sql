-- name: SecretReceiptInsert :one
INSERT INTO secret_receipts (subscription_id, files) VALUES (@subscription_id::bigint, @files::jsonb)
RETURNING *;

-- name: SecretReceiptLatest :one
SELECT * FROM secret_receipts WHERE subscription_id = @subscription_id::bigint ORDER BY id DESC LIMIT 1;
