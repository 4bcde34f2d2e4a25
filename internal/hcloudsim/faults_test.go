package hcloudsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

func TestWaitForIsBatched(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var actions []*hcloud.Action
	for i := range 30 {
		res := b.createServer(t, hcloud.ServerCreateOpts{Name: fmt.Sprintf("batch-%d", i)})
		actions = append(actions, res.Action)
		actions = append(actions, res.NextActions...)
	}
	b.sim.ResetRequests()
	require.NoError(t, b.client.Action.WaitFor(ctx, actions...))
	polls := b.sim.RequestCount("GET /actions", 200)
	require.Positive(t, polls)
	// 60 actions are read 25 at a time: 3 requests per round, never one per action.
	require.Zero(t, b.sim.RequestCount("GET /actions/{id}", 0))
	require.Less(t, polls, 60, "WaitFor must read many actions per request")
	for _, sv := range b.sim.Servers() {
		require.Equal(t, "running", sv.Status)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var clock = func() time.Time { return now }
	b := setup(t, func(c *Config) {
		c.RateLimit = 3
		c.RateLimitRefill = 10 * time.Second
		c.Now = func() time.Time { return clock() }
	})
	get := func() *http.Response {
		req, err := http.NewRequest(http.MethodGet, b.url+"/v1/locations", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	for i := 2; i >= 0; i-- {
		resp := get()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "3", resp.Header.Get("RateLimit-Limit"))
		require.Equal(t, strconv.Itoa(i), resp.Header.Get("RateLimit-Remaining"))
		// Full recovery: one request back every 10 s.
		require.Equal(t, strconv.FormatInt(now.Add(time.Duration(3-i)*10*time.Second).Unix(), 10), resp.Header.Get("RateLimit-Reset"))
	}
	resp := get()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "0", resp.Header.Get("RateLimit-Remaining"))
	_, _, err := b.client.Location.List(context.Background(), hcloud.LocationListOpts{})
	require.Error(t, err)

	now = now.Add(10 * time.Second)
	require.Equal(t, http.StatusOK, get().StatusCode, "one request earned back")
	require.Equal(t, http.StatusTooManyRequests, get().StatusCode)
	require.Equal(t, RateLimitState{Limit: 3, Remaining: 0, Reset: now.Add(30 * time.Second)}, b.sim.RateLimit())
	// 429s: our first refused GET, the client's try and its 5 retries, the last GET.
	require.Equal(t, 8, b.sim.RequestCount("GET /locations", http.StatusTooManyRequests))
}

func TestRateLimitStormAndRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Faults.RateLimitStorm = 2 })
	// hcloud-go retries rate_limit_exceeded (MaxRetries must be explicit: 0 disables retries).
	locs, err := b.client.Location.All(context.Background())
	require.NoError(t, err)
	require.Len(t, locs, 6)
	require.Equal(t, 2, b.sim.RequestCount("GET /locations", http.StatusTooManyRequests))
	require.Equal(t, 1, b.sim.RequestCount("GET /locations", http.StatusOK))
	require.Zero(t, b.sim.Faults().RateLimitStorm, "the storm is used up")

	noRetry := hcloud.NewClient(hcloud.WithToken(testToken), hcloud.WithEndpoint(b.url+"/v1"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	require.NoError(t, b.sim.SetFaults(Faults{RateLimitStorm: 1}))
	_, _, err = noRetry.Location.List(context.Background(), hcloud.LocationListOpts{})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded), "got %v", err)
}

func TestErrorFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.Errors = []ErrorFault{{Route: "GET /servers", Status: 503, Count: 1}}
	})
	ctx := context.Background()
	_, _, err := b.client.Server.List(ctx, hcloud.ServerListOpts{})
	require.True(t, hcloud.IsError(err, codeUnavailable), "got %v", err)
	_, _, err = b.client.Server.List(ctx, hcloud.ServerListOpts{})
	require.NoError(t, err, "count 1: the fault switched itself off")

	// 502 and 504 are retried by hcloud-go; the retry succeeds once the fault is spent.
	require.NoError(t, b.sim.SetFaults(Faults{Errors: []ErrorFault{{Status: 502, Count: 2}}}))
	_, _, err = b.client.Location.List(ctx, hcloud.LocationListOpts{})
	require.NoError(t, err)
	require.Equal(t, 2, b.sim.RequestCount("GET /locations", http.StatusBadGateway))

	// Other routes are untouched by a route-specific fault.
	require.NoError(t, b.sim.SetFaults(Faults{Errors: []ErrorFault{{Route: "POST /servers", Status: 500}}}))
	_, _, err = b.client.Location.List(ctx, hcloud.LocationListOpts{})
	require.NoError(t, err)
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "x", ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeServerError), "got %v", err)
	require.Empty(t, b.sim.Servers())

	// A probability with a seeded PRNG: repeatable, and roughly the asked share.
	seed := uint64(42)
	count := func() int {
		require.NoError(t, b.sim.SetFaults(Faults{Seed: &seed, Errors: []ErrorFault{{Route: "GET /server_types", Status: 500, Probability: 0.3}}}))
		n := 0
		for range 200 {
			if _, _, err := b.client.ServerType.List(ctx, hcloud.ServerTypeListOpts{}); err != nil {
				n++
			}
		}
		return n
	}
	first := count()
	require.InDelta(t, 60, first, 30)
	require.Equal(t, first, count(), "same seed, same faults")
}

func TestSlowFault(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.Slow = []SlowFault{{Route: "GET /servers", Delay: Duration(2 * time.Second), Count: 1}}
	})
	c := hcloud.NewClient(hcloud.WithToken(testToken), hcloud.WithEndpoint(b.url+"/v1"),
		hcloud.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	_, _, err := c.Server.List(context.Background(), hcloud.ServerListOpts{})
	require.Error(t, err, "the response comes after the client's timeout")
	_, _, err = c.Server.List(context.Background(), hcloud.ServerListOpts{})
	require.NoError(t, err)
}

func TestActionFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.ActionFailures = []ActionFailure{
			{Command: "create_server", Server: "doomed"},
			{Command: "start_server", Server: "cold", Code: "server_error", Message: "host is on fire"},
		}
	})
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "doomed"})
	err := b.client.Action.WaitFor(ctx, res.Action)
	var aerr hcloud.ActionError
	require.ErrorAs(t, err, &aerr)
	require.Equal(t, "resource_unavailable", aerr.Code)
	a, _, err := b.client.Action.GetByID(ctx, res.NextActions[0].ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ActionStatusError, a.Status)
	sv, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Nil(t, sv, "a server whose creation failed is gone")

	res = b.createServer(t, hcloud.ServerCreateOpts{Name: "cold"})
	err = b.client.Action.WaitFor(ctx, res.Action, res.NextActions[0])
	require.ErrorAs(t, err, &aerr)
	require.Equal(t, "server_error", aerr.Code)
	require.Equal(t, "host is on fire", aerr.Message)
	sv, _, err = b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusOff, sv.Status)
	require.Nil(t, b.sim.Machine(sv.ID))

	// Other servers are unaffected.
	res = b.createServer(t, hcloud.ServerCreateOpts{Name: "fine"})
	require.NoError(t, b.client.Action.WaitFor(ctx, res.Action, res.NextActions[0]))
}

