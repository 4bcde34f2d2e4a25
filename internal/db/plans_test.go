package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// planRows is how many subscriptions (and as many events and audit entries) the plans are checked
// at: issue 14's fleet size.
const planRows = 100_000

// seedPlansSQL fills a database like a fleet of $1 subscriptions in a mix of states, with an
// event and an audit entry each, in a few set-based statements.
var seedPlansSQL = []string{
	`INSERT INTO customers (email, name) SELECT format('plan-%s@example.com', g), format('Plan customer %s', g) FROM generate_series(1, $1) g`,
	`INSERT INTO subscriptions (customer_id, plan, billing_status, provisioning_status, hetzner_server_id, vps_ip_address,
	    vps_hostname, provisioned_at, step_started_at, provisioning_error, failed_step, updated_at)
	 SELECT id, 'personal', 'active', st, CASE WHEN st IN ('ready', 'failed', 'cloud_init') THEN 70000000 + id END,
	    CASE WHEN st IN ('ready', 'cloud_init') THEN '10.0.0.0'::inet + id END,
	    CASE WHEN st IS NOT NULL THEN format('rachel-plan-%s', id) END,
	    CASE WHEN st = 'ready' THEN now() END, CASE WHEN st IS NOT NULL THEN now() - make_interval(secs => (id % 900)::float8) END,
	    CASE WHEN st = 'failed' THEN 'it failed' END, CASE WHEN st = 'failed' THEN 'cloud_init'::provisioning_status END,
	    now() - make_interval(secs => id::float8)
	 FROM (SELECT id, CASE WHEN id % 20 < 15 THEN 'ready' WHEN id % 20 < 17 THEN NULL WHEN id % 20 = 17 THEN 'failed'
	                  WHEN id % 20 = 18 THEN 'cloud_init' ELSE 'creating' END::provisioning_status AS st FROM customers) m`,
	`INSERT INTO provisioning_events (subscription_id, step, kind, message, actor)
	 SELECT s.id, 'pending', 'entered', 'Provisioning requested', 'plans@example.com' FROM subscriptions s`,
	`INSERT INTO audit_log (occurred_at, admin_email, action, subscription_id, detail)
	 SELECT now() - make_interval(secs => s.id::float8), 'plans@example.com', 'provision', s.id, '' FROM subscriptions s`,
	`INSERT INTO reconcile_findings (kind, hetzner_server_id, server_name, resolved_at)
	 SELECT 'orphan', g, format('rachel-gone-%s', g), CASE WHEN g % 10 > 0 THEN now() END FROM generate_series(1, $1 / 10) g`,
	`ANALYZE`,
}

// explained runs each query twice through next: once under EXPLAIN, keeping the plan, then for
// real, so the sqlc function under test gets its rows. next plans per call as the services do.
type explained struct {
	next  database.DBTX
	pool  *pgxpool.Pool // for the rolled-back runs of writes
	mu    sync.Mutex
	plans []string // EXPLAIN (ANALYZE, FORMAT JSON) output, one per query run
	// bounds[i] says whether plans[i] is held to maxRowsRead: every query but a search's. How
	// much of a table a substring search reads depends on how common and how clustered its
	// matches are (a walk of the sort's index stopping at the page, or the trigram index's
	// matches); it is only held to no sequential scan.
	bounds []bool
	search bool // the queries now run for a search
}

// writes matches a statement that changes rows: it is explained (and so run) in a transaction of
// its own that is rolled back, so that only the real run changes anything.
var writes = regexp.MustCompile(`(?i)\b(INSERT|UPDATE|DELETE)\b`)

func (e *explained) explain(ctx context.Context, sql string, args []any) error {
	var plan string
	explain := func(dbtx database.DBTX) error {
		return dbtx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan)
	}
	var err error
	if writes.MatchString(strings.SplitN(sql, "\n", 2)[1]) {
		err = e.rolledBack(ctx, explain)
	} else {
		err = explain(e.next)
	}
	if err != nil {
		return fmt.Errorf("explain %s: %w", firstLine(sql), err)
	}
	e.mu.Lock()
	e.plans = append(e.plans, plan)
	e.bounds = append(e.bounds, !e.search)
	e.mu.Unlock()
	return nil
}

