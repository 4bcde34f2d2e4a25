// Package hcloudsim simulates the part of the Hetzner Cloud API this project uses, statefully
// and faithfully to Hetzner's published OpenAPI description, with a simulated VPS (package
// vps) behind every server, a scaled clock, Hetzner's rate limiting and faults on demand.
package hcloudsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/vps"
)

// Default simulated durations, close to what Hetzner takes for a small cloud server.
const (
	// DefaultCreateDuration is how long create_server runs.
	DefaultCreateDuration = 10 * time.Second
	// DefaultStartDuration is how long start_server runs after the create.
	DefaultStartDuration = 5 * time.Second
	// DefaultCloudInitDuration is the time from running to the phone_home callback.
	DefaultCloudInitDuration = 60 * time.Second
	// DefaultDeleteDuration is how long delete_server runs.
	DefaultDeleteDuration = 5 * time.Second
)

// DefaultSSHPort is where simulated VPSes serve SSH. Not 22: that needs privileges, and a host
// sshd listening on 0.0.0.0:22 would hold every loopback address's port 22.
const DefaultSSHPort = 2222

// Config configures a Simulator. The zero value is usable: Hetzner's timings in real time,
// Hetzner's rate limit, any bearer token accepted.
type Config struct {
	// Name is the project's name (default "default"); [Simulator.Project] finds it by it.
	Name string
	// Token is the bearer token clients must send; empty accepts any non-empty token (only
	// without Projects).
	Token string
	// ReadOnlyToken, when set, is a token of the project with read permission only: requests
	// other than GET made with it are refused with 401 token_readonly, as the spec's error
	// table says.
	ReadOnlyToken string
	// ServerLimit is how many servers the project may hold (0: no limit); creating one more is
	// refused with 403 resource_limit_exceeded. SetServerLimit changes it later.
	ServerLimit int
	// TimeScale multiplies every simulated duration (0.01 makes a 10 s action take 100 ms);
	// 0 means 1.
	TimeScale float64
	// CreateDuration is how long create_server runs (simulated time).
	CreateDuration time.Duration
	// StartDuration is how long start_server runs after the create finished.
	StartDuration time.Duration
	// CloudInitDuration is the time from running to cloud-init's phone_home callback.
	CloudInitDuration time.Duration
	// DeleteDuration is how long delete_server runs.
	DeleteDuration time.Duration
	// RateLimit is the bucket size (default 3600 requests).
	RateLimit int
	// RateLimitRefill is the real time to earn one request back (default 1 s).
	RateLimitRefill time.Duration
	// SSHPort is the port a simulated VPS's sshd listens on at its own loopback address when
	// its user data's sshd drop-ins name no Port (default DefaultSSHPort); a Port line wins.
	SSHPort int
	// Seed seeds the PRNG behind probabilistic faults; 0 picks a random seed.
	Seed uint64
	// Faults are switched on from the start.
	Faults Faults
	// HTTPClient is used by the simulated VPSes for their callbacks (nil: vps's default).
	HTTPClient *http.Client
	// Logger receives the simulator's log (nil: discarded).
	Logger *slog.Logger
	// Now is the clock of timestamps and the rate limiter (nil: time.Now); tests replace it.
	Now func() time.Time
	// StartMachine starts a simulated VPS (nil: vps.Start); tests may wrap it. Emulated mode only.
	StartMachine func(context.Context, vps.Config) (*vps.Machine, error)
	// VPS is what stands behind a running server: VPSEmulated (the default, "") or VPSReal.
	VPS string
	// RealHost runs the real VPSes (nil: realvps.Default()). Real mode only.
	RealHost *realvps.Host
	// Projects are further Hetzner projects served on the same endpoint, told apart by their
	// tokens as on Hetzner, where an API token belongs to one project: each has its own servers,
	// SSH keys, firewalls, actions, rate-limit bucket ("3600 requests per hour and per Project",
	// the spec's Rate Limiting section) and server limit, and a token of one project does not see
	// another's resources (404 not_found). Resource IDs are unique across all of them, as
	// Hetzner's are. The timings, faults-free start, VPS mode and logger are this Config's.
	Projects []ProjectConfig
}

