package faultsuite

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestGracefulShutdown: SIGTERM, as at a deploy. The web process drains and exits 0; the worker
// stops taking jobs and exits 0 in a few seconds; provisionings under way are resumed by the
// next worker and all end ready, with one server each.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: long test")
	}
	t.Parallel()
	ctx := context.Background()
	s := newStack(t, stackOpts{webs: 1, dbURL: dbtest.URL(t),
		// cloud-init takes 5 s real time: a window the poll below cannot miss on a loaded machine.
		sim: hcloudsim.Config{TimeScale: 0.05, CreateDuration: 10 * time.Second, StartDuration: 5 * time.Second,
			CloudInitDuration: 100 * time.Second}})
	a := signIn(t, s.baseURL)
	const n = 6
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = a.createCustomer(t, i+1)
	}
	for _, id := range ids {
		a.press(t, id, "provision")
	}

	// A worker that is stopped while the provisionings are under way.
	first := startProc(t, "worker-first", s.env, "work")
	testkit.Eventually(t, "a provisioning to reach cloud_init", func() error {
		subs, err := readSubs(ctx, s.pool)
		if err != nil {
			return err
		}
		for _, r := range subs {
			if r.Status == "cloud_init" {
				return nil
			}
		}
		return errors.New("none in cloud_init")
	})
	// How long it takes is reported, not asserted: a loaded machine is slow, and the worker's own
	// bounds (3 s for running steps, then cancel) are what make it stop.
	start := time.Now()
	require.True(t, first.stop(testkit.HangGuard(t)), "the worker stops by itself on SIGTERM:\n%s", first.tail(20))
	took := time.Since(start)
	require.NoError(t, first.err, "exit status 0:\n%s", first.tail(20))
	require.Contains(t, first.output(), "provision worker stopped")

	// The next worker resumes everything.
	s.workers = append(s.workers, supervise(t, "worker-next", s.env, "work"))
	subs := s.waitSettled(t, ids)
	var r report
	for _, id := range ids {
		require.Equal(t, "ready", subs[id].Status, "subscription %d: %s", id, subs[id].Error)
	}
	r.Provisioned = n
	for _, p := range s.checkResources(subs, &r) {
		t.Error(p)
	}
	s.jobsSettle(t)
	r.requireClean(t, n)

	// The web process drains and exits 0 on SIGTERM too.
	web := s.webs[0]
	require.True(t, web.stop(testkit.HangGuard(t)), "the web process stops by itself on SIGTERM")
	require.NoError(t, web.err)
	_, err := http.Get(s.webURL(0) + "/healthz")
	require.Error(t, err, "nothing listens any more")
	r.print(t, "worker SIGTERMed mid-run, stopped in "+took.Round(time.Millisecond).String()+"; next worker resumed all")
}
