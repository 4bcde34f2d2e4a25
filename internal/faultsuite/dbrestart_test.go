package faultsuite

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/pgcluster"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestDatabaseRestart stops PostgreSQL in the middle of 20 provisionings and starts it again on
// the same port. Nobody touches the processes: the web process keeps running and answers again,
// the worker is restarted by its supervisor if it exits, and every subscription ends ready
// without a Retry.
func TestDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: long test")
	}
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now()
	dir := t.TempDir()
	port := freePort(t)
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: port, Fast: true})
	require.NoError(t, err)
	running := true
	t.Cleanup(func() {
		if running {
			_ = cluster.Stop()
		}
	})

	s := newStack(t, stackOpts{webs: 1, workers: 1, dbURL: cluster.URL("postgres"), migrate: true,
		// cloud-init retries its phone_home 10 times, 3 s apart (scaled): at 0.2 that spans the
		// few seconds the database is away, as it would in real time.
		sim: hcloudsim.Config{TimeScale: 0.2, CreateDuration: time.Second, StartDuration: 500 * time.Millisecond,
			CloudInitDuration: 3 * time.Second}})
	t.Logf("stack up after %s", time.Since(t0).Round(time.Millisecond))
	a := signIn(t, s.baseURL)
	const n = 20
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = a.createCustomer(t, i+1)
	}
	for _, id := range ids {
		a.press(t, id, "provision")
	}

	// Stop the database while the provisionings are under way: some servers created, none ready.
	var before map[int64]subRow
	testkit.Eventually(t, "a quarter of the servers created", func() error {
		subs, err := readSubs(ctx, s.pool)
		if err != nil {
			return err
		}
		before = subs
		created := 0
		for _, id := range ids {
			if subs[id].ServerID != nil {
				created++
			}
		}
		if created < n/4 {
			return fmt.Errorf("%d of %d created", created, n)
		}
		return nil
	})
	t.Logf("stopping the database after %s", time.Since(t0).Round(time.Millisecond))
	phase := map[string]int{}
	for _, id := range ids {
		phase[before[id].Status]++
	}
	require.NoError(t, cluster.Stop())
	running = false
	web := s.webs[0]
	webURL := s.webURL(0)
	testkit.Eventually(t, "/readyz to report the database gone", func() bool { return status(webURL+"/readyz") == http.StatusServiceUnavailable })
	require.Equal(t, http.StatusOK, status(webURL+"/healthz"), "the web process is up without its database")

	// Start it again at once: a restart, not an outage (cloud-init's callback retries span seconds).
	downAt := time.Now()
	cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: port, Fast: true})
	require.NoError(t, err)
	running = true
	testkit.Eventually(t, "/readyz to recover with the database", func() bool { return status(webURL+"/readyz") == http.StatusOK })
	down := time.Since(downAt)

	subs := s.waitSettled(t, ids)
	t.Logf("all settled %s after the restart", time.Since(downAt).Round(time.Millisecond))
	var r report
	for _, id := range ids {
		if subs[id].Status == "ready" {
			r.Provisioned++
		} else {
			r.Lost++
			t.Errorf("subscription %d is %s: %s; %v", id, subs[id].Status, subs[id].Error, s.events(t, id, 6))
		}
	}
	require.Empty(t, s.checkResources(subs, &r))
	s.jobsSettle(t)
	starts, selfExits := s.workers[0].counts()
	require.False(t, web.exited(), "the web process survived the restart")
	r.print(t, fmt.Sprintf("database down %s with %v; web process kept running; worker starts=%d self_exits=%d jobs=%s",
		down.Round(10*time.Millisecond), phase, starts, selfExits, s.jobStates(t)))
	r.requireClean(t, n)
}

// status is the status code of a GET, or 0 when there is no answer.
func status(url string) int {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
