// Package dbtest gives each test its own freshly migrated PostgreSQL database.
//
// Packages whose tests need a database call [Main] from TestMain. When TEST_DATABASE_URL is set
// (a superuser URL of a server to use), tests create their databases there; otherwise Main starts a
// private, throwaway PostgreSQL cluster from the system's binaries for the package's test binary.
package dbtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/pgcluster"
)

// EnvURL names the variable holding a superuser URL of an existing server for the tests.
const EnvURL = "TEST_DATABASE_URL"

var (
	serverURL string // superuser URL of the server, database part ignored
	template  struct {
		once sync.Once
		name string
		err  error
	}
	counter atomic.Int64
)

// Main runs the package's tests with a database server available and returns the exit code.
func Main(m *testing.M) int {
	serverURL = os.Getenv(EnvURL)
	if serverURL == "" {
		dir, err := os.MkdirTemp("", "rachel-test-pg-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "dbtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cluster, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir, Fast: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: start PostgreSQL:", err)
			return 1
		}
		defer cluster.Stop()
		serverURL = cluster.URL("postgres")
	}
	code := m.Run()
	if template.name != "" {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, withDB(serverURL, "postgres")); err == nil {
			_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", template.name))
			_ = conn.Close(ctx)
		}
	}
	return code
}

// ServerURL is the superuser URL of the test server (for tests that start subprocesses).
func ServerURL() string { return serverURL }

// URL creates a new migrated database and returns its URL; the database is dropped after the test.
func URL(t testing.TB) string {
	t.Helper()
	if serverURL == "" {
		t.Fatal("dbtest: no database server: call dbtest.Main from TestMain")
	}
	template.once.Do(func() { template.name, template.err = makeTemplate() })
	if template.err != nil {
		t.Fatalf("dbtest: migrate template database: %v", template.err)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, withDB(serverURL, "postgres"))
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template.name)); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	// A copy of the template would share its installation ID (generated when the migrations
	// ran): give every test database its own, as a fresh migration would.
	if conn, err := pgx.Connect(ctx, withDB(serverURL, name)); err == nil {
		_, err = conn.Exec(ctx, `UPDATE installation SET id = substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)`)
		_ = conn.Close(ctx)
		if err != nil {
			t.Fatalf("dbtest: new installation ID: %v", err)
		}
	} else {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, withDB(serverURL, "postgres"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return withDB(serverURL, name)
}

// New returns a pool on a new migrated database, closed after the test.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), URL(t), 20)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func makeTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("tmpl_%d", os.Getpid())
	admin, err := pgx.Connect(ctx, withDB(serverURL, "postgres"))
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s", name)); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		return "", err
	}
	pool, err := database.Open(ctx, withDB(serverURL, name), 4)
	if err != nil {
		return "", err
	}
	err = database.Migrate(ctx, pool, nil)
	pool.Close()
	if err != nil {
		return "", err
	}
	return name, nil
}

// withDB replaces the database name in a postgres:// URL.
func withDB(url, name string) string {
	rest, query, _ := strings.Cut(url, "?")
	scheme, hostPath, ok := strings.Cut(rest, "://")
	if !ok {
		return url
	}
	host, _, _ := strings.Cut(hostPath, "/")
	out := scheme + "://" + host + "/" + name
	if query != "" {
		out += "?" + query
	}
	return out
}
