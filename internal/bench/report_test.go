package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sampleReport is a full run's report with round numbers.
func sampleReport() *Report {
	return &Report{
		Date: time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC), Commit: "abc123", Cores: 2, GoVersion: "go1.26.8", RunSeconds: 420,
		Setup: Setup{TimeScale: 1, CreateS: 10, StartS: 5, CloudInitS: 60, DeleteS: 5, KeyAlgorithm: "rsa-4096", KeyPoolSize: 32, MemoryKeyAlgorithm: "ed25519"},
		Provision: []ProvisionResult{
			{N: 1, PooledKeys: 32, PoolWarm: true, Ready: 1, WallS: 80, SimWallS: 80, Requests: 5, RequestsPerServer: 5, ByEndpoint: map[string]int{"POST /servers": 1, "GET /actions": 3, "POST /ssh_keys": 1}},
			{N: 100, PooledKeys: 32, PoolWarm: true, Ready: 100, WallS: 100, SimWallS: 100, Requests: 214, RequestsPerServer: 2.14, ByEndpoint: map[string]int{"POST /servers": 100, "GET /actions": 14, "POST /ssh_keys": 100}},
		},
		Destroy: []DestroyResult{
			{N: 1, Destroyed: 1, WallS: 7, Requests: 3, RequestsPerServer: 3},
			{N: 100, Destroyed: 100, WallS: 9, Requests: 250, RequestsPerServer: 2.5, ServersLeft: 1},
		},
		Subscriptions: 10000, FragmentPages: 500,
		Load: []LoadResult{
			{Name: LoadStatic, Concurrency: 64, Requests: 1000, RPS: 10000, P50ms: 1, P99ms: 5},
			{Name: LoadFragment, Concurrency: 64, Requests: 1000, RPS: 4000, P50ms: 10, P99ms: 30},
			{Name: LoadList, Concurrency: 64, Requests: 100, RPS: 400, P50ms: 100, P99ms: 300},
		},
		Memory: &MemoryResult{Target: 1000, InFlight: 1000, WorkerPeakRSSMB: 90.5},
	}
}

func TestJSONHasTheTrackedKeysAsNumbers(t *testing.T) {
	t.Parallel()
	js, err := sampleReport().JSON()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(js, &got))
	want := map[string]float64{
		"requests_per_server_n100":     2.14,
		"overhead_ratio_n100":          1.25,
		"destroy_servers_left_n100":    1,
		"fragment_vs_static_ratio_c64": 0.4,
		"fragment_p99_ms_c64":          30,
		"worker_peak_rss_mb_1000":      90.5,
	}
	for k, v := range want {
		require.Contains(t, got, k)
		require.IsType(t, float64(0), got[k], k)
		require.InDelta(t, v, got[k], 1e-9, k)
	}
	require.Contains(t, got, "details")
	goals := got["goals"].(map[string]any)
	at10k := 0 // the sample ran at 10,000 subscriptions and no several-projects burst: no goal of those keys applies
	for k := range Goals {
		if !strings.HasSuffix(k, "_100k") && !strings.HasSuffix(k, "projects") {
			at10k++
		}
	}
	require.Len(t, goals, at10k)
	require.Equal(t, map[string]any{"goal": "<= 2.5", "met": true}, goals["requests_per_server_n100"])
	require.Equal(t, map[string]any{"goal": "<= 1.2", "met": false}, goals["overhead_ratio_n100"])
	require.Equal(t, map[string]any{"goal": "== 0", "met": false}, goals["destroy_servers_left_n100"])
	require.Equal(t, map[string]any{"goal": ">= 0.5", "met": false}, goals["fragment_vs_static_ratio_c64"])
	require.Equal(t, map[string]any{"goal": "< 25", "met": false}, goals["fragment_p99_ms_c64"])
	require.Equal(t, map[string]any{"goal": "< 150", "met": true}, goals["worker_peak_rss_mb_1000"])
}

func TestFiguresLeaveOutWhatDidNotRun(t *testing.T) {
	t.Parallel()
	r := &Report{Provision: []ProvisionResult{{N: 10, Ready: 10, WallS: 50, RequestsPerServer: 2.2}}}
	keys := map[string]bool{}
	for _, f := range r.Figures() {
		keys[f.Key] = true
	}
	require.True(t, keys["requests_per_server_n10"])
	require.False(t, keys["overhead_ratio_n10"], "no N=1 run to compare with")
	require.False(t, keys["fragment_p99_ms_c64"])
	require.False(t, keys["worker_peak_rss_mb_1000"])
}

func TestFiguresWithGoalsComeFirst(t *testing.T) {
	t.Parallel()
	figs := sampleReport().Figures()
	seenPlain := false
	for _, f := range figs {
		if f.Goal == nil {
			seenPlain = true
			continue
		}
		require.False(t, seenPlain, "goal figure %s after a figure without goal", f.Key)
	}
}

func TestMarkdownSaysMetOrMissedBesideEachGoal(t *testing.T) {
	t.Parallel()
	md := sampleReport().Markdown()
	for _, s := range []string{
		"| date | 2025-03-04 05:06 UTC |", "| commit | `abc123` |", "| cores | 2 |",
		"| Hetzner requests per provisioned server, N=100 | 2.14 | <= 2.5 | met |",
		"| Wall time to all ready, N=100 ÷ N=1 | 1.25× | <= 1.2× | **MISSED** |",
		"| Servers left after destroying N=100 | 1 | == 0 | **MISSED** |",
		"| Status fragment ÷ static file throughput, 64 clients | 0.4 | >= 0.5 | **MISSED** |",
		"| Status fragment p99, 64 clients | 30 ms | < 25 ms | **MISSED** |",
		"| Worker peak RSS, 1000 provisionings in flight | 90.5 MB | < 150 MB | met |",
		"| `POST /servers` | 1 | 100 |",
		"| fragment | 64 | 1000 | 0 | 4000 | 10 ms | 30 ms |",
	} {
		require.Contains(t, md, s)
	}
	require.Equal(t, 6, strings.Count(md, "| met |")+strings.Count(md, "| **MISSED** |"))
}

