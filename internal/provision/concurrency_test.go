package provision

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

func TestDoubleSubmitAndTwoWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorker(t) // a second worker on the same database
	ctx := context.Background()
	ids := []int64{b.newSubscription(t), b.newSubscription(t), b.newSubscription(t)}

	var wg sync.WaitGroup
	for _, id := range ids {
		for range 3 { // pressing Provision three times at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				require.NoError(t, b.svc.Provision(ctx, id, admin))
			}()
		}
	}
	wg.Wait()
	for _, id := range ids {
		sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
		require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), deref(sub.ProvisioningError))
		var audits int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE subscription_id = $1`, id).Scan(&audits))
		require.Equal(t, 1, audits, "only the first press changes anything")
	}
	b.assertOnly(t, ids...)
	require.Equal(t, 1, len(b.sim.Firewalls()), "one shared firewall")
	require.Equal(t, len(ids), b.sim.RequestCount("POST /servers", 0))
}

func TestDestroyDuringProvisioning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// One destroy per step the provisioning can be in.
	for _, at := range []db.ProvisioningStatus{db.ProvisioningStatusPending, db.ProvisioningStatusCreating, db.ProvisioningStatusCloudInit, db.ProvisioningStatusInjectingSecrets} {
		t.Run(string(at), func(t *testing.T) {
			id := b.newSubscription(t)
			require.NoError(t, b.svc.Provision(ctx, id, admin))
			if at != db.ProvisioningStatusPending {
				b.waitStatus(t, id, at, db.ProvisioningStatusReady)
			}
			require.NoError(t, b.svc.Destroy(ctx, id, admin))
			require.NoError(t, b.svc.Destroy(ctx, id, admin)) // twice changes nothing
			sub := b.waitStatus(t, id, db.ProvisioningStatusDestroyed, db.ProvisioningStatusFailed)
			require.Equal(t, db.ProvisioningStatusDestroyed, statusOf(sub), "%v: %v", deref(sub.ProvisioningError), b.events(t, id))
			for _, s := range b.sim.Servers() {
				require.NotEqual(t, b.name(id), s.Name, "server left over")
			}
			for _, k := range b.sim.SSHKeys() {
				require.NotEqual(t, b.name(id), k.Name, "SSH key left over")
			}
			// A press that arrives after the destroy finished (the worker destroys a pending
			// provisioning within a few queries, often before the second press above) changes
			// nothing either: no error, no event, no audit row, no job.
			evs, jobs := len(b.events(t, id)), b.stepJobs(t, id)
			require.NoError(t, b.svc.Destroy(ctx, id, admin), "Destroy of a destroyed subscription")
			require.Equal(t, db.ProvisioningStatusDestroyed, statusOf(b.sub(t, id)))
			require.Len(t, b.events(t, id), evs)
			require.Equal(t, jobs, b.stepJobs(t, id))
			var audits int
			require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE subscription_id = $1 AND action = 'vps.destroy'`, id).Scan(&audits))
			require.Equal(t, 1, audits, "only the first press is audited")
		})
	}
}

// stepJobs counts the step jobs River holds for the subscription, in any state.
func (b *bundle) stepJobs(t testing.TB, id int64) int {
	t.Helper()
	res, err := b.svc.river.JobList(context.Background(), river.NewJobListParams().Kinds(stepArgs{}.Kind()).First(10000))
	require.NoError(t, err)
	n := 0
	for _, j := range res.Jobs {
		var a stepArgs
		if json.Unmarshal(j.EncodedArgs, &a) == nil && a.SubscriptionID == id {
			n++
		}
	}
	return n
}

func TestInvalidStates(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.ErrorIs(t, b.svc.Retry(ctx, id, admin), ErrInvalidState)
	require.ErrorIs(t, b.svc.Reinject(ctx, id, admin), ErrInvalidState)
	require.ErrorIs(t, b.svc.Destroy(ctx, id, admin), ErrInvalidState)
	require.ErrorIs(t, b.svc.Provision(ctx, 999999, admin), db.ErrNotFound)
	require.Nil(t, b.sub(t, id).ProvisioningStatus, "refused actions changed nothing")

	// Provision writes status, event, audit row and job together.
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	require.Equal(t, db.ProvisioningStatusPending, statusOf(b.sub(t, id)))
	var audits int
	rivertest.RequireInserted(ctx, t, riverpgxv5.New(b.pool), stepArgs{SubscriptionID: id}, nil) // exactly one
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'vps.provision'`).Scan(&audits))
	require.Equal(t, 1, audits)
	require.Len(t, b.events(t, id), 1)
	require.ErrorIs(t, b.svc.Retry(ctx, id, admin), ErrInvalidState)
}