// ProjectConfig is one further simulated project (see Config.Projects).
type ProjectConfig struct {
	// Name identifies the project ([Simulator.Project], /_sim/projects/{name}/...).
	Name string `json:"name"`
	// Token is the project's read-write API token (required, unique).
	Token string `json:"token"`
	// ReadOnlyToken is an optional read-only token of the project.
	ReadOnlyToken string `json:"readonly_token,omitempty"`
	// ServerLimit is how many servers the project may hold (0: no limit).
	ServerLimit int `json:"server_limit,omitempty"`
	// RateLimit is the project's bucket size (0: the Config's).
	RateLimit int `json:"rate_limit,omitempty"`
}

// validateProjects checks the project list: names and tokens present and unique.
func (c *Config) validateProjects() error {
	if len(c.Projects) == 0 {
		return nil
	}
	if c.Token == "" {
		return errors.New("projects: the first project needs a Token when further projects are configured")
	}
	names := map[string]bool{c.Name: true}
	tokens := map[string]bool{c.Token: true}
	if c.ReadOnlyToken != "" {
		tokens[c.ReadOnlyToken] = true
	}
	for i, p := range c.Projects {
		if p.Name == "" || names[p.Name] {
			return fmt.Errorf("projects[%d]: name %q is empty or not unique", i, p.Name)
		}
		names[p.Name] = true
		for _, t := range []string{p.Token, p.ReadOnlyToken} {
			if t == "" && t == p.ReadOnlyToken {
				continue
			}
			if t == "" || tokens[t] {
				return fmt.Errorf("projects[%d] (%s): token is empty or used by another project", i, p.Name)
			}
			tokens[t] = true
		}
		if p.ServerLimit < 0 || p.RateLimit < 0 {
			return fmt.Errorf("projects[%d] (%s): server limit and rate limit must not be negative", i, p.Name)
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "default"
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.CreateDuration == 0 {
		c.CreateDuration = DefaultCreateDuration
	}
	if c.StartDuration == 0 {
		c.StartDuration = DefaultStartDuration
	}
	if c.CloudInitDuration == 0 {
		c.CloudInitDuration = DefaultCloudInitDuration
	}
	if c.DeleteDuration == 0 {
		c.DeleteDuration = DefaultDeleteDuration
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 3600
	}
	if c.RateLimitRefill <= 0 {
		c.RateLimitRefill = time.Second
	}
	if c.SSHPort == 0 {
		c.SSHPort = DefaultSSHPort
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StartMachine == nil {
		c.StartMachine = vps.Start
	}
}

// Simulator is a simulated Hetzner Cloud project. It is an http.Handler; Start serves it on
// a loopback listener.
type Simulator struct {
	cfg    Config
	cat    *catalog
	api    *http.ServeMux
	simMux *http.ServeMux
	bucket *bucket
	real   *realState // nil in emulated mode

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	pcg       *rand.PCG
	rng       *rand.Rand
	faults    Faults
	counts    map[RequestKey]int
	servers   map[int64]*server
	sshKeys   map[int64]*sshKey
	firewalls map[int64]*firewall
	actions   map[int64]*action
	timers    map[*time.Timer]struct{}
	ipBase    [4]byte
	ipNext    uint32
	// serverLimit is the project's server limit (0: none).
	serverLimit int
	// clockOffset (nanoseconds) moves the simulated today away from cfg.Now (SetNow).
	clockOffset atomic.Int64
	// ids hands out resource IDs; the projects of one simulator share it.
	ids *idAlloc
	// projects are Config.Projects, each a Simulator of its own that never serves by itself;
	// byToken finds a project (this one included) by any of its tokens.
	projects []*Simulator
	byToken  map[string]*Simulator

	srv *http.Server
	url string
}

// New returns a simulator with an empty project.
func New(cfg Config) (*Simulator, error) {
	cfg.setDefaults()
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("initial faults: %w", err)
	}
	if err := cfg.validateVPS(); err != nil {
		return nil, err
	}
	if err := cfg.validateProjects(); err != nil {
		return nil, err
	}
	return newProject(cfg, &idAlloc{next: map[string]int64{"server": 40000000, "ssh_key": 1000000, "firewall": 700000, "action": 90000000}})
}

// newProject builds one project's simulator, and those of cfg.Projects beside it.
func newProject(cfg Config, ids *idAlloc) (*Simulator, error) {
	var real *realState
	if cfg.VPS == VPSReal {
		var err error
		if real, err = newRealState(cfg); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Simulator{
		cfg:       cfg,
		cat:       newCatalog(),
		bucket:    newBucket(cfg.RateLimit, cfg.RateLimitRefill, cfg.Now),
		real:      real,
		ctx:       ctx,
		cancel:    cancel,
		faults:    cfg.Faults,
		counts:    map[RequestKey]int{},
		ids:       ids,
		servers:   map[int64]*server{},
		sshKeys:   map[int64]*sshKey{},
		firewalls: map[int64]*firewall{},
		actions:   map[int64]*action{},
		timers:    map[*time.Timer]struct{}{},
		// A random 127.x.y.0/24-ish base per instance keeps parallel test processes apart.
		ipBase:      [4]byte{127, byte(1 + rand.IntN(254)), byte(rand.IntN(256)), 0},
		serverLimit: max(0, cfg.ServerLimit),
	}
	s.pcg = rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	s.rng = rand.New(s.pcg)
	s.routes()
	s.byToken = map[string]*Simulator{}
	for _, p := range cfg.Projects {
		pc := cfg
		pc.Name, pc.Token, pc.ReadOnlyToken, pc.ServerLimit, pc.Projects = p.Name, p.Token, p.ReadOnlyToken, p.ServerLimit, nil
		if p.RateLimit > 0 {
			pc.RateLimit = p.RateLimit
		}
		pc.Seed = s.rng.Uint64()
		pc.Faults = Faults{}
		ps, err := newProject(pc, ids)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("project %s: %w", p.Name, err)
		}
		s.projects = append(s.projects, ps)
		for _, t := range []string{p.Token, p.ReadOnlyToken} {
			if t != "" {
				s.byToken[t] = ps
			}
		}
	}
	return s, nil
}

// idAlloc hands out resource IDs, with different ranges per resource as on Hetzner, so that
// mixing up IDs is caught; shared by a simulator's projects since Hetzner's IDs are global.
type idAlloc struct {
	mu   sync.Mutex
	next map[string]int64
}

// Name is the project's name (Config.Name).
func (s *Simulator) Name() string { return s.cfg.Name }

// Project returns the project named name: this one or one of Config.Projects (nil if none).
// A further project answers the same introspection and fault methods; it is served through
// this simulator's URL with its own token.
func (s *Simulator) Project(name string) *Simulator {
	if name == s.cfg.Name {
		return s
	}
	for _, p := range s.projects {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// ProjectView is a project as GET /_sim/projects shows it (never its tokens).
type ProjectView struct {
	Name        string         `json:"name"`
	ServerLimit int            `json:"server_limit"`
	Servers     int            `json:"servers"`
	RateLimit   RateLimitState `json:"rate_limit"`
}

func (s *Simulator) projectViews() []ProjectView {
	var out []ProjectView
	for _, p := range s.Projects() {
		limit, used := p.ServerLimit()
		out = append(out, ProjectView{Name: p.cfg.Name, ServerLimit: limit, Servers: used, RateLimit: p.RateLimit()})
	}
	return out
}

// Projects returns this project and then Config.Projects, in order.
func (s *Simulator) Projects() []*Simulator {
	return append([]*Simulator{s}, s.projects...)
}

// scale converts a simulated duration into real time.
func (s *Simulator) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.TimeScale)
}

// after runs fn after the simulated duration d; Close cancels pending timers and waits for
// running ones. mu must be held (it orders the timer's registration before its callback).
func (s *Simulator) after(d time.Duration, fn func()) {
	if s.closed {
		return
	}
	var t *time.Timer
	s.wg.Add(1)
	t = time.AfterFunc(s.scale(d), func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, t)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			fn()
		}
	})
	s.timers[t] = struct{}{}
}

