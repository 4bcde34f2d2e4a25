package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// Worker runs the provisioning: River workers for the step jobs, the action poller, the
// sweeper (deadlines, lost wake-ups, jobs of dead workers), the key-pool refill and the periodic
// reconciler. Several workers may run against one database.
type Worker struct {
	pool *pgxpool.Pool
	cfg  *config.Config
	q    *db.Queries
	o    options
	// projects are the Hetzner projects, the first being where unplaced look-ups go.
	projects []*hproject
	river    *river.Client[pgx.Tx]
	id       string
	// driver is River's driver of river, for the rescue of a dead worker's jobs (JobRescueMany).
	driver *riverpgxv5.Driver
	keys   *keyPairs

	// The steps, each holding what it needs.
	creating  *creatingStep
	cloudInit *cloudInitStep
	inject    *injectStep
	destroy   *destroyStep

	metrics *stepMetrics

	inst *installationID

	lockMu   sync.Mutex
	lockConn *pgxpool.Conn // holds this worker's liveness lock and, when leader, the poller lock
}

// NewWorker prepares a worker; [Worker.Run] starts it. Without [WithHCloudClient] it builds the
// Hetzner client from the configuration ([NewHCloudClient]).
func NewWorker(pool *pgxpool.Pool, cfg *config.Config, opts ...Option) (*Worker, error) {
	o := buildOptions(opts)
	if cfg.Keyring == nil {
		return nil, errors.New("provision worker: RACHEL_KEYRING: required but not set")
	}
	alg, err := sshkey.ParseAlgorithm(cfg.SSHKeyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("provision worker: SSH_KEY_ALGORITHM: %w", err)
	}
	w := &Worker{pool: pool, cfg: cfg, q: db.New(), o: o, inst: &installationID{}, metrics: newStepMetrics(o.registry)}
	if w.projects, err = newProjects(cfg, o); err != nil {
		return nil, fmt.Errorf("provision worker: %w", err)
	}
	w.keys = &keyPairs{pool: pool, q: w.q, cfg: cfg, alg: alg, metrics: w.metrics, log: o.log, every: o.timings.Sweep}
	w.creating = &creatingStep{pool: pool, q: w.q, cfg: cfg, inst: w.inst, keys: w.keys, projects: w.projects, project: w.project,
		nudgePoller: w.nudgePoller, log: o.log, timings: o.timings, hook: o.hook}
	w.cloudInit = &cloudInitStep{pool: pool, q: w.q, cfg: cfg, project: w.project, log: o.log, timings: o.timings}
	w.inject = &injectStep{pool: pool, q: w.q, cfg: cfg, project: w.project, log: o.log, timings: o.timings, hook: o.hook}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	w.id = fmt.Sprintf("%.30s-%d-%s", host, os.Getpid(), hex.EncodeToString(suffix))

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &stepWorker{w: w}); err != nil {
		return nil, fmt.Errorf("provision worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &reconcileWorker{w: w}); err != nil {
		return nil, fmt.Errorf("provision worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &destroyOrphanWorker{w: w}); err != nil {
		return nil, fmt.Errorf("provision worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &rebootWorker{w: w}); err != nil {
		return nil, fmt.Errorf("provision worker: %w", err)
	}
	t := o.timings
	queues := map[string]river.QueueConfig{
		queueSteps:       {MaxWorkers: 100},
		queueMaintenance: {MaxWorkers: 2},
	}
	periodic := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(t.Reconcile),
			func() (river.JobArgs, *river.InsertOpts) { return reconcileArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
	}
	for _, j := range o.jobs {
		if j.Register != nil {
			if err := j.Register(workers); err != nil {
				return nil, fmt.Errorf("provision worker: %w", err)
			}
		}
		for name, q := range j.Queues {
			queues[name] = q
		}
		periodic = append(periodic, j.Periodic...)
	}
	w.driver = riverpgxv5.New(pool)
	w.river, err = river.NewClient(w.driver, &river.Config{
		ID:                   w.id,
		Logger:               o.log,
		Queues:               queues,
		Workers:              workers,
		RetryPolicy:          retryPolicy{base: t.Retry},
		FetchPollInterval:    t.FetchPoll,
		FetchCooldown:        min(t.FetchPoll, 100*time.Millisecond),
		JobTimeout:           t.JobTimeout,
		RescueStuckJobsAfter: 2 * t.JobTimeout,
		PeriodicJobs:         periodic,
	})
	if err != nil {
		return nil, fmt.Errorf("provision worker: river client: %w", err)
	}
	w.destroy = &destroyStep{pool: pool, q: w.q, project: w.project, inst: w.inst, jobs: w.river, nudgePoller: w.nudgePoller}
	return w, nil
}

// ID is this worker's River client ID.
func (w *Worker) ID() string { return w.id }

// Run works until ctx ends. It then stops taking jobs, gives running ones a moment to finish and
// cancels the rest, which stay in the database for the next worker.
//
// When the worker loses its database session (the database restarted, the network broke), its
// liveness lock is gone and other workers may rescue its jobs, so it stops working at once; it
// then reconnects with backoff and starts again by itself.
func (w *Worker) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		start := time.Now()
		err := w.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		w.o.log.Warn("provision worker interrupted; starting again", "worker_id", w.id, "err", err, "in", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// runOnce works until ctx ends or the worker's database session is lost.
func (w *Worker) runOnce(ctx context.Context) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("provision worker: %w", err)
	}
	w.lockConn = conn
	defer func() {
		w.lockMu.Lock()
		conn.Release()
		w.lockConn = nil
		w.lockMu.Unlock()
	}()
	// The liveness lock: while this session lives, the jobs this worker runs are not rescued.
	if err := w.q.WorkerLock(ctx, conn, livenessKey(w.id)); err != nil {
		return fmt.Errorf("provision worker: liveness lock: %w", err)
	}

	// Jobs this worker was running when it lost its session before: River is not running them
	// now, and holding the lock again hides them from the other workers' rescue.
	var mine []int64
	err = w.listJobs(ctx, river.NewJobListParams().States(rivertype.JobStateRunning), func(j *rivertype.JobRow) {
		if len(j.AttemptedBy) > 0 && j.AttemptedBy[len(j.AttemptedBy)-1] == w.id {
			mine = append(mine, j.ID)
		}
	})
	if err != nil {
		return fmt.Errorf("provision worker: list running jobs: %w", err)
	}
	if err := w.releaseJobs(ctx, w.id, mine, time.Now()); err != nil {
		return fmt.Errorf("provision worker: %w", err)
	} else if len(mine) > 0 {
		w.o.log.Warn("released jobs of this worker's previous session", "worker_id", w.id, "jobs", len(mine))
	}

	// Generation on demand, in parallel up to GOMAXPROCS; the reserve is ssh_key_pool.
	w.keys.gen, err = sshkey.NewPool(sshkey.PoolConfig{Size: 0, Algorithm: w.keys.alg, Comment: "rachel-provisioner"})
	if err != nil {
		return fmt.Errorf("provision worker: %w", err)
	}
	defer w.keys.gen.Close()

	if err := w.river.Start(ctx); err != nil {
		return fmt.Errorf("provision worker: start river: %w", err)
	}
	w.o.log.Info("provision worker started", "worker_id", w.id)

	loopCtx, cancelLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for _, loop := range []func(context.Context) error{w.pollLoop, w.sweepLoop, w.keys.loop, w.preflightLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(loopCtx); err != nil && loopCtx.Err() == nil {
				errc <- err
				cancelLoops()
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancelLoops()
	wg.Wait()

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := w.river.Stop(stopCtx); err != nil {
		hardCtx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel2()
		_ = w.river.StopAndCancel(hardCtx)
	}
	w.o.log.Info("provision worker stopped", "worker_id", w.id)
	return runErr
}

func livenessKey(workerID string) string { return "rachel-worker:" + workerID }

const pollerLockKey = "rachel-action-poller"

// withLockConn runs fn on the worker's dedicated session (advisory locks live there).
func (w *Worker) withLockConn(fn func(*pgxpool.Conn) error) error {
	w.lockMu.Lock()
	defer w.lockMu.Unlock()
	if w.lockConn == nil {
		return errors.New("worker not running")
	}
	return fn(w.lockConn)
}

// nudgePoller wakes the pollers early (new actions to watch).
func (w *Worker) nudgePoller() {
	for _, p := range w.projects {
		select {
		case p.nudge <- struct{}{}:
		default:
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
