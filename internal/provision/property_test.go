package provision

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// envPropertySeed reproduces a run of TestStateMachineProperties (its seed is logged).
const envPropertySeed = "RACHEL_PROVISION_PROPERTY_SEED"

// settledStates are the states an admin can act on (or that need no action).
var settledStates = map[db.ProvisioningStatus]bool{"": true, db.ProvisioningStatusReady: true,
	db.ProvisioningStatusFailed: true, db.ProvisioningStatusDestroyed: true}

// TestStateMachineProperties drives a few subscriptions through a random interleaving of
// Provision, Retry, Re-inject and Destroy, SIGKILLs of the worker process, and Hetzner faults
// (5xx answers, failing create actions, lost callbacks, servers deleted behind the app's back),
// and checks the invariants:
//   - at no point more than one server or SSH key per subscription;
//   - once the faults stop, every subscription reaches a state an admin can act on (ready,
//     failed with its reason, destroyed, or never provisioned), and Retry or Destroy works there;
//   - nothing is orphaned: after Destroy of them all, Hetzner holds none of their servers or keys.
//
// The run is bounded (6 subscriptions, 30 operations); RACHEL_PROVISION_PROPERTY_SEED repeats one.
func TestStateMachineProperties(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envPropertySeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (%s=%d repeats this run)", seed, envPropertySeed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	b := setup(t, func(o *setupOpts) {
		o.noWork = true
		o.env["CALLBACK_DEADLINE"], o.env["CREATE_DEADLINE"], o.env["INJECT_DEADLINE"] = "10s", "10s", "6s"
	})
	ctx := context.Background()
	inst := b.inst(t)
	const nSubs, nOps = 6, 30
	ids := make([]int64, nSubs)
	for i := range ids {
		ids[i] = b.newSubscription(t)
	}

	var worker *exec.Cmd
	startWorker := func() {
		cmd, lines := b.startWorkerProcess(t, "")
		waitLine(t, lines, "STARTED")
		worker = cmd
	}
	startWorker()

	// perSub counts this installation's servers and keys in Hetzner by their subscription label.
	perSub := func() (servers, keys map[string]int) {
		servers, keys = map[string]int{}, map[string]int{}
		for _, s := range b.sim.Servers() {
			if s.Labels[LabelInstallation] == inst {
				servers[s.Labels[LabelSubscription]]++
			}
		}
		for _, k := range b.sim.SSHKeys() {
			if k.Labels[LabelInstallation] == inst {
				keys[k.Labels[LabelSubscription]]++
			}
		}
		return servers, keys
	}
	checkAtMostOne := func(when string) {
		servers, keys := perSub()
		for sub, n := range servers {
			require.LessOrEqual(t, n, 1, "%s: subscription %s has %d servers", when, sub, n)
		}
		for sub, n := range keys {
			require.LessOrEqual(t, n, 1, "%s: subscription %s has %d SSH keys", when, sub, n)
		}
	}
	eventCount := func() int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM provisioning_events`).Scan(&n))
		return n
	}
	allSettled := func() bool {
		for _, id := range ids {
			if !settledStates[statusOf(b.sub(t, id))] {
				return false
			}
		}
		return true
	}
	// progress paces the operations by what the system does: it returns once anything was
	// recorded, or everything is settled, or (a subscription waiting out a deadline) after a while.
	progress := func() {
		before := eventCount()
		deadline := time.Now().Add(3 * time.Second)
		for eventCount() == before && !allSettled() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling interval of a condition
		}
	}

	faults := func() hcloudsim.Faults {
		f := hcloudsim.Faults{Seed: hcloud.Ptr(rng.Uint64())}
		if rng.IntN(2) == 0 {
			f.Errors = append(f.Errors, hcloudsim.ErrorFault{Route: []string{"POST /servers", "GET /actions", "POST /ssh_keys", "DELETE /servers/{id}"}[rng.IntN(4)],
				Status: []int{500, 502, 503, 504}[rng.IntN(4)], Probability: 0.3})
		}
		if rng.IntN(2) == 0 {
			f.ActionFailures = append(f.ActionFailures, hcloudsim.ActionFailure{Command: "create_server",
				Server: ServerName(inst, ids[rng.IntN(nSubs)]), Count: 1, Message: "property test: no capacity"})
		}
		if rng.IntN(2) == 0 {
			f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: ServerName(inst, ids[rng.IntN(nSubs)]), LoseCallback: true})
		}
		return f
	}

	var trace []string
	for op := range nOps {
		id := ids[rng.IntN(nSubs)]
		var what string
		var err error
		switch r := rng.IntN(100); {
		case r < 30:
			what, err = "provision", b.svc.Provision(ctx, id, admin)
		case r < 48:
			what, err = "retry", b.svc.Retry(ctx, id, admin)
		case r < 56:
			what, err = "reinject", b.svc.Reinject(ctx, id, admin)
		case r < 70:
			what, err = "destroy", b.svc.Destroy(ctx, id, admin)
		case r < 76:
			what = "server deleted behind the app's back"
			if sub := b.sub(t, id); sub.HetznerServerID != nil {
				b.sim.DeleteServerBehindBack(*sub.HetznerServerID)
			}
		case r < 86:
			what = "kill worker"
			require.NoError(t, worker.Process.Signal(syscall.SIGKILL))
			_, _ = worker.Process.Wait()
			startWorker()
		default:
			what = "faults"
			require.NoError(t, b.sim.SetFaults(faults()))
		}
		if err != nil && !errors.Is(err, ErrInvalidState) {
			require.NoError(t, err, "op %d: %s %d", op, what, id)
		}
		trace = append(trace, fmt.Sprintf("%d:%s(%d)=%v", op, what, id, err != nil))
		progress()
		checkAtMostOne(fmt.Sprintf("after op %d (%s %d)", op, what, id))
	}

	t.Logf("operations: %v", trace)
	// The faults stop; whatever state each subscription is in, it settles where an admin can act.
	require.NoError(t, b.sim.SetFaults(hcloudsim.Faults{}))
	settle := func(why string) {
		testkit.Eventually(t, why, allSettled)
		checkAtMostOne(why)
	}
	settle(fmt.Sprintf("every subscription to settle (seed %d, ops %v)", seed, trace))
	for _, id := range ids {
		sub := b.sub(t, id)
		if statusOf(sub) == db.ProvisioningStatusFailed {
			require.NotEmpty(t, deref(sub.ProvisioningError), "subscription %d failed without a reason", id)
			require.NoError(t, b.svc.Retry(ctx, id, admin), "Retry is allowed on failed subscription %d", id)
		}
	}
	settle("every Retry to settle")

	// Destroy works from every state, and leaves nothing behind in Hetzner.
	for _, id := range ids {
		if st := statusOf(b.sub(t, id)); st != "" && st != db.ProvisioningStatusDestroyed {
			require.NoError(t, b.svc.Destroy(ctx, id, admin), "Destroy subscription %d in %s", id, st)
		}
	}
	settle("every Destroy to settle")
	for _, id := range ids {
		sub := b.sub(t, id)
		require.Contains(t, []db.ProvisioningStatus{"", db.ProvisioningStatusDestroyed}, statusOf(sub),
			"subscription %d: %s; events %v", id, deref(sub.ProvisioningError), b.events(t, id))
	}
	servers, keys := perSub()
	require.Empty(t, servers, "no server orphaned (seed %d)", seed)
	require.Empty(t, keys, "no SSH key orphaned (seed %d)", seed)
}
