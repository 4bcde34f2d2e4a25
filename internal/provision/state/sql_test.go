package state_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/provision/state"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// TestAllIsTheEnum: the Go states are the PostgreSQL enum's values, in its order.
func TestAllIsTheEnum(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	rows, err := pool.Query(context.Background(),
		`SELECT enumlabel FROM pg_enum WHERE enumtypid = 'provisioning_status'::regtype ORDER BY enumsortorder`)
	require.NoError(t, err)
	labels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, labels, state.Strings(state.All))
}

// subscriptionIn inserts a subscription in state s, with what the table's constraints want
// there (a server while it may have one, a reason and step when failed).
func subscriptionIn(t *testing.T, pool *pgxpool.Pool, s state.State) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	require.NoError(t, pool.QueryRow(ctx, `
		WITH c AS (INSERT INTO customers (email, name) VALUES ('s' || gen_random_uuid() || '@example.org', 'State') RETURNING id)
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM c RETURNING id`).Scan(&id))
	if s == state.None {
		return id
	}
	server := s != state.Destroyed
	_, err := pool.Exec(ctx, `
		UPDATE subscriptions SET provisioning_status = $2::provisioning_status, step_started_at = now(),
		       hetzner_server_id = CASE WHEN $3 THEN id END, vps_ip_address = CASE WHEN $3 THEN '192.0.2.7'::inet END,
		       provisioned_at = CASE WHEN $2 = 'ready' THEN now() END,
		       deprovisioned_at = CASE WHEN $2 = 'destroyed' THEN now() END,
		       provisioning_error = CASE WHEN $2 = 'failed' THEN 'failed in a test' END,
		       failed_step = CASE WHEN $2 = 'failed' THEN 'creating'::provisioning_status END
		WHERE id = $1`, id, string(s), server)
	require.NoError(t, err)
	return id
}

// statusIn reads a subscription's state and failed step.
func statusIn(t *testing.T, pool *pgxpool.Pool, id int64) (st, failedStep state.State) {
	t.Helper()
	sub, err := db.New().SubscriptionGet(context.Background(), pool, id)
	require.NoError(t, err)
	if sub.ProvisioningStatus != nil {
		st = *sub.ProvisioningStatus
	}
	if sub.FailedStep != nil {
		failedStep = *sub.FailedStep
	}
	return st, failedStep
}

