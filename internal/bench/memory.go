package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// memoryObserve is how long the worker is watched once everything is in flight: long enough for
// the poller to back off to its longest interval and go round more than once.
const memoryObserve = 30 * time.Second

// memoryPhase holds InFlight provisionings waiting on Hetzner in a fresh worker and reads its
// peak memory.
func (b *bench) memoryPhase(ctx context.Context) error {
	n := b.o.InFlight
	// Its own database and simulator: the worker's reconciler must not meet the other phases'
	// subscriptions, and create_server must not finish within the run.
	s, err := b.newStack(ctx, "bench_memory", hcloudsim.Config{CreateDuration: memCreateTime}, b.report.Setup.MemoryKeyAlgorithm)
	if err != nil {
		return err
	}
	defer s.close()
	ids, err := db.New().BenchSeedBare(ctx, s.pool, int32(n))
	if err != nil {
		return fmt.Errorf("seed the memory phase: %w", err)
	}
	if err := b.startWorker(ctx, s, "worker-memory", ""); err != nil {
		return err
	}
	b.warmKeyPool(ctx, s)
	r := &MemoryResult{Target: n}
	b.report.Memory = r

	b.progress("provisioning %d at once against a simulator whose create takes %s", n, memCreateTime)
	s.sim.ResetRequests()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for part := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := part; i < len(ids); i += 8 {
				if err := s.svc.Provision(ctx, ids[i], actor); err != nil {
					select {
					case errc <- fmt.Errorf("provision subscription %d: %w", ids[i], err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	peak := 0.0
	sample := func() error {
		st, err := s.worker.stats()
		if err != nil {
			return err
		}
		peak = max(peak, st.PeakRSSMB)
		r.WorkerRSSMB, r.WorkerCPUS = st.RSSMB, st.CPUSeconds
		return nil
	}
	last := -1
	err = waitFor(ctx, s.worker, 5*time.Minute, 250*time.Millisecond, "provisionings in flight", func() (bool, error) {
		if err := sample(); err != nil {
			return false, err
		}
		c, err := db.New().BenchInFlight(ctx, s.pool)
		waiting, failed := int(c.Waiting), int(c.Failed)
		if waiting/100 != last/100 {
			b.progress("  %5.1f s: %d in flight, %d failed", time.Since(start).Seconds(), waiting, failed)
		}
		last, r.InFlight = waiting, waiting
		return waiting+failed == n, err
	})
	r.SettleS = time.Since(start).Seconds()
	if err != nil {
		b.progress("not all in flight: %v", err)
	}
	b.progress("%d in flight after %.1f s; watching the worker for %s", r.InFlight, r.SettleS, memoryObserve)
	deadline := time.Now().Add(memoryObserve)
	for time.Now().Before(deadline) {
		if err := sample(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := sample(); err != nil {
		return err
	}
	r.WorkerPeakRSSMB = peak
	r.Requests = s.sim.RequestCount("", 0)
	b.progress("worker with %d in flight: peak RSS %.1f MB, RSS now %.1f MB, CPU %.1f s, %d Hetzner requests",
		r.InFlight, r.WorkerPeakRSSMB, r.WorkerRSSMB, r.WorkerCPUS, r.Requests)
	return nil
}
