// Package database opens the PostgreSQL pool and applies the schema migrations (the app's own and
// River's job tables).
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/rachelcloud/admin/internal/db"
	schema "github.com/rachelcloud/admin/sql"
)

// PlannerSettings are sent with every connection Open makes (in the startup message: no round
// trip), unless DATABASE_URL names the setting itself (then its value wins).
//
// random_page_cost: PostgreSQL's default of 4 prices a page read through an index as four
// sequential reads, as on a spinning disk. This database lives in memory (100,000 subscriptions
// with their history are a few hundred MB) or on SSD, where the two cost about the same, and at 4
// the planner walks the primary key and filters 40,000 rows rather than read the 2,000 a status
// index delivers in order (the list filtered by status, its count) or filters a whole table
// rather than use the trigram index (a search). 1.1 is the usual value for SSD and cached data;
// the plan test (internal/db, at 100,000 subscriptions) runs with it.
var PlannerSettings = map[string]string{"random_page_cost": "1.1"}

// Open connects a pool to url and checks that the database answers.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	for name, value := range PlannerSettings {
		if _, set := cfg.ConnConfig.RuntimeParams[name]; !set {
			cfg.ConnConfig.RuntimeParams[name] = value
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// migrateLock names the session advisory lock that serialises Migrate across processes.
const migrateLock = "migrate"

// Migrate brings the schema up to date: River's tables, then the app's goose migrations. It is
// safe to run from several processes at once (the web processes and the release phase all do):
// River's migrator takes no lock of its own (two at once on a fresh database fail with a
// duplicate pg_type key), so the whole run holds a session advisory lock, on a connection of its
// own outside the pool so the pool's size does not matter; the others wait, then find nothing
// to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	lockConn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("migrations: connect for the lock: %w", err)
	}
	defer lockConn.Close(context.WithoutCancel(ctx))
	q := db.New()
	if err := q.WorkerLock(ctx, lockConn, migrateLock); err != nil {
		return fmt.Errorf("migrations: take the lock: %w", err)
	}
	// Closing the connection releases the lock too; unlocking first lets the next one go at once.
	defer func() {
		_ = q.WorkerUnlock(context.WithoutCancel(ctx), lockConn, migrateLock)
	}()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	provider, err := gooseProvider(pool)
	if err != nil {
		return err
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// Current reports whether every migration has been applied (for /readyz).
func Current(ctx context.Context, pool *pgxpool.Pool) error {
	provider, err := gooseProvider(pool)
	if err != nil {
		return err
	}
	pending, err := provider.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	if pending {
		return errors.New("migrations pending: run `migrate`")
	}
	return nil
}

func gooseProvider(pool *pgxpool.Pool) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("goose locker: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, schema.Migrations,
		goose.WithLogger(goose.NopLogger()), goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("goose: %w", err)
	}
	return p, nil
}

// PlanPerCall makes the queries run through it planned for their parameters on every call: pgx's
// describe-cached mode sends them as unnamed statements, which PostgreSQL plans when they are
// bound. For queries whose optional filters and sort keys (`@x = ” OR …`, `CASE WHEN @sort …`)
// fold away only with the values known, a cached generic plan would scan the table instead of
// using the index the values call for.
func PlanPerCall(dbtx DBTX) DBTX { return planPerCall{dbtx} }

// DBTX is what sqlc's queries run on: a pool, a connection or a transaction.
type DBTX interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

type planPerCall struct{ DBTX }

func (p planPerCall) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return p.DBTX.Exec(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func (p planPerCall) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return p.DBTX.Query(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func (p planPerCall) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return p.DBTX.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}