// TestSQLGuardsAgreeWithTable runs every query that changes the state, with the parameters the
// worker and the service pass, on a subscription in every state, and compares what it did with
// the transition table: it moves exactly the states the table's event moves, to the table's
// target, and leaves the others as they were.
func TestSQLGuardsAgreeWithTable(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	q := db.New()
	// A move is one query as its callers run it: from the state the caller saw to the target.
	type move func(id int64, from, to state.State) error
	one := func(_ db.Subscription, err error) error { return err }
	enter := func(ev state.Event) move {
		return func(id int64, from, to state.State) error {
			p := db.ProvisionEnterParams{ID: id, Next: to, Sources: state.Guard(ev)}
			if from != state.None {
				p.FromStatus = &from
			}
			return one(q.ProvisionEnter(ctx, pool, p))
		}
	}
	markGone := func(ev state.Event) move {
		return func(id int64, from, _ state.State) error {
			return one(q.ProvisionMarkServerGone(ctx, pool, db.ProvisionMarkServerGoneParams{ID: id, Reason: "gone", FromStatus: from, Sources: state.Guard(ev)}))
		}
	}
	cases := []struct {
		query string
		ev    state.Event
		run   move
	}{
		{"ProvisionEnter", state.Provision, enter(state.Provision)},
		{"ProvisionEnter", state.Start, enter(state.Start)},
		{"ProvisionEnter", state.Retry, enter(state.Retry)},
		{"ProvisionEnter", state.Reinject, enter(state.Reinject)},
		{"ProvisionEnter", state.Destroy, enter(state.Destroy)},
		{"ProvisionAwaitCallback", state.ServerUp, func(id int64, _, _ state.State) error {
			return one(q.ProvisionAwaitCallback(ctx, pool, db.ProvisionAwaitCallbackParams{ID: id, DeadlineSeconds: 60, Sources: state.Guard(state.ServerUp)}))
		}},
		{"ProvisionCallbackReceived", state.CallbackReceived, func(id int64, _, _ state.State) error {
			return one(q.ProvisionCallbackReceived(ctx, pool, db.ProvisionCallbackReceivedParams{ID: id, Sources: state.Guard(state.CallbackReceived)}))
		}},
		{"ProvisionCloudInitConfirmed", state.CloudInitSeen, func(id int64, _, _ state.State) error {
			return one(q.ProvisionCloudInitConfirmed(ctx, pool, db.ProvisionCloudInitConfirmedParams{ID: id, Sources: state.Guard(state.CloudInitSeen)}))
		}},
		{"ProvisionReady", state.Injected, func(id int64, _, _ state.State) error {
			return one(q.ProvisionReady(ctx, pool, db.ProvisionReadyParams{ID: id, Sources: state.Guard(state.Injected)}))
		}},
		{"ProvisionDestroyed", state.Deleted, func(id int64, _, _ state.State) error {
			return one(q.ProvisionDestroyed(ctx, pool, db.ProvisionDestroyedParams{ID: id, Sources: state.Guard(state.Deleted)}))
		}},
		{"ProvisionFail", state.StepFailed, func(id int64, from, _ state.State) error {
			return one(q.ProvisionFail(ctx, pool, db.ProvisionFailParams{ID: id, Step: from, Reason: "failed", Sources: state.Guard(state.StepFailed)}))
		}},
		{"ProvisionMarkServerGone", state.ServerVanished, markGone(state.ServerVanished)},
		{"ProvisionMarkServerGone", state.MarkGone, markGone(state.MarkGone)},
	}
	for _, c := range cases {
		for _, from := range every {
			// The targets to ask for: the table's, or (where it refuses) any state.
			targets := state.Targets(from, c.ev)
			if len(targets) == 0 {
				targets = []state.State{state.Creating}
			}
			for _, to := range targets {
				t.Run(fmt.Sprintf("%s/%s/%s→%s", c.query, c.ev, state.Name(from), state.Name(to)), func(t *testing.T) {
					id := subscriptionIn(t, pool, from)
					err := c.run(id, from, to)
					after, failedStep := statusIn(t, pool, id)
					if state.Decide(from, c.ev) != state.Move {
						// Refused: no row (or, for a state the enum lacks, a bad parameter) and no change.
						require.Error(t, err)
						if from != state.None {
							require.ErrorIs(t, err, db.ErrNotFound)
						}
						require.Equal(t, from, after, "the query left the state alone")
						return
					}
					require.NoError(t, err, "the query moved the state")
					require.Equal(t, to, after)
					switch c.ev {
					case state.StepFailed:
						require.Equal(t, from, failedStep, "the failed step is kept for Retry")
					case state.ServerVanished, state.MarkGone:
						require.Equal(t, state.Creating, failedStep, "Retry makes a new server")
					}
				})
			}
		}
	}
}

// TestFailedStepsAreSteps: the database accepts as failed_step exactly the states a worker drives
// (those StepFailed leaves; MarkGone records creating), refusing the others (its constraint
// failed_step_is_a_step).
func TestFailedStepsAreSteps(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	for _, s := range state.All {
		id := subscriptionIn(t, pool, state.Failed)
		_, err := pool.Exec(context.Background(), `UPDATE subscriptions SET failed_step = $2::provisioning_status WHERE id = $1`, id, string(s))
		if state.InProgress(s) {
			require.NoError(t, err, "%s may be a failed step", s)
		} else {
			var pgErr interface{ SQLState() string }
			require.True(t, errors.As(err, &pgErr), "%s is no step: %v", s, err)
		}
	}
}
