package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/httpapp"
	"github.com/rachelcloud/admin/internal/pgcluster"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/statusview"
)

// Options configure a run of the benchmarks.
type Options struct {
	// TimeScale multiplies the simulated Hetzner durations (1 = Hetzner's own timings).
	TimeScale float64
	// Bursts are the N of the provisioning and destroy phases, in order (none: skip them).
	Bursts []int
	// Subscriptions is how many subscriptions the page-load phase puts in the database (0: skip).
	Subscriptions int
	// InFlight is how many provisionings the worker-memory phase holds in flight (0: skip).
	InFlight int
	// LoadScale multiplies the page-load phase's request counts (1 = the documented counts).
	LoadScale float64
	// WorkerCommand makes the command of a worker subprocess; the run sets its environment and
	// output. cmd_bench passes `os.Executable() work`.
	WorkerCommand func(ctx context.Context) *exec.Cmd
	// Profile takes a CPU profile of the worker during the largest burst (see [ProfileOnSignal]).
	Profile bool
	// WebProfile, when set, is where a CPU profile of this process (web app, PostgreSQL client and
	// load generator) during the fragment run at 64 clients goes.
	WebProfile string
	// ProjectsBurst is the N of the several-projects burst (0: skip): N provisionings at once
	// across Projects simulated Hetzner projects with a server limit of ProjectLimit each.
	ProjectsBurst, Projects, ProjectLimit int
	// Dir keeps the logs and profiles (PostgreSQL's data goes there too).
	Dir string
	// Log receives progress.
	Log io.Writer
}

// bench is one run in progress.
type bench struct {
	o       Options
	report  *Report
	cluster *pgcluster.Cluster
	log     *slog.Logger
	keyring string
	timings provision.Timings
	// keyPoolSize is the worker's SSH_KEY_POOL_SIZE.
	keyPoolSize int
}

const (
	benchToken    = "bench-hcloud-token"
	benchAdmin    = "bench@rachel.local"
	memCreateTime = 10 * time.Hour // the memory phase's create_server: never done within the run
)

var actor = provision.Actor{Email: benchAdmin, IP: "127.0.0.1"}

// Run starts PostgreSQL, the simulator, the web app and the worker, and measures every phase.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.TimeScale <= 0 {
		o.TimeScale = 1
	}
	if o.LoadScale <= 0 {
		o.LoadScale = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.WorkerCommand == nil {
		return nil, errors.New("bench: no worker command")
	}
	started := time.Now()
	// The worker runs with the production configuration's key pool (SSH_KEY_POOL_SIZE unset).
	defaults, err := config.Load(func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, timings: provision.DefaultTimings(), keyPoolSize: defaults.SSHKeyPoolSize,
		log: slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelError}))}
	b.report = &Report{
		Date: started, Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Setup: Setup{
			TimeScale: o.TimeScale, CreateS: hcloudsim.DefaultCreateDuration.Seconds(), StartS: hcloudsim.DefaultStartDuration.Seconds(),
			CloudInitS: hcloudsim.DefaultCloudInitDuration.Seconds(), DeleteS: hcloudsim.DefaultDeleteDuration.Seconds(),
			KeyAlgorithm: "rsa-4096", KeyPoolSize: b.keyPoolSize, MemoryKeyAlgorithm: "ed25519",
			WorkerTimings: fmt.Sprintf("provision.DefaultTimings (poll %s–%s backoff, sweep %s, River fetch poll %s)",
				b.timings.PollMin, b.timings.PollMax, b.timings.Sweep, b.timings.FetchPoll),
		},
	}
	kr, err := secrets.GenerateKeyring()
	if err != nil {
		return nil, err
	}
	b.keyring = kr

	b.progress("starting PostgreSQL in %s", o.Dir)
	pgLog, err := os.Create(filepath.Join(o.Dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer pgLog.Close()
	b.cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(o.Dir, "pg"), Log: pgLog})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer b.cluster.Stop()

	if len(o.Bursts) > 0 || o.Subscriptions > 0 {
		if err := b.mainPhases(ctx); err != nil {
			return b.report, err
		}
	}
	if o.ProjectsBurst > 0 {
		if err := b.projectsPhase(ctx); err != nil {
			return b.report, err
		}
	}
	if o.InFlight > 0 {
		if err := b.memoryPhase(ctx); err != nil {
			return b.report, err
		}
	}
	b.report.RunSeconds = time.Since(started).Seconds()
	return b.report, nil
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "bench: "+format+"\n", args...)
}

// stack is one database with a simulator, the in-process web app and service, and a worker
// subprocess.
type stack struct {
	pool   *pgxpool.Pool
	cfg    *config.Config
	env    map[string]string
	sim    *hcloudsim.Simulator
	svc    *provision.Service
	web    *http.Server
	webURL string
	worker *workerProc
	// fixture serves the assistant program the VPSes download.
	fixture *assistantfixture.Server
	// stopListen ends the status listener of the web app, as serve runs it.
	stopListen func()
}

