package bench

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
)

// phaseTimeout bounds one provisioning or destroy burst in simulated time, so a stuck run ends
// with an error instead of running for ever.
const phaseTimeout = 15 * time.Minute

// newSubscriptions creates n customers with every secret set and a subscription each.
func (b *bench) newSubscriptions(ctx context.Context, s *stack, n int) ([]int64, error) {
	q := db.New()
	ids := make([]int64, 0, n)
	for i := range n {
		cust, err := q.CustomerCreate(ctx, s.pool, db.CustomerCreateParams{
			Email: fmt.Sprintf("burst-%d-%d@example.com", time.Now().UnixNano(), i), Name: fmt.Sprintf("Burst customer %d", i)})
		if err != nil {
			return nil, fmt.Errorf("create customer: %w", err)
		}
		enc := func(col, v string) []byte {
			ct, encErr := s.cfg.Keyring.Encrypt([]byte(v), secrets.AD{Table: "customer_secrets", Column: col, RowID: cust.ID})
			if encErr != nil {
				err = encErr
			}
			return ct
		}
		params := db.CustomerSecretsUpsertParams{
			CustomerID:           cust.ID,
			ClaudeAccessToken:    enc("claude_access_token", "sk-ant-oat01-bench-access"),
			ClaudeRefreshToken:   enc("claude_refresh_token", "sk-ant-ort01-bench-refresh"),
			ClaudeTokenExpiresAt: enc("claude_token_expires_at", "2030-01-02T03:04:05Z"),
			TelegramBotToken:     enc("telegram_bot_token", "123456:bench-bot-token"),
			OwnerTelegramUserID:  enc("owner_telegram_user_id", "424242"),
		}
		if err != nil {
			return nil, fmt.Errorf("encrypt customer secrets: %w", err)
		}
		if _, err := q.CustomerSecretsUpsert(ctx, s.pool, params); err != nil {
			return nil, fmt.Errorf("store customer secrets: %w", err)
		}
		sub, err := q.SubscriptionCreate(ctx, s.pool, db.SubscriptionCreateParams{CustomerID: cust.ID, Plan: "personal", BillingStatus: "active"})
		if err != nil {
			return nil, fmt.Errorf("create subscription: %w", err)
		}
		ids = append(ids, sub.ID)
	}
	return ids, nil
}

// pooledKeys counts the pre-generated key pairs in ssh_key_pool.
func pooledKeys(ctx context.Context, s *stack) (int, error) {
	n, err := db.New().SSHKeyPoolCount(ctx, s.pool, s.cfg.SSHKeyAlgorithm)
	return int(n), err
}

