package faultsuite

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testenv"
)

const (
	simToken      = "fault-suite-token"
	adminEmail    = "ops@example.com"
	adminPassword = "a long enough password for the fault suite"
)

// stackOpts shapes a stack: how many web and worker processes, and the simulator.
type stackOpts struct {
	webs, workers int
	dbURL         string // the database (migrated by the test, or by `migrate` here)
	migrate       bool   // run `rachel-admin migrate` first (the Procfile's release)
	sim           hcloudsim.Config
	env           map[string]string // overrides of the processes' environment
}

// stack is the service as operators run it: web and worker processes of the real binary against
// one database, with the Hetzner simulator in this process.
type stack struct {
	t       *testing.T
	env     map[string]string // environment every process shares
	sim     *hcloudsim.Simulator
	pool    *pgxpool.Pool // the test's own view of the database
	webs    []*proc
	workers []*supervised
	baseURL string // what admins and VPSes reach: the web process, or a proxy over several
}

// simSSHPort is where every simulated VPS's sshd listens, each on its own loopback address.
const simSSHPort = 22122

// newStack starts the simulator, the web processes (behind a round-robin proxy when there are
// several) and the supervised workers, and creates the admin.
func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.sim.Token == "" {
		o.sim.Token = simToken
	}
	if o.sim.SSHPort == 0 {
		o.sim.SSHPort = simSSHPort
	}
	// The processes' environment: the simulator, a keyring and the public URL (testenv), with
	// the deadlines of processes that start slower than an in-process worker, JSON logs, and the
	// production key pool.
	env := map[string]string{
		"SSH_KEY_POOL_SIZE": "", "CALLBACK_DEADLINE": "30s", "CREATE_DEADLINE": "30s", "INJECT_DEADLINE": "20s",
		"ASSISTANT_STABLE_FOR": "300ms", "LOG_FORMAT": "json",
	}
	maps.Copy(env, o.env)
	e := testenv.New(t, testenv.Options{Sim: o.sim, DatabaseURL: o.dbURL, Env: env, Log: slog.New(slog.DiscardHandler)})
	s := &stack{t: t, sim: e.Sim, env: e.Vars, baseURL: e.Server.URL}

	// The public URL exists before the web processes: a proxy that forwards to whichever are
	// registered, as a load balancer in front of several web dynos does.
	var (
		mu       sync.Mutex
		backends []*url.URL
		next     atomic.Uint64
	)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			mu.Lock()
			u := backends[int(next.Add(1))%len(backends)]
			mu.Unlock()
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
	}
	e.Handle(proxy)
	if o.migrate {
		out, err := run(t, s.env, "", "migrate")
		require.NoError(t, err, "migrate: %s", out)
	}
	out, err := run(t, s.env, adminPassword+"\n", "admin", "-email", adminEmail)
	require.NoError(t, err, "create the admin: %s", out)

	s.pool, err = database.Open(context.Background(), o.dbURL, 8)
	require.NoError(t, err)
	t.Cleanup(s.pool.Close)

	for i := range o.webs {
		port := freePort(t)
		env := s.with(map[string]string{"PORT": fmt.Sprint(port)})
		p := startProc(t, fmt.Sprintf("web%d", i+1), env, "serve")
		u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
		waitHTTP(t, p, u.String()+"/healthz")
		s.webs = append(s.webs, p)
		mu.Lock()
		backends = append(backends, u)
		mu.Unlock()
	}
	for i := range o.workers {
		s.workers = append(s.workers, supervise(t, fmt.Sprintf("worker%d", i+1), s.env, "work"))
	}
	return s
}