// id hands out the next ID of a resource kind; mu must be held.
func (s *Simulator) id(kind string) int64 {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	s.ids.next[kind]++
	return s.ids.next[kind]
}

// Start serves the simulator on a fresh loopback port.
func (s *Simulator) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the simulator: %w", err)
	}
	return s.Serve(ln)
}

// Serve serves the simulator on ln in the background until Close.
func (s *Simulator) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return errors.New("simulator already serving")
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	srv := s.srv
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("simulator stopped serving", "err", err)
		}
	}()
	return nil
}

// URL is the base URL given by Start ("http://127.0.0.1:PORT"), empty before Start.
func (s *Simulator) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Endpoint is URL plus "/v1", what hcloud.WithEndpoint and HCLOUD_ENDPOINT expect.
func (s *Simulator) Endpoint() string {
	return s.URL() + "/v1"
}

// Close stops serving, cancels pending timers and stops every simulated VPS.
func (s *Simulator) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for t := range s.timers {
		if t.Stop() {
			s.wg.Done()
		}
	}
	clear(s.timers)
	var machines []machine
	var leases []*realvps.Lease
	for _, sv := range s.servers {
		if sv.machine != nil {
			machines = append(machines, sv.machine)
			sv.machine = nil
		}
		if sv.lease != nil {
			leases = append(leases, sv.lease)
			sv.lease = nil
		}
	}
	srv := s.srv
	s.mu.Unlock()
	s.cancel()
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down the simulator's HTTP server: %w", err))
		}
		cancel()
	}
	var mu sync.Mutex
	var stops sync.WaitGroup
	for _, m := range machines {
		stops.Go(func() {
			if err := m.Stop(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop VPS: %w", err))
				mu.Unlock()
			}
		})
	}
	stops.Wait()
	s.wg.Wait()
	for _, l := range leases {
		if err := l.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.projects {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("project %s: %w", p.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP answers Hetzner API paths (with or without the /v1 prefix) and the simulator's own
// /_sim/ endpoints.
// A request with the token of one of Config.Projects is that project's; /_sim/projects/{name}/…
// are that project's /_sim/… endpoints.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim/projects" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]any{"projects": s.projectViews()})
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/_sim/projects/"); ok && len(s.projects) > 0 {
		name, tail, _ := strings.Cut(rest, "/")
		p := s.Project(name)
		if p == nil {
			writeError(w, &apiError{status: http.StatusNotFound, code: hcloud.ErrorCodeNotFound, message: "no such simulated project: " + name})
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/_sim/" + tail
		r2.URL.RawPath = ""
		p.simMux.ServeHTTP(w, r2)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.simMux.ServeHTTP(w, r)
		return
	}
	if p, ok := strings.CutPrefix(r.URL.Path, "/v1"); ok && (p == "" || p[0] == '/') {
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		r2.URL.RawPath = ""
		r = r2
	}
	if p := s.byToken[bearerToken(r)]; p != nil {
		p.serveAPI(w, r)
		return
	}
	s.serveAPI(w, r)
}

// statusRecorder remembers the status written, for the request counters.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// serveAPI applies what Hetzner applies to every request, in Hetzner's order: rate limit
// (authenticated or not), then authentication, then the handler; faults are injected after
// the rate limit so that injected errors still cost a request, as real ones do.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	// Handler finds the route template without dispatching; ServeHTTP below dispatches (and
	// sets the path values).
	_, pattern := s.api.Handler(r)
	route := pattern
	if route == "" {
		route = "unknown"
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.counts[RequestKey{Route: route, Status: rec.status}]++
		s.mu.Unlock()
	}()

	ok, st := s.bucket.take()
	hdr := rec.Header()
	hdr.Set("RateLimit-Limit", fmt.Sprint(st.Limit))
	hdr.Set("RateLimit-Remaining", fmt.Sprint(st.Remaining))
	hdr.Set("RateLimit-Reset", fmt.Sprint(st.Reset.Unix()))

	storm, slow, injected := s.requestFaults(route)
	if !ok || storm {
		writeError(rec, &apiError{status: http.StatusTooManyRequests, code: hcloud.ErrorCodeRateLimitExceeded, message: "limit of requests per hour reached"})
		return
	}
	tok := bearerToken(r)
	readOnly := s.cfg.ReadOnlyToken != "" && tok == s.cfg.ReadOnlyToken
	if tok == "" || (s.cfg.Token != "" && tok != s.cfg.Token && !readOnly) {
		writeError(rec, &apiError{status: http.StatusUnauthorized, code: hcloud.ErrorCodeUnauthorized, message: "unable to authenticate"})
		return
	}
	if readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(rec, &apiError{status: http.StatusUnauthorized, code: codeTokenReadonly, message: "The token is only allowed to perform GET requests"})
		return
	}
	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	if injected != 0 {
		writeError(rec, &apiError{status: injected, code: statusCodes[injected], message: "injected fault: " + string(statusCodes[injected])})
		return
	}
	if pattern == "" {
		writeError(rec, &apiError{status: http.StatusNotFound, code: hcloud.ErrorCodeNotFound, message: "no such route: " + r.Method + " " + r.URL.Path})
		return
	}
	s.api.ServeHTTP(rec, r)
	if r.Method != http.MethodGet {
		s.syncFirewalls()
	}
}

