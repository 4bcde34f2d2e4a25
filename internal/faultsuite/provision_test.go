package faultsuite

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// chaosSeed fixes every random choice of the suite (which servers fail, when workers die, which
// requests get a 5xx), so a failure can be replayed.
const chaosSeed = 20240611

// TestFaultsOneWebOneWorker provisions 50 subscriptions through one web process while the
// simulator answers 10 % of requests with 5xx, throws 429 storms, fails 5 % of create actions,
// and the worker process is SIGKILLed at random moments and restarted.
func TestFaultsOneWebOneWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: long test")
	}
	t.Parallel()
	provisionUnderFaults(t, 1, 1, 50, chaosSeed)
}

// TestFaultsTwoWebsTwoWorkers does the same with two web and two worker processes against one
// database, admins and VPS callbacks spread over both web processes.
func TestFaultsTwoWebsTwoWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: long test")
	}
	t.Parallel()
	provisionUnderFaults(t, 2, 2, 50, chaosSeed+1)
}

// serverErrors answers about 10 % of all API requests with a 5xx, spread over Hetzner's four.
func serverErrors() []hcloudsim.ErrorFault {
	// Faults are tried in order; each probability is of what the earlier ones left.
	return []hcloudsim.ErrorFault{
		{Status: 500, Probability: 0.025},
		{Status: 502, Probability: 0.025 / 0.975},
		{Status: 503, Probability: 0.025 / 0.95},
		{Status: 504, Probability: 0.025 / 0.925},
	}
}

// storms adds a 429 burst of 5 to 20 requests at random moments until stopped.
type storms struct {
	stopc chan struct{}
	done  chan struct{}
	n     atomic.Int64
}

func startStorms(sim *hcloudsim.Simulator, seed uint64) *storms {
	st := &storms{stopc: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, 429))
	go func() {
		defer close(st.done)
		for {
			select {
			case <-st.stopc:
				return
			case <-time.After(500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))):
			}
			burst := 5 + rng.IntN(16)
			_ = sim.UpdateFaults(func(f *hcloudsim.Faults) { f.RateLimitStorm += burst })
			st.n.Add(1)
		}
	}()
	return st
}

func (st *storms) stop() int {
	close(st.stopc)
	<-st.done
	return int(st.n.Load())
}

func provisionUnderFaults(t *testing.T, webs, workers, n int, seed uint64) {
	s := newStack(t, stackOpts{webs: webs, workers: workers, dbURL: dbtest.URL(t)})
	a := signIn(t, s.baseURL)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = a.createCustomer(t, i+1)
	}

	// 5 % of the servers get a failing create_server action (the simulator has no probability for
	// action failures, so the seed picks which).
	rng := rand.New(rand.NewPCG(seed, 5))
	failing := map[int64]bool{}
	for len(failing) < max(1, n*5/100) {
		failing[ids[rng.IntN(n)]] = true
	}
	simSeed := seed
	faults := hcloudsim.Faults{Errors: serverErrors(), Seed: &simSeed}
	for id := range failing {
		faults.ActionFailures = append(faults.ActionFailures, hcloudsim.ActionFailure{
			Command: "create_server", Server: s.serverName(id), Count: 1,
			Message: "fault suite: the host ran out of capacity"})
	}
	require.NoError(t, s.sim.SetFaults(faults))
	st := startStorms(s.sim, seed)
	ch := startChaos(seed, s.workers, time.Second, 3*time.Second)

	start := time.Now()
	for _, id := range ids {
		a.press(t, id, "provision")
	}
	subs := s.waitSettled(t, ids)
	kills, nStorms := ch.stop(), st.stop()
	left := s.sim.Faults() // which failing create actions were used up
	require.NoError(t, s.sim.SetFaults(hcloudsim.Faults{}))
	settled := time.Since(start)

	// Under faults: each subscription ready, or failed with a reason; nothing orphaned or doubled.
	var r report
	var failed []int64
	for _, id := range ids {
		sub := subs[id]
		if sub.Status == "failed" {
			require.NotEmpty(t, sub.Error, "subscription %d failed without a reason", id)
			require.NotEmpty(t, sub.Step, "subscription %d failed without its step", id)
			failed = append(failed, id)
		}
	}
	problems := s.checkResources(subs, &r)
	require.Empty(t, problems, "after the faults")
	s.jobsSettle(t) // no jobs stuck after the faults
	for id := range failing {
		// Its create action failed, unless the deadline (slow polls under 5xx) came first. One
		// exception: a worker killed after sending the create, before recording it, leaves the
		// failing server to the next worker, which finds it gone (or sees it vanish after adopting
		// it) and creates another, which may well end ready. The failure was used up then.
		if subs[id].Status == "ready" {
			require.False(t, slices.ContainsFunc(left.ActionFailures, func(f hcloudsim.ActionFailure) bool { return f.Server == s.serverName(id) }),
				"subscription %d is ready though its failing create action never ran: %v", id, s.events(t, id, 100))
			continue
		}
		require.Equal(t, "failed", subs[id].Status, "subscription %d had a failing create action", id)
		require.Regexp(t, "Hetzner could not create server|CREATE_DEADLINE", subs[id].Error)
	}
	reasons := map[string]int{}
	for _, id := range failed {
		reason := subs[id].Error
		if i := strings.IndexAny(reason, ":(."); i > 0 {
			reason = reason[:i]
		}
		reason, _, _ = strings.Cut(reason, " rachel-sub-")
		reasons[subs[id].Step+": "+reason]++
	}
	t.Logf("settled in %s under faults: %d ready, %d failed %v; %d worker kills, %d 429 storms, %d 5xx and %d 429 answers",
		settled.Round(time.Millisecond), n-len(failed), len(failed), reasons, kills, nStorms,
		count5xx(s.sim), s.sim.RequestCount("", 429))

	// Retry takes every failed one to ready (faults off, as after an incident).
	for _, id := range failed {
		a.press(t, id, "retry")
	}
	subs = s.waitSettled(t, ids)
	r = report{FailedThenRetried: len(failed)}
	for _, id := range ids {
		if subs[id].Status == "ready" {
			r.Provisioned++
		} else {
			r.Lost++
			t.Errorf("subscription %d is %s after Retry: %s; %v", id, subs[id].Status, subs[id].Error, s.events(t, id, 5))
		}
	}
	problems = s.checkResources(subs, &r)
	require.Empty(t, problems, "after Retry")
	require.Len(t, s.sim.Servers(), n, "one server per subscription")
	s.jobsSettle(t)

	starts, crashes := 0, 0
	for _, w := range s.workers {
		st, cr := w.counts()
		starts += st
		crashes += cr
	}
	r.print(t, fmt.Sprintf("webs=%d workers=%d worker_kills=%d worker_starts=%d worker_self_exits=%d storms=%d 5xx=%d 429=%d jobs=%s",
		webs, workers, kills, starts, crashes, nStorms, count5xx(s.sim), s.sim.RequestCount("", 429), s.jobStates(t)))
	r.requireClean(t, n)
	for _, p := range s.webs {
		require.False(t, p.exited(), "%s still runs", p.name)
	}
}

func count5xx(sim *hcloudsim.Simulator) int {
	n := 0
	for _, code := range []int{500, 502, 503, 504} {
		n += sim.RequestCount("", code)
	}
	return n
}
