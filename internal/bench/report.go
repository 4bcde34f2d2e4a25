package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured, and how.
type Report struct {
	Date      time.Time `json:"date"`
	Commit    string    `json:"commit"`
	Cores     int       `json:"cores"`
	GoVersion string    `json:"go_version"`
	// RunSeconds is the real time the whole run took.
	RunSeconds float64 `json:"run_seconds"`
	Setup      Setup   `json:"setup"`

	Provision []ProvisionResult `json:"provision"`
	Destroy   []DestroyResult   `json:"destroy"`
	// Subscriptions is how many subscriptions were in the database during the page load runs.
	Subscriptions int `json:"subscriptions"`
	// Events and AuditEntries are how many provisioning events and audit entries were in the
	// database during the page load runs.
	Events       int `json:"events"`
	AuditEntries int `json:"audit_entries"`
	// FragmentPages is how many different subscriptions' fragments the load runs polled in turn.
	FragmentPages int           `json:"fragment_pages"`
	Load          []LoadResult  `json:"load"`
	Memory        *MemoryResult `json:"memory,omitempty"`
	// Projects is the several-projects burst (nil: not run).
	Projects *ProjectsResult `json:"projects,omitempty"`
	// Profile is the top of the worker's CPU profile during the largest provisioning burst.
	Profile *Profile `json:"profile,omitempty"`
}

// Setup says under which conditions the figures were measured.
type Setup struct {
	// TimeScale multiplies the simulated Hetzner durations into real time.
	TimeScale float64 `json:"time_scale"`
	// Simulated Hetzner durations in seconds, before scaling.
	CreateS    float64 `json:"create_s"`
	StartS     float64 `json:"start_s"`
	CloudInitS float64 `json:"cloud_init_s"`
	DeleteS    float64 `json:"delete_s"`
	// KeyAlgorithm of the provisioner key pairs in the provisioning phases.
	KeyAlgorithm string `json:"key_algorithm"`
	// KeyPoolSize is the worker's ssh_key_pool target.
	KeyPoolSize int `json:"key_pool_size"`
	// WorkerTimings describes the worker's loop timings (provision.DefaultTimings).
	WorkerTimings string `json:"worker_timings"`
	// MemoryKeyAlgorithm is the key algorithm of the worker-memory phase.
	MemoryKeyAlgorithm string `json:"memory_key_algorithm"`
}

// ProvisionResult is one burst of N provisionings started at once.
type ProvisionResult struct {
	N int `json:"n"`
	// PooledKeys is how many pre-generated key pairs ssh_key_pool held when the burst started;
	// PoolWarm says whether that was the full pool.
	PooledKeys int  `json:"pooled_keys"`
	PoolWarm   bool `json:"pool_warm"`
	Ready      int  `json:"ready"`
	Failed     int  `json:"failed"`
	// WallS is the real time from the first Provision call until all were ready (or failed);
	// SimWallS the same in simulated time (WallS / time scale).
	WallS    float64 `json:"wall_s"`
	SimWallS float64 `json:"sim_wall_s"`
	// Per-server real time to ready.
	ReadyP50S float64 `json:"ready_p50_s"`
	ReadyP95S float64 `json:"ready_p95_s"`
	// Hetzner API requests during the burst, in all, per provisioned server and by endpoint.
	Requests          int            `json:"requests"`
	RequestsPerServer float64        `json:"requests_per_server"`
	ByEndpoint        map[string]int `json:"by_endpoint"`
	Status429         int            `json:"status_429"`
	// The worker process's CPU time and peak resident memory during the burst.
	WorkerCPUS      float64 `json:"worker_cpu_s"`
	WorkerPeakRSSMB float64 `json:"worker_peak_rss_mb"`
}