// requestFaults decides, under one lock, which request-level faults hit this request.
func (s *Simulator) requestFaults(route string) (storm bool, slow time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	if f.RateLimitStorm > 0 {
		f.RateLimitStorm--
		return true, 0, 0
	}
	for i := range f.Slow {
		sf := &f.Slow[i]
		if routeMatches(sf.Route, route) && s.roll(sf.Probability) {
			slow = time.Duration(sf.Delay)
			if sf.Count > 0 {
				sf.Count--
				if sf.Count == 0 {
					f.Slow = append(f.Slow[:i], f.Slow[i+1:]...)
				}
			}
			break
		}
	}
	for i := range f.Errors {
		ef := &f.Errors[i]
		if routeMatches(ef.Route, route) && s.roll(ef.Probability) {
			status = ef.Status
			if ef.Count > 0 {
				ef.Count--
				if ef.Count == 0 {
					f.Errors = append(f.Errors[:i], f.Errors[i+1:]...)
				}
			}
			break
		}
	}
	return false, slow, status
}

// roll returns true with probability p (0 meaning always); mu must be held.
func (s *Simulator) roll(p float64) bool {
	return p <= 0 || p >= 1 || s.rng.Float64() < p
}

// apiHandler adapts a handler returning *apiError.
type apiHandler func(w http.ResponseWriter, r *http.Request) *apiError

