// Package schema holds the database migrations (goose files, also sqlc's schema).
package schema

import "embed"

// Migrations are the goose migration files, applied in file name order.
//
//go:embed *.sql
var Migrations embed.FS