// DestroyResult is the destruction of the N servers of one burst.
type DestroyResult struct {
	N                 int            `json:"n"`
	Destroyed         int            `json:"destroyed"`
	Failed            int            `json:"failed"`
	WallS             float64        `json:"wall_s"`
	SimWallS          float64        `json:"sim_wall_s"`
	Requests          int            `json:"requests"`
	RequestsPerServer float64        `json:"requests_per_server"`
	ByEndpoint        map[string]int `json:"by_endpoint"`
	// ServersLeft and KeysLeft are what the simulator still holds of these subscriptions.
	ServersLeft int `json:"servers_left"`
	KeysLeft    int `json:"keys_left"`
}

// MemoryResult is the worker holding many provisionings in flight.
type MemoryResult struct {
	Target int `json:"target"`
	// InFlight is how many were waiting on Hetzner (server created, actions running) when the
	// memory was read.
	InFlight int `json:"in_flight"`
	// SettleS is the real time until they were all in flight.
	SettleS         float64 `json:"settle_s"`
	WorkerPeakRSSMB float64 `json:"worker_peak_rss_mb"`
	WorkerRSSMB     float64 `json:"worker_rss_mb"`
	WorkerCPUS      float64 `json:"worker_cpu_s"`
	// Requests is the Hetzner API requests of the phase (uploads, creates, polls).
	Requests int `json:"requests"`
}

// Profile is the top of a CPU profile, as `go tool pprof -top` prints it.
type Profile struct {
	Phase string   `json:"phase"`
	Path  string   `json:"path"`
	Top   []string `json:"top"`
	// KeyGenShare is the cumulative share of the samples in crypto/rsa.GenerateKey ("" if none).
	KeyGenShare string `json:"keygen_share,omitempty"`
}

// Goal is a design target for one figure.
type Goal struct {
	// Op is one of "<=", "<", ">=", ">", "==".
	Op    string
	Value float64
}

// Met reports whether v meets the goal.
func (g Goal) Met(v float64) bool {
	switch g.Op {
	case "<=":
		return v <= g.Value
	case "<":
		return v < g.Value
	case ">=":
		return v >= g.Value
	case ">":
		return v > g.Value
	case "==":
		return v == g.Value
	}
	return false
}

func (g Goal) String() string { return g.Op + " " + num(g.Value) }

// Figure is one headline number with its goal, if it has one.
type Figure struct {
	Key   string
	Label string
	Value float64
	Unit  string
	Goal  *Goal
}

// Met reports whether the figure meets its goal (true when it has none).
func (f Figure) Met() bool { return f.Goal == nil || f.Goal.Met(f.Value) }

// Goals are the design's performance goals (DESIGN.md, "Performance goals") by JSON key.
var Goals = map[string]Goal{
	"requests_per_server_n100":     {"<=", 2.5},
	"overhead_ratio_n100":          {"<=", 1.2},
	"destroy_servers_left_n100":    {"==", 0},
	"fragment_vs_static_ratio_c64": {">=", 0.5},
	"fragment_p99_ms_c64":          {"<", 25},
	"worker_peak_rss_mb_1000":      {"<", 150},
	// Issue 14: the pages at 100,000 subscriptions (1,000,000 events and audit entries).
	"list_p99_ms_c16_100k":              {"<", 50},
	"list_rps_c16_100k":                 {">=", 300},
	"dashboard_p99_ms_c16_100k":         {"<", 50},
	"dashboard_rps_c16_100k":            {">=", 300},
	"fragment_vs_static_ratio_c64_100k": {">=", 0.5},
	"fragment_p99_ms_c64_100k":          {"<", 25},
	// Issue 14: 300 at once across three projects with a server limit of 100 each.
	"ready_n300_3projects":               {"==", 300},
	"requests_per_server_n300_3projects": {"<=", 2.3},
	"status_429_n300_3projects":          {"==", 0},
}

// Load run names the page-load phase uses.
const (
	LoadFragment  = "fragment"
	LoadList      = "list"
	LoadStatic    = "static"
	LoadDashboard = "dashboard"
	// LoadListMix cycles through every sort, the status filters, deep pages and substring
	// searches of the list; LoadAudit through the audit log's pages and filters; LoadReconcile
	// is the reconcile page. They run at 16 clients only.
	LoadListMix   = "list-mix"
	LoadAudit     = "audit"
	LoadReconcile = "reconcile"
)