func (s *Simulator) handle(pattern string, h apiHandler) {
	s.api.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Simulator) routes() {
	s.api = http.NewServeMux()
	s.handle("GET /ssh_keys", s.listSSHKeys)
	s.handle("POST /ssh_keys", s.createSSHKey)
	s.handle("GET /ssh_keys/{id}", s.getSSHKey)
	s.handle("PUT /ssh_keys/{id}", s.updateSSHKey)
	s.handle("DELETE /ssh_keys/{id}", s.deleteSSHKey)

	s.handle("GET /servers", s.listServers)
	s.handle("POST /servers", s.createServer)
	s.handle("GET /servers/{id}", s.getServer)
	s.handle("PUT /servers/{id}", s.updateServer)
	s.handle("DELETE /servers/{id}", s.deleteServer)
	// GET /servers/{id}/actions is left out: Go's mux cannot hold it beside
	// GET /servers/actions/{id}, which hcloud-go's Server.Action uses.
	s.handle("GET /servers/actions", s.listServerTypeActions)
	s.handle("GET /servers/actions/{id}", s.getServerTypeAction)
	s.handle("GET /servers/{id}/actions/{action_id}", s.getServerAction)
	for _, a := range []string{"poweron", "poweroff", "reboot", "reset", "shutdown"} {
		s.handle("POST /servers/{id}/actions/"+a, s.powerAction(a))
	}

	s.handle("GET /actions", s.listActions)
	s.handle("GET /actions/{id}", s.getAction)

	s.handle("GET /firewalls", s.listFirewalls)
	s.handle("POST /firewalls", s.createFirewall)
	s.handle("GET /firewalls/{id}", s.getFirewall)
	s.handle("DELETE /firewalls/{id}", s.deleteFirewall)
	s.handle("POST /firewalls/{id}/actions/set_rules", s.setFirewallRules)

	s.handle("GET /server_types", s.listServerTypes)
	s.handle("GET /server_types/{id}", s.getServerType)
	s.handle("GET /images", s.listImages)
	s.handle("GET /images/{id}", s.getImage)
	s.handle("GET /locations", s.listLocations)
	s.handle("GET /locations/{id}", s.getLocation)
	s.handle("GET /datacenters", s.listDatacenters)
	s.handle("GET /datacenters/{id}", s.getDatacenter)

	s.simRoutes()
}
