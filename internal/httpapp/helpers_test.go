package httpapp_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// serverName is the subscription's server name in the test database's installation.
func serverName(t testing.TB, pool *pgxpool.Pool, id int64) string {
	t.Helper()
	inst, err := db.New().InstallationID(context.Background(), pool)
	if err != nil {
		t.Fatalf("installation ID: %v", err)
	}
	return provision.ServerName(inst, id)
}