// rolledBack runs f in a transaction of its own on the pool and rolls it back.
func (e *explained) rolledBack(ctx context.Context, f func(database.DBTX) error) error {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return f(database.PlanPerCall(tx))
}

func (e *explained) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return e.next.Exec(ctx, sql, args...)
}

func (e *explained) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := e.explain(ctx, sql, args); err != nil {
		return nil, err
	}
	return e.next.Query(ctx, sql, args...)
}

func (e *explained) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := e.explain(ctx, sql, args); err != nil {
		return errRow{err}
	}
	return e.next.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func firstLine(sql string) string { return strings.SplitN(sql, "\n", 2)[0] }

// bigTables are the tables that grow with the fleet or its history: no page or detector may read
// them whole.
var bigTables = map[string]bool{"subscriptions": true, "customers": true, "provisioning_events": true, "audit_log": true,
	"notify_incidents": true, "reconcile_findings": true, "billing_lifecycle": true, "assistant_health": true}

// maxRowsRead bounds the rows one query may read of a big table: a page reads what it shows, the
// rows before it in its window (at most 2,000) and what a filter passes over on the way (the
// window over the filter's share, at most 20,000 for the seeded shares), never the table.
const maxRowsRead = planRows / 4

// tableReads lists the problems of a JSON plan run with ANALYZE: sequential scans of a big table,
// and, when bounded, scans that read more than maxRowsRead of one (rows returned plus rows
// filtered out, over all loops).
func tableReads(t *testing.T, plan string, bounded bool) []string {
	var doc []struct{ Plan planNode }
	require.NoError(t, json.Unmarshal([]byte(plan), &doc))
	var out []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if bigTables[n.Relation] {
			if n.NodeType == "Seq Scan" {
				out = append(out, "sequential scan of "+n.Relation)
			}
			if read := (n.ActualRows + n.RemovedByFilter + n.RemovedByRecheck) * max(n.Loops, 1); bounded && read > maxRowsRead {
				out = append(out, fmt.Sprintf("%s of %s read %.0f rows", n.NodeType, n.Relation, read))
			}
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	for _, d := range doc {
		walk(d.Plan)
	}
	return out
}

type planNode struct {
	NodeType         string     `json:"Node Type"`
	Relation         string     `json:"Relation Name"`
	ActualRows       float64    `json:"Actual Rows"`
	Loops            float64    `json:"Actual Loops"`
	RemovedByFilter  float64    `json:"Rows Removed by Filter"`
	RemovedByRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans            []planNode `json:"Plans"`
}

// TestPlansAtScale: at 100,000 subscriptions, every query of the subscription list (each sort,
// the status filters, a search), of the dashboard, the audit log, the reconcile page and the status
// fragment, and of the notification, billing and health detectors, runs with the parameters the
// pages pass and the planner settings the app connects with, without a sequential scan of a table
// that grows with the fleet (bigTables) and, but for a search with many matches, reading less
// than a quarter of any of them.
func TestPlansAtScale(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	for _, sql := range seedPlansSQL {
		var args []any
		if strings.Contains(sql, "$1") {
			args = []any{planRows}
		}
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err, firstLine(sql))
	}
	t.Logf("seeded in %s", time.Since(start).Round(time.Millisecond))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions`).Scan(&n))
	require.Equal(t, planRows, n)

	q := db.New()
	e := &explained{next: database.PlanPerCall(pool), pool: pool}
	// A search runs as customer.List runs it: in a transaction that prices sequential scans
	// out, and, when its count finds fewer matches than the cap, that reads its matches through
	// the trigram index. A search with few matches is held to maxRowsRead like any query; one
	// with many is not (see explained.bounds).
	searching := func(status, search string, f func() error) func() error {
		if search == "" {
			return f
		}
		return func() error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if err := q.PlannerPreferIndexes(ctx, tx); err != nil {
					return err
				}
				n, err := q.SubscriptionCountUpTo(ctx, database.PlanPerCall(tx), db.SubscriptionCountUpToParams{Status: status, Search: search, Cap: 501})
				if err != nil {
					return err
				}
				few := n < 501
				if few {
					if err := q.PlannerReadMatches(ctx, tx); err != nil {
						return err
					}
				}
				e.next, e.search = database.PlanPerCall(tx), !few
				defer func() { e.next, e.search = database.PlanPerCall(pool), false }()
				return f()
			})
		}
	}
	run := func(name string, f func() error) {
		e.mu.Lock()
		e.plans, e.bounds = nil, nil
		e.mu.Unlock()
		require.NoError(t, f(), name)
		require.NotEmpty(t, e.plans, name)
		for i, p := range e.plans {
			for _, problem := range tableReads(t, p, e.bounds[i]) {
				t.Errorf("%s: %s:\n%s", name, problem, p)
			}
		}
	}

	sorts := []string{"", "email", "name", "status", "updated"}
	statuses := []string{"", "none", "ready", "failed", "destroying"}
	for _, sort := range sorts {
		for _, status := range statuses {
			for _, search := range []string{"", "Plan customer 99", "rachel-plan-1", "10.0.1.", "plan-4242@", "customer 4242"} {
				// The deepest page: customer.MaxListRows, or MaxSearchRows for a search.
				deepest := int32(1950)
				if search != "" {
					deepest = 450
				}
				for _, off := range []int32{0, deepest} {
					name := fmt.Sprintf("list sort=%q status=%q search=%q offset=%d", sort, status, search, off)
					run(name, searching(status, search, func() error {
						rows, err := q.SubscriptionList(ctx, e, db.SubscriptionListParams{Status: status, Search: search, Sort: sort, Lim: 50, Off: off})
						if err == nil && search == "" && status == "" && off == 0 && len(rows) != 50 {
							err = fmt.Errorf("%d rows", len(rows))
						}
						return err
					}))
				}
				if sort == "" {
					run(fmt.Sprintf("count status=%q search=%q", status, search), searching(status, search, func() error {
						_, err := q.SubscriptionCountUpTo(ctx, e, db.SubscriptionCountUpToParams{Status: status, Search: search, Cap: 501})
						return err
					}))
				}
			}
		}
	}
	run("dashboard counts", func() error {
		rows, err := q.SubscriptionCountByStatus(ctx, e)
		var total int64
		for _, r := range rows {
			total += r.N
		}
		if err == nil && total != planRows {
			err = fmt.Errorf("counts add up to %d", total)
		}
		return err
	})
	// The seed gives a server to ready, failed and cloud_init rows (17 of every 20), no prices, and
	// places none in a project.
	const seededServers = planRows / 20 * 17
	run("dashboard fleet", func() error {
		f, err := q.FleetSummary(ctx, e)
		if err == nil && (f.Servers != seededServers || f.Unpriced != seededServers || f.MonthlyEur != 0) {
			err = fmt.Errorf("fleet %+v, want %d unpriced servers", f, seededServers)
		}
		return err
	})
	run("dashboard and placement project usage", func() error {
		u, err := q.ProjectUsage(ctx, e, []string{"default", "second"})
		if err == nil && (len(u) != 2 || u[0].Used != 0 || u[1].Used != 0) {
			err = fmt.Errorf("usage %+v", u)
		}
		return err
	})
	run("dashboard billing schedule", func() error {
		_, err := q.BillingEnding(ctx, e, db.BillingEndingParams{Destroyable: []string{"ready", "failed", "cloud_init", "creating", "pending"}, Lim: 20})
		return err
	})
	run("dashboard failed and stuck", func() error {
		working := []string{"pending", "creating", "cloud_init", "injecting_secrets", "destroying"}
		before := make([]time.Time, len(working))
		for i := range before {
			before[i] = time.Now().Add(-5 * time.Minute)
		}
		rows, err := q.SubscriptionAttention(ctx, e, db.SubscriptionAttentionParams{Failed: "failed", States: working, StartedBefore: before, Lim: 20})
		if err == nil && len(rows) != 20+2*20 { // failed, creating and cloud_init (steps started up to 15 min ago)
			err = fmt.Errorf("%d rows", len(rows))
		}
		return err
	})
	run("findings", func() error {
		rows, err := q.FindingListOpen(ctx, e, 200)
		if err == nil && len(rows) != 200 {
			err = fmt.Errorf("%d open findings", len(rows))
		}
		return err
	})
	sub := int64(4242)
	for _, s := range []*int64{nil, &sub} {
		for _, off := range []int32{0, 1950} {
			run(fmt.Sprintf("audit subscription=%v offset=%d", s != nil, off), func() error {
				_, err := q.AuditList(ctx, e, db.AuditListParams{SubscriptionID: s, Lim: 50, Off: off})
				return err
			})
		}
		run(fmt.Sprintf("audit count subscription=%v", s != nil), func() error {
			_, err := q.AuditCountUpTo(ctx, e, db.AuditCountUpToParams{SubscriptionID: s, Cap: 2001})
			return err
		})
	}
	admin, action, since := "plans@example.com", "provision", time.Now().Add(-time.Hour)
	for name, p := range map[string]db.AuditListParams{
		"admin":        {AdminEmail: &admin, Lim: 50, Off: 1950},
		"action":       {Action: &action, Lim: 50, Off: 1950},
		"time range":   {Since: &since, Lim: 50},
		"admin+action": {AdminEmail: &admin, Action: &action, Lim: 50},
	} {
		run("audit filtered by "+name, func() error {
			_, err := q.AuditList(ctx, e, p)
			return err
		})
		run("audit count filtered by "+name, func() error {
			_, err := q.AuditCountUpTo(ctx, e, db.AuditCountUpToParams{AdminEmail: p.AdminEmail, Action: p.Action, Since: p.Since, Until: p.Until, Cap: 2001})
			return err
		})
	}
	run("audit actions", func() error {
		a, err := q.AuditActions(ctx, e)
		if err == nil && (len(a) != 1 || a[0] != "provision") {
			err = fmt.Errorf("actions %v", a)
		}
		return err
	})
	run("status fragment", func() error {
		_, err := q.UIStatusGet(ctx, e, 4242)
		return err
	})

	// The notification detectors (notify/scan.go), with half the failed and stuck rows notified
	// already and then all of them: neither reading what to open nor resolving what went reads a
	// big table whole (a walk of a partial index of the open incidents or findings reads what is
	// open, not the history, and passes the read bound).
	for _, sql := range []string{
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'provision_failed:' || id, 'provision_failed', id, 'failed', now() FROM subscriptions WHERE provisioning_status = 'failed' AND id % 40 = 17`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'provision_stuck:' || id || ':' || provisioning_status, 'provision_stuck', id, 'stuck', now()
		 FROM subscriptions WHERE provisioning_status IN ('cloud_init', 'creating') AND id % 40 >= 20`,
		`INSERT INTO notify_incidents (key, kind, summary, opened_at, resolved_at)
		 SELECT 'provision_failed:' || g, 'provision_failed', 'long gone', now(), now() FROM generate_series(1, $1) g`,
		// Billing (billing.Evaluate): 2,500 ready subscriptions canceled, 500 of them held, 250 due
		// (a 2-day grace), 750 not held due within a day, 375 of which notified.
		`UPDATE subscriptions SET billing_status = 'canceled' WHERE id % 40 = 5`,
		`UPDATE billing_lifecycle SET status_since = now() - CASE WHEN subscription_id % 400 = 5 THEN interval '50 hours'
		     WHEN subscription_id % 80 = 5 THEN interval '47 hours' ELSE interval '1 hour' END,
		     held_at = CASE WHEN subscription_id % 200 = 45 THEN now() END
		 WHERE subscription_id % 40 = 5`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'billing_destroy_soon:' || subscription_id, 'billing_destroy_soon', subscription_id, 'soon', now()
		 FROM billing_lifecycle WHERE subscription_id % 160 = 5 AND subscription_id % 400 <> 5 AND held_at IS NULL`,
		// Health (health.CheckAll): every ready VPS checked, 2,500 down, half of them notified.
		`INSERT INTO assistant_health (subscription_id, checked_at, state, detail, last_seen_at, consecutive_failures)
		 SELECT id, now(), CASE WHEN id % 40 = 1 THEN 'down' ELSE 'up' END, '', now() - make_interval(secs => id::float8),
		     CASE WHEN id % 40 = 1 THEN 3 ELSE 0 END
		 FROM subscriptions WHERE provisioning_status = 'ready'`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'assistant_down:' || subscription_id, 'assistant_down', subscription_id, 'down', now()
		 FROM assistant_health WHERE consecutive_failures > 0 AND subscription_id % 80 = 1`,
		`ANALYZE subscriptions`,
		`ANALYZE billing_lifecycle`,
		`ANALYZE assistant_health`,
		`ANALYZE notify_incidents`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = []any{planRows}
		}
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err, firstLine(sql))
	}
	var states []string
	var cutoffs []time.Time
	for _, st := range state.Working {
		states, cutoffs = append(states, string(st)), append(cutoffs, time.Now().Add(-provision.ExpectedDuration(st)))
	}
	destroyable := []string{"pending", "creating", "cloud_init", "injecting_secrets", "ready", "failed"}
	canceledDue, pastDueDue := time.Now().Add(-48*time.Hour), time.Now().Add(-7*24*time.Hour)
	allNotified := false
	detectors := map[string]func() error{
		"notify failed to open": func() error {
			rows, err := q.NotifyFailedUnnotified(ctx, e, 1000)
			if want := map[bool]int{false: 1000, true: 0}[allNotified]; err == nil && len(rows) != want {
				err = fmt.Errorf("%d failed without an incident, want %d", len(rows), want)
			}
			return err
		},
		"notify failed to resolve": func() error {
			ids, err := q.NotifyFailedResolve(ctx, e, db.NotifyFailedResolveParams{Now: time.Now(), Lim: 1000})
			if err == nil && len(ids) != 0 {
				err = fmt.Errorf("%d resolved that still failed", len(ids))
			}
			return err
		},
		"notify failed by the server limit": func() error {
			_, err := q.NotifyFailedByLimit(ctx, e, "Hetzner's project limit is reached")
			if errors.Is(err, db.ErrNotFound) {
				err = nil
			}
			return err
		},
		"notify stuck to open": func() error {
			found := 0
			for i, st := range states {
				rows, err := q.NotifyStuckUnnotified(ctx, e, db.NotifyStuckUnnotifiedParams{State: db.ProvisioningStatus(st), Cutoff: cutoffs[i], Lim: 1000})
				if err != nil {
					return err
				}
				found += len(rows)
			}
			if (found < 1000) != allNotified {
				return fmt.Errorf("%d stuck without an incident", found)
			}
			return nil
		},
		"notify stuck to resolve": func() error {
			_, err := q.NotifyStuckResolve(ctx, e, db.NotifyStuckResolveParams{Now: time.Now(), States: states, Cutoffs: cutoffs, Lim: 1000})
			return err
		},
		"notify findings to open": func() error {
			_, err := q.NotifyFindingsUnnotified(ctx, e, 1000)
			return err
		},
		"notify findings to resolve": func() error {
			_, err := q.NotifyFindingsResolve(ctx, e, db.NotifyFindingsResolveParams{Now: time.Now(), Lim: 1000})
			return err
		},
		"billing due": func() error {
			rows, err := q.BillingDue(ctx, e, db.BillingDueParams{Destroyable: destroyable, CanceledDue: canceledDue, PastDueDue: pastDueDue, Lim: 1000})
			if err == nil && len(rows) != 250 {
				err = fmt.Errorf("%d due, want 250", len(rows))
			}
			return err
		},
		"billing soon to open": func() error {
			rows, err := q.BillingSoonUnnotified(ctx, e, db.BillingSoonUnnotifiedParams{Destroyable: destroyable,
				CanceledDue: canceledDue, PastDueDue: pastDueDue, CanceledWarn: canceledDue.Add(24 * time.Hour), PastDueWarn: pastDueDue.Add(24 * time.Hour), Lim: 1000})
			if want := map[bool]int{false: 375, true: 0}[allNotified]; err == nil && len(rows) != want {
				err = fmt.Errorf("%d due within a day without a notification, want %d", len(rows), want)
			}
			return err
		},
		"billing soon to resolve": func() error {
			ids, err := q.BillingSoonGone(ctx, e, db.BillingSoonGoneParams{Destroyable: destroyable,
				CanceledDue: canceledDue, PastDueDue: pastDueDue, CanceledWarn: canceledDue.Add(24 * time.Hour), PastDueWarn: pastDueDue.Add(24 * time.Hour), Lim: 1000})
			if err == nil && len(ids) != 0 {
				err = fmt.Errorf("%d resolved that are still due within a day", len(ids))
			}
			return err
		},
		"billing counts": func() error {
			c, err := q.BillingEndingCounts(ctx, e, db.BillingEndingCountsParams{Destroyable: destroyable,
				CanceledDue: canceledDue, PastDueDue: pastDueDue, CanceledWarn: canceledDue.Add(24 * time.Hour), PastDueWarn: pastDueDue.Add(24 * time.Hour)})
			if err == nil && (c.Held != 500 || c.Soon != 750) {
				err = fmt.Errorf("counts %+v", c)
			}
			return err
		},
		"health down to open": func() error {
			rows, err := q.HealthDownUnnotified(ctx, e, db.HealthDownUnnotifiedParams{DownAfter: 2, Lim: 1000})
			if want := map[bool]int{false: 1000, true: 0}[allNotified]; err == nil && len(rows) != want {
				err = fmt.Errorf("%d down without an incident, want %d", len(rows), want)
			}
			return err
		},
		"health down to resolve": func() error {
			ids, err := q.HealthDownGone(ctx, e, db.HealthDownGoneParams{DownAfter: 2, Lim: 1000})
			if err == nil && len(ids) != 0 {
				err = fmt.Errorf("%d resolved that are still down", len(ids))
			}
			return err
		},
		"health count down": func() error {
			n, err := q.HealthCountDown(ctx, e, 2)
			if err == nil && n != 2500 {
				err = fmt.Errorf("%d down, want 2500", n)
			}
			return err
		},
	}
	for name, f := range detectors {
		run(name, f)
	}
	for _, sql := range []string{
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'provision_failed:' || id, 'provision_failed', id, 'failed', now() FROM subscriptions WHERE provisioning_status = 'failed'
		 ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'provision_stuck:' || id || ':' || provisioning_status, 'provision_stuck', id, 'stuck', now()
		 FROM subscriptions WHERE provisioning_status IN ('cloud_init', 'creating')
		 ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING`,
		`INSERT INTO notify_incidents (key, kind, summary, opened_at)
		 SELECT kind || ':' || hetzner_server_id, kind, 'finding', now() FROM reconcile_findings WHERE resolved_at IS NULL
		 ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'billing_destroy_soon:' || subscription_id, 'billing_destroy_soon', subscription_id, 'soon', now()
		 FROM billing_lifecycle WHERE subscription_id % 80 = 5 AND subscription_id % 400 <> 5 AND held_at IS NULL
		 ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING`,
		`INSERT INTO notify_incidents (key, kind, subscription_id, summary, opened_at)
		 SELECT 'assistant_down:' || subscription_id, 'assistant_down', subscription_id, 'down', now()
		 FROM assistant_health WHERE consecutive_failures > 0
		 ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING`,
		`ANALYZE notify_incidents`,
	} {
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err, firstLine(sql))
	}
	allNotified = true
	for name, f := range detectors {
		run(name+" (all notified)", f)
	}
}