func (s *stack) close() {
	if s.worker != nil {
		s.worker.stop()
	}
	if s.stopListen != nil {
		s.stopListen()
	}
	if s.web != nil {
		_ = s.web.Close()
	}
	if s.sim != nil {
		_ = s.sim.Close()
	}
	if s.fixture != nil {
		_ = s.fixture.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// newStack creates database dbName, migrates it and starts a simulator and the web app.
func (b *bench) newStack(ctx context.Context, dbName string, simCfg hcloudsim.Config, keyAlg string) (*stack, error) {
	s := &stack{}
	if err := b.cluster.CreateDatabase(ctx, dbName); err != nil {
		return nil, err
	}
	url := b.cluster.URL(dbName)
	var err error
	if s.pool, err = database.Open(ctx, url, 40); err != nil {
		return nil, err
	}
	if err := database.Migrate(ctx, s.pool, b.log); err != nil {
		s.close()
		return nil, err
	}

	simCfg.Token = benchToken
	simCfg.TimeScale = b.o.TimeScale
	simCfg.Logger = b.log
	if s.sim, err = hcloudsim.New(simCfg); err != nil {
		s.close()
		return nil, err
	}
	if err := s.sim.Start(); err != nil {
		s.close()
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	s.webURL = "http://" + ln.Addr().String()
	fx, err := assistantfixture.Start("127.0.0.1:0") // what the VPSes' cloud-init downloads
	if err != nil {
		_ = ln.Close()
		s.close()
		return nil, err
	}
	s.fixture = fx
	s.env = map[string]string{
		"ASSISTANT_ARTIFACT_URL": fx.URL(), "ASSISTANT_ARTIFACT_SHA256": assistantfixture.SHA256,
		"DATABASE_URL": url, "RACHEL_KEYRING": b.keyring, "PUBLIC_BASE_URL": s.webURL,
		"HCLOUD_TOKEN": benchToken, "HCLOUD_ENDPOINT": s.sim.Endpoint(),
		"VPS_SSH_PORT": strconv.Itoa(hcloudsim.DefaultSSHPort), "SSH_KEY_ALGORITHM": keyAlg,
		"COOKIE_SECURE": "false", "LOG_FORMAT": "json",
	}
	if len(simCfg.Projects) > 0 {
		var more []string
		for _, p := range simCfg.Projects {
			more = append(more, p.Name+"="+p.Token)
		}
		s.env["HCLOUD_PROJECTS"] = strings.Join(more, ",")
	}
	if s.cfg, err = config.Load(func(k string) string { return s.env[k] }); err != nil {
		s.close()
		return nil, err
	}
	if s.svc, err = provision.NewService(s.pool, s.cfg, provision.WithLogger(b.log)); err != nil {
		s.close()
		return nil, err
	}
	listenCtx, stopListen := context.WithCancel(context.WithoutCancel(ctx))
	listening := make(chan struct{})
	status := statusview.New(s.pool, s.svc, b.log)
	go func() { defer close(listening); status.ListenForChanges(listenCtx) }()
	s.stopListen = func() { stopListen(); <-listening }
	deps := httpapp.NewDeps(s.pool, s.cfg, s.svc, b.log)
	deps.Status = status
	app := httpapp.New(deps)
	s.web = &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.web.Serve(ln) }()
	return s, nil
}

// startWorker starts a worker subprocess against the stack.
func (b *bench) startWorker(ctx context.Context, s *stack, name string, profile string) error {
	cmd := b.o.WorkerCommand(ctx)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	if profile != "" {
		env = append(env, EnvCPUProfile+"="+profile)
	}
	cmd.Env = env
	logFile, err := os.Create(filepath.Join(b.o.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The worker must not outlive the run, however the run ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start worker: %w", err)
	}
	w := &workerProc{cmd: cmd, done: make(chan struct{}), logPath: logFile.Name()}
	go func() {
		w.err = cmd.Wait()
		logFile.Close()
		close(w.done)
	}()
	s.worker = w
	b.progress("worker %s started (pid %d, log %s)", name, cmd.Process.Pid, logFile.Name())
	return nil
}

// workerProc is a running worker subprocess.
type workerProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	logPath string
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// alive returns an error when the worker has exited.
func (w *workerProc) alive() error {
	select {
	case <-w.done:
		return fmt.Errorf("worker exited (%v); see %s", w.err, w.logPath)
	default:
		return nil
	}
}

func (w *workerProc) stats() (ProcStats, error) {
	if err := w.alive(); err != nil {
		return ProcStats{}, err
	}
	return ReadProcStats(w.pid())
}

// stop asks the worker to stop as production does (SIGTERM) and kills it if it lingers.
func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// waitFor polls cond every interval until it reports done, the worker exits or timeout passes.
func waitFor(ctx context.Context, w *workerProc, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if w != nil {
			if err := w.alive(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// mainPhases runs the provisioning, destroy and page-load phases on one stack.
func (b *bench) mainPhases(ctx context.Context) error {
	s, err := b.newStack(ctx, "bench", hcloudsim.Config{}, "rsa-4096")
	if err != nil {
		return err
	}
	defer s.close()
	b.progress("simulator at %s (time scale %g), web app at %s", s.sim.URL(), b.o.TimeScale, s.webURL)

	if len(b.o.Bursts) > 0 {
		profile := ""
		if b.o.Profile {
			profile = filepath.Join(b.o.Dir, fmt.Sprintf("worker-n%d.pprof", slices.Max(b.o.Bursts)))
		}
		if err := b.startWorker(ctx, s, "worker", profile); err != nil {
			return err
		}
		for _, n := range b.o.Bursts {
			p, ids, err := b.provisionBurst(ctx, s, n, profile != "" && n == slices.Max(b.o.Bursts))
			if err != nil {
				return err
			}
			b.report.Provision = append(b.report.Provision, p)
			d, err := b.destroyBurst(ctx, s, ids)
			if err != nil {
				return err
			}
			b.report.Destroy = append(b.report.Destroy, d)
		}
		// The seeded subscriptions of the page-load phase are not the worker's to move on.
		s.worker.stop()
		s.worker = nil
		if profile != "" {
			b.report.Profile = topOfProfile(ctx, profile, fmt.Sprintf("during the N=%d burst", slices.Max(b.o.Bursts)))
		}
	}
	if b.o.Subscriptions > 0 {
		if err := b.loadPhase(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