func TestServerFaultsReachTheVPS(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.Servers = []ServerFault{{Server: "flaky", LoseCallback: true, SwapHostKey: true, SSHDelay: Duration(30 * time.Second)}}
	})
	ctx := context.Background()
	for _, name := range []string{"flaky", "solid"} {
		res := b.createServer(t, hcloud.ServerCreateOpts{Name: name})
		require.NoError(t, b.client.Action.WaitFor(ctx, res.NextActions...))
	}
	testkit.Eventually(t, "both VPSes start", func() bool { return len(b.startedConfigs()) == 2 })
	byName := map[string]int{}
	started := b.startedConfigs()
	for i, c := range started {
		byName[c.Hostname] = i
	}
	flaky, solid := started[byName["flaky"]], started[byName["solid"]]
	require.True(t, flaky.LoseCallback)
	require.True(t, flaky.SwapHostKey)
	require.Equal(t, b.sim.scale(30*time.Second), flaky.SSHDelay, "the delay is simulated time, scaled")
	require.False(t, solid.LoseCallback)
	require.False(t, solid.SwapHostKey)
	require.Zero(t, solid.SSHDelay)
}

func TestDeleteServerBehindBack(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "victim"})
	require.NoError(t, b.client.Action.WaitFor(ctx, res.NextActions...))
	testkit.Eventually(t, "VPS up", func() bool { return b.sim.Machine(res.Server.ID) != nil })
	m := b.sim.Machine(res.Server.ID)

	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/_sim/servers/%d/delete_behind_back", b.url, res.Server.ID), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	sv, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Nil(t, sv)
	require.False(t, b.sim.DeleteServerBehindBack(res.Server.ID), "already gone")
	testkit.Eventually(t, "the VPS's sshd is gone", func() bool {
		c, err := (&netDialer{}).dial(m.SSHAddr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func TestSimEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	do := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Empty(t, resp.Header.Get("RateLimit-Remaining"), "/_sim/ is not rate-limited")
		var out map[string]any
		if resp.StatusCode != http.StatusNoContent {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		}
		return resp.StatusCode, out
	}
	status, out := do(http.MethodPut, "/_sim/faults", `{"errors":[{"route":"GET /locations","status":504,"count":1}],"rate_limit_storm":0,"servers":[{"server":"x","ssh_delay":"5s"}]}`)
	require.Equal(t, http.StatusOK, status, "%v", out)
	f := b.sim.Faults()
	require.Equal(t, []ErrorFault{{Route: "GET /locations", Status: 504, Count: 1}}, f.Errors)
	require.Equal(t, Duration(5*time.Second), f.Servers[0].SSHDelay)
	status, _ = do(http.MethodPut, "/_sim/faults", `{"errors":[{"status":418}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	status, _ = do(http.MethodPut, "/_sim/faults", `{"unknown":1}`)
	require.Equal(t, http.StatusBadRequest, status)

	_, _, err := b.client.Location.List(context.Background(), hcloud.LocationListOpts{})
	require.NoError(t, err, "504 is retried")
	b.createKey(t, "k1")
	status, out = do(http.MethodGet, "/_sim/stats", "")
	require.Equal(t, http.StatusOK, status)
	reqs := out["requests"].([]any)
	require.Len(t, reqs, 3, "%v", reqs) // GET /locations 504 and 200, POST /ssh_keys 201
	require.Equal(t, float64(3600-3), out["rate_limit"].(map[string]any)["remaining"])

	status, out = do(http.MethodGet, "/_sim/ssh_keys", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, out["ssh_keys"], 1)
	status, out = do(http.MethodGet, "/_sim/servers", "")
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, out["servers"])
	status, _ = do(http.MethodDelete, "/_sim/faults", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Empty(t, b.sim.Faults().Errors)
	status, _ = do(http.MethodPut, "/_sim/rate_limit", `{"remaining": 0}`)
	require.Equal(t, http.StatusOK, status)
	_, _, err = hcloud.NewClient(hcloud.WithToken(testToken), hcloud.WithEndpoint(b.url+"/v1"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0})).Location.List(context.Background(), hcloud.LocationListOpts{})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded), "got %v", err)
	require.Equal(t, 3, b.sim.RequestCount("", 0)-1, "/_sim/ requests are not counted")
}

type netDialer struct{}

func (netDialer) dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, time.Second)
}