func TestGoalMet(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		g    Goal
		v    float64
		want bool
	}{
		{Goal{"<=", 2.5}, 2.5, true}, {Goal{"<=", 2.5}, 2.51, false},
		{Goal{"<", 25}, 25, false}, {Goal{"<", 25}, 24.9, true},
		{Goal{">=", 0.5}, 0.5, true}, {Goal{">", 0.5}, 0.5, false},
		{Goal{"==", 0}, 0, true}, {Goal{"==", 0}, 1, false}, {Goal{"?", 0}, 0, false},
	} {
		require.Equal(t, c.want, c.g.Met(c.v), "%v %v", c.g, c.v)
	}
}

func TestNum(t *testing.T) {
	t.Parallel()
	require.Equal(t, "0", num(0))
	require.Equal(t, "100", num(100))
	require.Equal(t, "2.14", num(2.14))
	require.Equal(t, "0.001", num(0.0012))
}

func TestMarkdownExplainsKeyGenerationFromTheProfile(t *testing.T) {
	t.Parallel()
	r := sampleReport()
	r.Profile = &Profile{Phase: "during the N=100 burst", Path: "/tmp/p.pprof", Top: []string{"flat flat% sum% cum cum%"}, KeyGenShare: "97.02%"}
	md := r.Markdown()
	require.Contains(t, md, "## Worker CPU profile, during the N=100 burst")
	require.Contains(t, md, "is 97.02% of the worker's CPU samples. The burst needs 100 key pairs and the pool held 32, so at least 68 were generated")
}

// TestFleetKeys: a page-load phase at 100,000 subscriptions also reports its figures under keys
// that name the fleet size, with issue 14's goals; other sizes get no such keys.
func TestFleetKeys(t *testing.T) {
	t.Parallel()
	r := sampleReport()
	r.Subscriptions = 100_000
	r.Load = append(r.Load,
		LoadResult{Name: LoadList, Concurrency: 16, Requests: 1000, RPS: 350, P99ms: 40},
		LoadResult{Name: LoadDashboard, Concurrency: 16, Requests: 1000, RPS: 250, P99ms: 60})
	js, err := r.JSON()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(js, &got))
	for k, v := range map[string]float64{
		"list_p99_ms_c16_100k": 40, "list_rps_c16_100k": 350, "dashboard_p99_ms_c16_100k": 60,
		"fragment_vs_static_ratio_c64_100k": 0.4, "fragment_p99_ms_c64_100k": 30,
	} {
		require.Contains(t, got, k)
		require.InDelta(t, v, got[k], 1e-9, k)
	}
	goals := got["goals"].(map[string]any)
	require.Equal(t, map[string]any{"goal": "< 50", "met": true}, goals["list_p99_ms_c16_100k"])
	require.Equal(t, map[string]any{"goal": ">= 300", "met": true}, goals["list_rps_c16_100k"])
	require.Equal(t, map[string]any{"goal": "< 50", "met": false}, goals["dashboard_p99_ms_c16_100k"])
	require.Equal(t, map[string]any{"goal": ">= 0.5", "met": false}, goals["fragment_vs_static_ratio_c64_100k"])
	require.Contains(t, r.Markdown(), "Dashboard p99, 16 clients, at 100,000 subscriptions")

	// make bench measures the pages after its bursts, whose subscriptions stay in the database.
	r.Subscriptions = 100_111
	js, err = r.JSON()
	require.NoError(t, err)
	require.Contains(t, string(js), "\"list_p99_ms_c16_100k\"")
	require.Contains(t, r.Markdown(), "Dashboard p99, 16 clients, at 100,111 subscriptions")

	r.Subscriptions = 10_000
	js, err = r.JSON()
	require.NoError(t, err)
	require.NotContains(t, string(js), "_100k\"")
}

// The several-projects burst gives the issue-14 keys, with their goals.
func TestProjectsFigures(t *testing.T) {
	t.Parallel()
	r := &Report{Projects: &ProjectsResult{ProvisionResult: ProvisionResult{N: 300, Ready: 300, Requests: 663, RequestsPerServer: 2.21},
		Projects: 3, ServerLimit: 100, Servers: map[string]int{"default": 100, "p2": 100, "p3": 100}}}
	js, err := r.JSON()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(js, &got))
	require.InDelta(t, 300, got["ready_n300_3projects"], 1e-9)
	require.InDelta(t, 2.21, got["requests_per_server_n300_3projects"], 1e-9)
	require.InDelta(t, 0, got["status_429_n300_3projects"], 1e-9)
	goals := got["goals"].(map[string]any)
	require.Equal(t, map[string]any{"goal": "== 300", "met": true}, goals["ready_n300_3projects"])
	require.Equal(t, map[string]any{"goal": "<= 2.3", "met": true}, goals["requests_per_server_n300_3projects"])
	require.Equal(t, map[string]any{"goal": "== 0", "met": true}, goals["status_429_n300_3projects"])
	md := r.Markdown()
	require.Contains(t, md, "## Several Hetzner projects")
	require.Contains(t, md, "default 100, p2 100, p3 100")
}