// countStates counts the subscriptions among ids in each provisioning state.
func countStates(ctx context.Context, s *stack, ids []int64) (map[string]int, error) {
	rows, err := db.New().BenchCountStates(ctx, s.pool, ids)
	if err != nil {
		return nil, fmt.Errorf("count states: %w", err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = int(r.N)
	}
	return out, nil
}

// warmKeyPool waits until the worker has filled its key pool, so every burst starts alike.
func (b *bench) warmKeyPool(ctx context.Context, s *stack) (int, bool) {
	want := b.keyPoolSize
	start := time.Now()
	err := waitFor(ctx, s.worker, 3*time.Minute, 250*time.Millisecond, "key pool", func() (bool, error) {
		n, err := pooledKeys(ctx, s)
		return n >= want, err
	})
	n, _ := pooledKeys(ctx, s)
	if err != nil {
		b.progress("key pool not full (%d of %d): %v", n, want, err)
		return n, false
	}
	b.progress("key pool warm: %d pairs (%.1f s)", n, time.Since(start).Seconds())
	return n, true
}

// provisionBurst provisions n new subscriptions at once and waits until all are ready.
func (b *bench) provisionBurst(ctx context.Context, s *stack, n int, profile bool) (ProvisionResult, []int64, error) {
	r := ProvisionResult{N: n}
	ids, err := b.newSubscriptions(ctx, s, n)
	if err != nil {
		return r, nil, err
	}
	r.PooledKeys, r.PoolWarm = b.warmKeyPool(ctx, s)
	if err := s.worker.alive(); err != nil {
		return r, nil, err
	}
	_ = ResetPeakRSS(s.worker.pid())
	before, err := s.worker.stats()
	if err != nil {
		return r, nil, err
	}
	if profile {
		_ = s.worker.cmd.Process.Signal(syscall.SIGUSR1) // start the CPU profile
	}
	b.progress("provisioning N=%d at once", n)
	resetRequests(s.sim)
	start := time.Now()
	for _, id := range ids {
		if err := s.svc.Provision(ctx, id, actor); err != nil {
			return r, nil, fmt.Errorf("provision subscription %d: %w", id, err)
		}
	}
	last := ""
	err = waitFor(ctx, s.worker, b.scaled(phaseTimeout), 100*time.Millisecond, fmt.Sprintf("provisioning N=%d", n), func() (bool, error) {
		st, err := countStates(ctx, s, ids)
		if err != nil {
			return false, err
		}
		if line := fmt.Sprint(st); line != last {
			last = line
			b.progress("  %5.1f s %v", time.Since(start).Seconds(), st)
		}
		return st["ready"]+st["failed"] == n, nil
	})
	wall := time.Since(start)
	if profile {
		_ = s.worker.cmd.Process.Signal(syscall.SIGUSR1) // stop and write it
	}
	if err != nil {
		return r, nil, err
	}
	after, err := s.worker.stats()
	if err != nil {
		return r, nil, err
	}
	r.WallS, r.SimWallS = wall.Seconds(), wall.Seconds()/b.o.TimeScale
	r.WorkerCPUS, r.WorkerPeakRSSMB = after.CPUSeconds-before.CPUSeconds, after.PeakRSSMB
	b.countRequests(s.sim, &r.Requests, &r.ByEndpoint)
	r.Status429 = requestCount(s.sim, "", 429)

	var readyAt []time.Duration
	results, err := db.New().BenchResults(ctx, s.pool, ids)
	if err != nil {
		return r, nil, fmt.Errorf("read provisioning results: %w", err)
	}
	for _, res := range results {
		if res.Status == "ready" && res.ProvisionedAt != nil {
			r.Ready++
			readyAt = append(readyAt, res.ProvisionedAt.Sub(start))
		} else {
			r.Failed++
		}
	}
	slices.Sort(readyAt)
	r.ReadyP50S, r.ReadyP95S = percentile(readyAt, 0.50).Seconds(), percentile(readyAt, 0.95).Seconds()
	if r.Ready > 0 {
		r.RequestsPerServer = float64(r.Requests) / float64(r.Ready)
	}
	b.progress("N=%d: %d ready, %d failed in %.1f s (%.1f s simulated); %d Hetzner requests (%.2f per server); worker CPU %.1f s, peak RSS %.0f MB",
		n, r.Ready, r.Failed, r.WallS, r.SimWallS, r.Requests, r.RequestsPerServer, r.WorkerCPUS, r.WorkerPeakRSSMB)
	if r.Failed > 0 {
		b.logFailures(ctx, s, ids)
	}
	return r, ids, nil
}

// logFailures prints why provisionings failed.
func (b *bench) logFailures(ctx context.Context, s *stack, ids []int64) {
	rows, err := db.New().BenchFailures(ctx, s.pool, ids)
	if err != nil {
		return
	}
	for _, f := range rows {
		b.progress("  subscription %d failed at %s: %s", f.ID, f.Step, f.Reason)
	}
}

// destroyBurst destroys the subscriptions of a burst at once and checks nothing is left.
func (b *bench) destroyBurst(ctx context.Context, s *stack, ids []int64) (DestroyResult, error) {
	n := len(ids)
	r := DestroyResult{N: n}
	b.progress("destroying N=%d at once", n)
	resetRequests(s.sim)
	start := time.Now()
	for _, id := range ids {
		if err := s.svc.Destroy(ctx, id, actor); err != nil {
			return r, fmt.Errorf("destroy subscription %d: %w", id, err)
		}
	}
	var st map[string]int
	err := waitFor(ctx, s.worker, b.scaled(phaseTimeout), 100*time.Millisecond, fmt.Sprintf("destroying N=%d", n), func() (bool, error) {
		var err error
		st, err = countStates(ctx, s, ids)
		return st["destroyed"]+st["failed"] == n, err
	})
	if err != nil {
		return r, err
	}
	wall := time.Since(start)
	r.WallS, r.SimWallS = wall.Seconds(), wall.Seconds()/b.o.TimeScale
	r.Destroyed, r.Failed = st["destroyed"], st["failed"]
	b.countRequests(s.sim, &r.Requests, &r.ByEndpoint)
	if r.Destroyed > 0 {
		r.RequestsPerServer = float64(r.Requests) / float64(r.Destroyed)
	}
	inst, err := db.New().InstallationID(ctx, s.pool)
	if err != nil {
		return r, fmt.Errorf("installation ID: %w", err)
	}
	names := map[string]bool{}
	for _, id := range ids {
		names[provision.ServerName(inst, id)] = true
	}
	for _, sv := range s.sim.Servers() {
		if names[sv.Name] {
			r.ServersLeft++
		}
	}
	for _, k := range s.sim.SSHKeys() {
		if names[k.Name] {
			r.KeysLeft++
		}
	}
	b.progress("destroyed N=%d: %d destroyed, %d failed in %.1f s; %d requests (%.2f per server); %d servers and %d keys left",
		n, r.Destroyed, r.Failed, r.WallS, r.Requests, r.RequestsPerServer, r.ServersLeft, r.KeysLeft)
	return r, nil
}

// countRequests reads the simulator's counters by route, summed over its projects.
func (b *bench) countRequests(sim *hcloudsim.Simulator, total *int, by *map[string]int) {
	*by = map[string]int{}
	for _, p := range sim.Projects() {
		for _, rs := range p.Requests() {
			(*by)[rs.Route] += rs.Count
			*total += rs.Count
		}
	}
}

// resetRequests resets the counters of every project of the simulator.
func resetRequests(sim *hcloudsim.Simulator) {
	for _, p := range sim.Projects() {
		p.ResetRequests()
	}
}

// requestCount sums a counter over the simulator's projects.
func requestCount(sim *hcloudsim.Simulator, route string, status int) int {
	n := 0
	for _, p := range sim.Projects() {
		n += p.RequestCount(route, status)
	}
	return n
}

// scaled converts a simulated duration into real time, with a floor for the worker's own pace.
func (b *bench) scaled(d time.Duration) time.Duration {
	return max(time.Duration(float64(d)*b.o.TimeScale), 3*time.Minute)
}