// Figures derives the headline numbers from the measurements, goals first. A figure whose
// measurement is missing (a phase that did not run) is left out.
func (r *Report) Figures() []Figure {
	var figs []Figure
	add := func(key, label, unit string, v float64) {
		f := Figure{Key: key, Label: label, Value: round(v, 3), Unit: unit}
		if g, ok := Goals[key]; ok {
			f.Goal = &g
		}
		figs = append(figs, f)
	}
	var one *ProvisionResult
	for i := range r.Provision {
		if r.Provision[i].N == 1 {
			one = &r.Provision[i]
		}
	}
	for _, p := range r.Provision {
		add(fmt.Sprintf("requests_per_server_n%d", p.N), fmt.Sprintf("Hetzner requests per provisioned server, N=%d", p.N), "", p.RequestsPerServer)
		if one != nil && one.WallS > 0 && p.N != 1 {
			add(fmt.Sprintf("overhead_ratio_n%d", p.N), fmt.Sprintf("Wall time to all ready, N=%d ÷ N=1", p.N), "×", p.WallS/one.WallS)
		}
		add(fmt.Sprintf("wall_s_n%d", p.N), fmt.Sprintf("Wall time to all ready, N=%d (real)", p.N), "s", p.WallS)
		add(fmt.Sprintf("failed_n%d", p.N), fmt.Sprintf("Provisionings failed, N=%d", p.N), "", float64(p.Failed))
		add(fmt.Sprintf("status_429_n%d", p.N), fmt.Sprintf("429s received, N=%d", p.N), "", float64(p.Status429))
		add(fmt.Sprintf("worker_cpu_s_n%d", p.N), fmt.Sprintf("Worker CPU time, N=%d", p.N), "s", p.WorkerCPUS)
	}
	for _, d := range r.Destroy {
		add(fmt.Sprintf("destroy_servers_left_n%d", d.N), fmt.Sprintf("Servers left after destroying N=%d", d.N), "", float64(d.ServersLeft))
		add(fmt.Sprintf("destroy_requests_per_server_n%d", d.N), fmt.Sprintf("Hetzner requests per destroyed server, N=%d", d.N), "", d.RequestsPerServer)
		add(fmt.Sprintf("destroy_wall_s_n%d", d.N), fmt.Sprintf("Wall time to all destroyed, N=%d (real)", d.N), "s", d.WallS)
	}
	byKey := map[string]LoadResult{}
	for _, l := range r.Load {
		byKey[fmt.Sprintf("%s/%d", l.Name, l.Concurrency)] = l
	}
	if f, ok := byKey[LoadFragment+"/64"]; ok {
		if s, ok := byKey[LoadStatic+"/64"]; ok && s.RPS > 0 {
			add("fragment_vs_static_ratio_c64", "Status fragment ÷ static file throughput, 64 clients", "", f.RPS/s.RPS)
		}
		add("fragment_p99_ms_c64", "Status fragment p99, 64 clients", "ms", f.P99ms)
		add("fragment_rps_c64", "Status fragment throughput, 64 clients", "req/s", f.RPS)
	}
	if l, ok := byKey[LoadList+"/64"]; ok {
		add("list_p99_ms_c64", "Subscriptions list p99, 64 clients", "ms", l.P99ms)
		add("list_rps_c64", "Subscriptions list throughput, 64 clients", "req/s", l.RPS)
	}
	if s, ok := byKey[LoadStatic+"/64"]; ok {
		add("static_rps_c64", "Static file throughput, 64 clients", "req/s", s.RPS)
	}
	// The same runs under keys that name the fleet size, for the sizes the goals are set at.
	if sfx := fleetSuffix(r.Subscriptions); sfx != "" {
		at := " at " + fleetLabel(r.Subscriptions) + " subscriptions"
		if l, ok := byKey[LoadList+"/16"]; ok {
			add("list_p99_ms_c16"+sfx, "Subscriptions list p99, 16 clients,"+at, "ms", l.P99ms)
			add("list_rps_c16"+sfx, "Subscriptions list throughput, 16 clients,"+at, "req/s", l.RPS)
		}
		if d, ok := byKey[LoadDashboard+"/16"]; ok {
			add("dashboard_p99_ms_c16"+sfx, "Dashboard p99, 16 clients,"+at, "ms", d.P99ms)
			add("dashboard_rps_c16"+sfx, "Dashboard throughput, 16 clients,"+at, "req/s", d.RPS)
		}
		for _, pg := range []struct{ name, key, label string }{
			{LoadListMix, "list_mix", "Subscriptions list, every sort, filter, deep page and search,"},
			{LoadAudit, "audit", "Audit log, pages and filters,"},
			{LoadReconcile, "reconcile", "Reconcile page,"},
		} {
			if l, ok := byKey[pg.name+"/16"]; ok {
				add(pg.key+"_p99_ms_c16"+sfx, pg.label+" p99, 16 clients,"+at, "ms", l.P99ms)
				add(pg.key+"_rps_c16"+sfx, pg.label+" throughput, 16 clients,"+at, "req/s", l.RPS)
			}
		}
		if f, ok := byKey[LoadFragment+"/64"]; ok {
			if s, ok := byKey[LoadStatic+"/64"]; ok && s.RPS > 0 {
				add("fragment_vs_static_ratio_c64"+sfx, "Status fragment ÷ static file throughput, 64 clients,"+at, "", f.RPS/s.RPS)
			}
			add("fragment_p99_ms_c64"+sfx, "Status fragment p99, 64 clients,"+at, "ms", f.P99ms)
		}
	}
	errs := 0
	for _, l := range r.Load {
		errs += l.Errors
	}
	if len(r.Load) > 0 {
		add("load_errors", "Errors in the page load runs", "", float64(errs))
	}
	if pr := r.Projects; pr != nil {
		sfx := fmt.Sprintf("_n%d_%dprojects", pr.N, pr.Projects)
		at := fmt.Sprintf(", N=%d across %d projects (server limit %d each)", pr.N, pr.Projects, pr.ServerLimit)
		add("ready"+sfx, "Provisionings ready"+at, "", float64(pr.Ready))
		add("requests_per_server"+sfx, "Hetzner requests per provisioned server"+at, "", pr.RequestsPerServer)
		add("status_429"+sfx, "429s received"+at, "", float64(pr.Status429))
		add("wall_s"+sfx, "Wall time to all ready"+at+" (real)", "s", pr.WallS)
		add("limit_refusals"+sfx, "403 resource_limit_exceeded answers"+at, "", float64(pr.LimitRefusals))
	}
	if m := r.Memory; m != nil {
		add(fmt.Sprintf("worker_peak_rss_mb_%d", m.Target), fmt.Sprintf("Worker peak RSS, %d provisionings in flight", m.Target), "MB", m.WorkerPeakRSSMB)
		add(fmt.Sprintf("in_flight_%d", m.Target), fmt.Sprintf("Provisionings actually in flight (of %d)", m.Target), "", float64(m.InFlight))
	}
	slices.SortStableFunc(figs, func(a, b Figure) int {
		switch {
		case a.Goal != nil && b.Goal == nil:
			return -1
		case a.Goal == nil && b.Goal != nil:
			return 1
		}
		return 0
	})
	return figs
}