// with returns the shared environment with some variables replaced.
func (s *stack) with(extra map[string]string) map[string]string {
	env := make(map[string]string, len(s.env)+len(extra))
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// webURL is the direct URL of web process i (not through the proxy).
func (s *stack) webURL(i int) string {
	for _, e := range s.webs[i].cmd.Env {
		if p, ok := strings.CutPrefix(e, "PORT="); ok {
			return "http://127.0.0.1:" + p
		}
	}
	return ""
}

// liveWorkerPIDs are the process IDs of the worker processes running now.
func (s *stack) liveWorkerPIDs() map[int]bool {
	out := map[int]bool{}
	for _, w := range s.workers {
		if pid := w.pid(); pid != 0 {
			out[pid] = true
		}
	}
	return out
}

// supervised is a worker process kept running the way a process manager (systemd, a Procfile
// runner, a PaaS) keeps it: whenever it exits — killed or crashed — it is started again.
type supervised struct {
	name, bin, dir string
	env            map[string]string
	args           []string

	mu       sync.Mutex
	cur      *proc
	starts   int
	selfExit int   // exits the test did not cause: crashes, a lost database...
	spawnErr error // the last failure to start it
	stopc    chan struct{}
	stopped  chan struct{}
}

func supervise(t *testing.T, name string, env map[string]string, args ...string) *supervised {
	t.Helper()
	w := &supervised{name: name, bin: binary(t), dir: logDir(t), env: env, args: args,
		stopc: make(chan struct{}), stopped: make(chan struct{})}
	p, err := spawn(w.bin, w.dir, name, env, args...)
	require.NoError(t, err)
	w.cur, w.starts = p, 1
	go w.loop()
	t.Cleanup(w.stop)
	return w
}

func (w *supervised) loop() {
	defer close(w.stopped)
	for {
		w.mu.Lock()
		p := w.cur
		w.mu.Unlock()
		if p != nil {
			select {
			case <-p.done:
			case <-w.stopc:
				return
			}
			if !p.killedByTest() {
				w.mu.Lock()
				w.selfExit++
				w.mu.Unlock()
			}
		}
		// A process manager's restart delay, so a worker that cannot start does not spin.
		select {
		case <-w.stopc:
			return
		case <-time.After(200 * time.Millisecond):
		}
		np, err := spawn(w.bin, w.dir, w.name, w.env, w.args...)
		w.mu.Lock()
		w.cur, w.spawnErr = np, err
		if err == nil {
			w.starts++
		}
		w.mu.Unlock()
	}
}

// killedByTest says the process ended by our SIGKILL.
func (p *proc) killedByTest() bool {
	if p.cmd.ProcessState == nil {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// pid is the running process's ID, or 0 between a death and the restart.
func (w *supervised) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil || w.cur.exited() {
		return 0
	}
	return w.cur.pid()
}

// kill SIGKILLs the current process; the supervisor starts a new one.
func (w *supervised) kill() {
	w.mu.Lock()
	p := w.cur
	w.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// stop ends supervision and shuts the process down with SIGTERM, as at a deploy.
func (w *supervised) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.stopped
	w.mu.Lock()
	p := w.cur
	w.mu.Unlock()
	if p != nil {
		p.stop(2 * time.Minute) // a hang guard: SIGKILL only a process that does not stop at all
	}
}

// counts returns how often the process was started and how often it exited by itself.
func (w *supervised) counts() (starts, selfExits int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.starts, w.selfExit
}

// chaos SIGKILLs a random worker at random moments (seeded) until stopped.
type chaos struct {
	stopc chan struct{}
	done  chan struct{}
	kills atomic.Int64
}

func startChaos(seed uint64, workers []*supervised, minGap, maxGap time.Duration) *chaos {
	c := &chaos{stopc: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	go func() {
		defer close(c.done)
		for {
			gap := minGap + time.Duration(rng.Int64N(int64(maxGap-minGap)))
			select {
			case <-c.stopc:
				return
			case <-time.After(gap):
			}
			w := workers[rng.IntN(len(workers))]
			if w.pid() != 0 {
				w.kill()
				c.kills.Add(1)
			}
		}
	}()
	return c
}

func (c *chaos) stop() int {
	select {
	case <-c.stopc:
	default:
		close(c.stopc)
	}
	<-c.done
	return int(c.kills.Load())
}
