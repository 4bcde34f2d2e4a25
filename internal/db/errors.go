package db

import "github.com/jackc/pgx/v5"

// ErrNotFound is what the data layer returns for a row that does not exist: the error sqlc's
// `:one` queries return for no row. It is pgx's own value under the data boundary's name, so
// callers test errors.Is(err, db.ErrNotFound) and none maps pgx.ErrNoRows itself; services wrap
// it with what was missing ("subscription 7: …") and the web layer answers it with a 404.
var ErrNotFound = pgx.ErrNoRows