// fleetSuffix names a page-load fleet size in JSON keys by the thousands it holds: "_100k" for
// 100,000 subscriptions, also when the bursts measured before the page load added their few
// hundred (make bench: 100,111); "" below 100,000, where no key is kept.
func fleetSuffix(subscriptions int) string {
	if subscriptions >= 100_000 {
		return fmt.Sprintf("_%dk", subscriptions/1000)
	}
	return ""
}

// fleetLabel writes a fleet size with thousands separators (100,000).
func fleetLabel(subscriptions int) string {
	s := fmt.Sprint(subscriptions)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// JSON is the report as scripts read it: every figure as a top-level number, the goals and
// whether each is met under "goals", and the full measurements under "details".
func (r *Report) JSON() ([]byte, error) {
	out := map[string]any{}
	goals := map[string]any{}
	for _, f := range r.Figures() {
		out[f.Key] = f.Value
		if f.Goal != nil {
			goals[f.Key] = map[string]any{"goal": f.Goal.String(), "met": f.Met()}
		}
	}
	out["goals"] = goals
	out["details"] = r
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// Markdown renders the report for docs/benchmarks.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	s := r.Setup
	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`go run . bench`); do not edit by hand. Method: see the end of this file.\n\n")
	p("| | |\n| --- | --- |\n")
	p("| date | %s |\n", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	p("| commit | `%s` |\n", r.Commit)
	p("| cores | %d |\n", r.Cores)
	p("| Go | %s |\n", r.GoVersion)
	p("| run time | %s s |\n", num(round(r.RunSeconds, 0)))
	p("| simulated Hetzner | create %s s, start %s s, cloud-init %s s, delete %s s |\n", num(s.CreateS), num(s.StartS), num(s.CloudInitS), num(s.DeleteS))
	p("| time scale | %s (real = simulated × %s) |\n", num(s.TimeScale), num(s.TimeScale))
	p("| worker | subprocess `rachel-admin work`, %s |\n", s.WorkerTimings)
	p("| provisioner keys | %s, pool of %d pre-generated pairs |\n\n", s.KeyAlgorithm, s.KeyPoolSize)

	p("## Goals\n\n| figure | measured | goal | |\n| --- | ---: | --- | --- |\n")
	var rest []Figure
	for _, f := range r.Figures() {
		if f.Goal == nil {
			rest = append(rest, f)
			continue
		}
		verdict := "met"
		if !f.Met() {
			verdict = "**MISSED**"
		}
		p("| %s | %s%s | %s%s | %s |\n", f.Label, num(f.Value), unitSuffix(f.Unit), f.Goal, unitSuffix(f.Unit), verdict)
	}
	if len(r.Provision) > 0 {
		p("\n## Provisioning at scale\n\n")
		p("N subscriptions provisioned at once; times are real (simulated = real ÷ %s).\n\n", num(s.TimeScale))
		p("| N | pool | ready | failed | wall (real) | wall (simulated) | p50 to ready | p95 to ready | requests | per server | 429s | worker CPU | worker peak RSS |\n")
		p("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.Provision {
			p("| %d | %s | %d | %d | %s s | %s s | %s s | %s s | %d | %s | %d | %s s | %s MB |\n", x.N, poolLabel(x), x.Ready, x.Failed,
				num(round(x.WallS, 1)), num(round(x.SimWallS, 1)), num(round(x.ReadyP50S, 1)), num(round(x.ReadyP95S, 1)),
				x.Requests, num(round(x.RequestsPerServer, 2)), x.Status429, num(round(x.WorkerCPUS, 1)), num(round(x.WorkerPeakRSSMB, 0)))
		}
		p("\nHetzner API requests by endpoint:\n\n")
		endpointTable(&b, "provision", r.Provision, func(x ProvisionResult) (int, map[string]int) { return x.N, x.ByEndpoint })
	}
	if len(r.Destroy) > 0 {
		p("\n## Destroy at scale\n\n")
		p("| N | destroyed | failed | wall (real) | wall (simulated) | requests | per server | servers left | keys left |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.Destroy {
			p("| %d | %d | %d | %s s | %s s | %d | %s | %d | %d |\n", x.N, x.Destroyed, x.Failed, num(round(x.WallS, 1)), num(round(x.SimWallS, 1)),
				x.Requests, num(round(x.RequestsPerServer, 2)), x.ServersLeft, x.KeysLeft)
		}
		p("\n")
		endpointTable(&b, "destroy", r.Destroy, func(x DestroyResult) (int, map[string]int) { return x.N, x.ByEndpoint })
	}
	if len(r.Load) > 0 {
		p("\n## Status page load\n\n")
		p("%d subscriptions, %d provisioning events and %d audit entries in the database. `fragment` is `GET /subscriptions/:id/status` (what every open status page polls) of %d different subscriptions in progress taken in turn, `list` is `GET /subscriptions` (first page of 50, with the total count), `dashboard` is `GET /` (counts per status, failed and stuck provisionings, findings), `static` is `GET /static/app.css`; `list-mix` cycles through the list's every sort, the status filters, a deep page (40) and substring searches of email, name, server name and IP (pages 1 and 10); `audit` through the audit log's first and a deep page and its filters; `reconcile` is `GET /reconcile`; all served by the same process in the same run, signed in, over kept-alive connections.\n\n", r.Subscriptions, r.Events, r.AuditEntries, r.FragmentPages)
		p("| page | clients | requests | errors | req/s | p50 | p99 |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, l := range r.Load {
			p("| %s | %d | %d | %d | %s | %s ms | %s ms |\n", l.Name, l.Concurrency, l.Requests, l.Errors, num(round(l.RPS, 0)), num(round(l.P50ms, 2)), num(round(l.P99ms, 2)))
		}
	}
	if pr := r.Projects; pr != nil {
		p("\n## Several Hetzner projects\n\n")
		p("%d subscriptions provisioned at once across %d simulated projects (one token each: HCLOUD_TOKEN and HCLOUD_PROJECTS) with a server limit of %d each; each project has its own rate-limit budget and action poller.\n\n", pr.N, pr.Projects, pr.ServerLimit)
		p("| N | ready | failed | wall (real) | p95 to ready | requests | per server | 429s | 403 limit | servers per project |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		names := slices.Sorted(maps.Keys(pr.Servers))
		var per []string
		for _, n := range names {
			per = append(per, fmt.Sprintf("%s %d", n, pr.Servers[n]))
		}
		p("| %d | %d | %d | %s s | %s s | %d | %s | %d | %d | %s |\n", pr.N, pr.Ready, pr.Failed, num(round(pr.WallS, 1)), num(round(pr.ReadyP95S, 1)),
			pr.Requests, num(round(pr.RequestsPerServer, 2)), pr.Status429, pr.LimitRefusals, strings.Join(per, ", "))
		p("\nHetzner API requests by endpoint (all projects):\n\n")
		endpointTable(&b, "provision", []ProvisionResult{pr.ProvisionResult}, func(x ProvisionResult) (int, map[string]int) { return x.N, x.ByEndpoint })
	}
	if m := r.Memory; m != nil {
		p("\n## Worker memory\n\n")
		p("%d provisionings started at once against a simulator whose create action never ends within the run (%s keys), so each is left waiting on Hetzner.\n\n", m.Target, s.MemoryKeyAlgorithm)
		p("| in flight | time to all in flight | worker peak RSS | worker RSS after | worker CPU | Hetzner requests |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %d | %s s | %s MB | %s MB | %s s | %d |\n", m.InFlight, num(round(m.SettleS, 1)), num(round(m.WorkerPeakRSSMB, 1)),
			num(round(m.WorkerRSSMB, 1)), num(round(m.WorkerCPUS, 1)), m.Requests)
	}
	if len(rest) > 0 {
		p("\n## Other figures (JSON keys)\n\n| key | value |\n| --- | ---: |\n")
		for _, f := range rest {
			p("| `%s` | %s%s |\n", f.Key, num(f.Value), unitSuffix(f.Unit))
		}
	}
	if pr := r.Profile; pr != nil && len(pr.Top) > 0 {
		p("\n## Worker CPU profile, %s\n\n", pr.Phase)
		if pr.KeyGenShare != "" {
			largest := slices.MaxFunc(r.Provision, func(a, b ProvisionResult) int { return a.N - b.N })
			p("RSA key generation (`crypto/rsa.GenerateKey`) is %s of the worker's CPU samples. The burst needs %d key pairs and the pool held %d, so at least %d were generated during the burst; the worker's key-pool loop, which refills the pool whenever it holds fewer than %d pairs, generated replacements at the same time on the same cores.\n\n",
				pr.KeyGenShare, largest.N, largest.PooledKeys, max(largest.N-largest.PooledKeys, 0), s.KeyPoolSize)
		}
		p("`go tool pprof -top -cum` (profile kept at `%s`):\n\n```\n%s\n```\n", pr.Path, strings.Join(pr.Top, "\n"))
	}
	p("\n## Method\n\n%s", method)
	return b.String()
}

const method = `- One process runs a private PostgreSQL (pgcluster, temporary directory), the Hetzner simulator
  (hcloudsim) and the web app; the worker runs as a subprocess (` + "`rachel-admin work`" + `, configured by
  the environment as in production), so its CPU time (/proc/PID/stat) and peak RSS
  (/proc/PID/status VmHWM, reset per phase through /proc/PID/clear_refs) are its own.
- Provisioning: N subscriptions (customer with all secrets) are provisioned through the same service
  call the web app makes; the run waits until all are ready. The VPS's callback reaches the web
  app, the worker injects the secrets over SSH into the simulated VPS. Before each burst the run
  waits for the worker to refill its key pool ("warm"). Overhead ratio = wall time for N ÷ wall
  time for 1, both with the same simulated timings and the worker's production loop timings.
- Several projects (` + "`-projects-n`" + `, ` + "`-projects`" + `, ` + "`-projects-limit`" + `): a stack of its own whose simulator
  serves that many projects (one token each, HCLOUD_TOKEN and HCLOUD_PROJECTS), each with the server
  limit; N provisionings at once, then destroyed. Requests and 429s are summed over the projects.
- Requests are the simulator's own counters by route, reset before each phase; the firewall
  creation and the reconciler's start-up listing fall into the first phase.
- Page load: 100,000 subscriptions (` + "`-subscriptions`" + `) in a realistic mix of states with their event
  timelines and older history, 10 provisioning events and 10 audit entries per subscription in all,
  are inserted with set-based SQL (generate_series) and analyzed; a fixed number of GET requests per page and concurrency, after one warm-up
  request, over kept-alive connections.
- Worker memory: a second database and simulator (create takes hours of simulated time) and a
  fresh worker subprocess; the figure is the worker's VmHWM once every provisioning waits on
  Hetzner and the poller has gone round several times.
`

func endpointTable[T any](b *strings.Builder, _ string, rows []T, get func(T) (int, map[string]int)) {
	routes := map[string]bool{}
	for _, x := range rows {
		_, m := get(x)
		for k := range m {
			routes[k] = true
		}
	}
	if len(routes) == 0 {
		return
	}
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprint(b, "| endpoint |")
	for _, x := range rows {
		n, _ := get(x)
		fmt.Fprintf(b, " N=%d |", n)
	}
	fmt.Fprint(b, "\n| --- |"+strings.Repeat(" ---: |", len(rows))+"\n")
	for _, k := range keys {
		fmt.Fprintf(b, "| `%s` |", k)
		for _, x := range rows {
			_, m := get(x)
			fmt.Fprintf(b, " %d |", m[k])
		}
		fmt.Fprint(b, "\n")
	}
}

func poolLabel(x ProvisionResult) string {
	if x.PoolWarm {
		return fmt.Sprintf("warm (%d)", x.PooledKeys)
	}
	return fmt.Sprintf("cold (%d)", x.PooledKeys)
}

func unitSuffix(u string) string {
	switch u {
	case "":
		return ""
	case "×":
		return "×"
	}
	return " " + u
}

// num prints a float without trailing zeros.
func num(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
