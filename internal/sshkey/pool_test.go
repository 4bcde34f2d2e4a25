package sshkey

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

// countingGen generates Ed25519 pairs, counting calls and the most running at once; while gate is
// non-nil each call waits for a value on it.
type countingGen struct {
	calls, running, maxRunning atomic.Int64
	gate                       chan struct{}
	fail                       atomic.Bool
}

func (g *countingGen) gen() (*KeyPair, error) {
	g.calls.Add(1)
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		m := g.maxRunning.Load()
		if n <= m || g.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	if g.gate != nil {
		<-g.gate
	}
	if g.fail.Load() {
		return nil, errors.New("entropy exhausted")
	}
	return Generate(Ed25519, "pooled")
}

func waitReady(t *testing.T, p *Pool, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%d ready keys in the pool", n), func() bool { return p.Stats().Ready == n })
}

func TestPoolFillsToSizeAndNoMore(t *testing.T) {
	t.Parallel()
	g := &countingGen{}
	p := newPool(PoolConfig{Size: 5, Workers: 2}, g.gen)
	t.Cleanup(p.Close)

	waitReady(t, p, 5)
	// With every place filled no generation is in progress, so exactly Size were made.
	require.Equal(t, int64(5), g.calls.Load())
	require.LessOrEqual(t, g.maxRunning.Load(), int64(2))

	kp, err := p.Get(context.Background())
	require.NoError(t, err)
	require.NotNil(t, kp)
	st := p.Stats()
	require.Equal(t, int64(1), st.Hits)
	require.Zero(t, st.Misses)
	require.Zero(t, st.Errors)

	// The place freed by Get is refilled.
	waitReady(t, p, 5)
	require.Equal(t, int64(6), g.calls.Load())
}

func TestPoolGetDistinctKeysInBurst(t *testing.T) {
	t.Parallel()
	p, err := NewPool(PoolConfig{Size: 3, Algorithm: Ed25519, Comment: "burst"})
	require.NoError(t, err)
	t.Cleanup(p.Close)

	const n = 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			kp, err := p.Get(context.Background())
			if !assertNoError(t, err) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen[kp.PublicKey] = true
		})
	}
	wg.Wait()
	require.Len(t, seen, n, "every Get must return its own key")
	st := p.Stats()
	require.Equal(t, int64(n), st.Hits+st.Misses)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("Get: %v", err)
		return false
	}
	return true
}

func TestPoolGetGeneratesWhenEmpty(t *testing.T) {
	t.Parallel()
	g := &countingGen{}
	p := newPool(PoolConfig{Size: 0, Workers: 1}, g.gen) // no pooling at all
	t.Cleanup(p.Close)

	kp, err := p.Get(context.Background())
	require.NoError(t, err)
	require.NotNil(t, kp)
	require.Equal(t, int64(1), g.calls.Load())
	require.Equal(t, int64(1), p.Stats().Misses)
}

func TestPoolGetHonoursContext(t *testing.T) {
	t.Parallel()
	g := &countingGen{gate: make(chan struct{})}
	p := newPool(PoolConfig{Size: 2, Workers: 1}, g.gen)
	t.Cleanup(func() {
		close(g.gate) // let blocked generations finish so Close returns
		p.Close()
	})

	// The one worker slot is taken by the background filler, which is stuck: Get must still
	// return when its context ends.
	testkit.Eventually(t, "one generator running", func() bool { return g.running.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Get(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Already-cancelled context with an empty pool.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = p.Get(ctx2)
	require.ErrorIs(t, err, context.Canceled)
}

func TestPoolAbandonedGenerationNeverOverfills(t *testing.T) {
	t.Parallel()
	g := &countingGen{gate: make(chan struct{})}
	p := newPool(PoolConfig{Size: 1, Workers: 2}, g.gen)
	t.Cleanup(p.Close)

	// Background filler holds the pool's one place and a worker slot; Get takes the other slot.
	testkit.Eventually(t, "one generator running", func() bool { return g.running.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Get(ctx)
		errc <- err
	}()
	testkit.Eventually(t, "two generators running", func() bool { return g.running.Load() == 2 })
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	// Both generations finish: the filler's key fills the only place, the abandoned one is
	// dropped because there is no room — the pool never holds more than Size.
	g.gate <- struct{}{}
	g.gate <- struct{}{}
	waitReady(t, p, 1)
	testkit.Eventually(t, "no generator running", func() bool { return g.running.Load() == 0 })
	require.Equal(t, 1, p.Stats().Ready)
}

func TestPoolAdoptsAbandonedGenerationWhenRoom(t *testing.T) {
	t.Parallel()
	// No fillers: one free place, so the abandoned pair lands in the pool.
	p := &Pool{ready: make(chan *KeyPair, 1), slots: make(chan struct{}, 1), done: make(chan struct{})}
	p.slots <- struct{}{}
	kp, err := Generate(Ed25519, "")
	require.NoError(t, err)
	res := make(chan genResult, 1)
	res <- genResult{kp: kp}
	p.adopt(res)
	waitReady(t, p, 1)
	got, ok := p.take()
	require.True(t, ok)
	require.Same(t, kp, got)

	// A failed abandoned generation adds nothing.
	res <- genResult{err: errors.New("boom")}
	p.adopt(res)
	_, ok = p.take()
	require.False(t, ok)
}

func TestPoolWorkersCapConcurrency(t *testing.T) {
	t.Parallel()
	g := &countingGen{}
	p := newPool(PoolConfig{Size: 4, Workers: 2}, g.gen)
	t.Cleanup(p.Close)

	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			_, err := p.Get(context.Background())
			assertNoError(t, err)
		})
	}
	wg.Wait()
	require.LessOrEqual(t, g.maxRunning.Load(), int64(2))
}

func TestPoolGenerationErrors(t *testing.T) {
	t.Parallel()
	g := &countingGen{}
	g.fail.Store(true)
	p := newPool(PoolConfig{Size: 0, Workers: 1}, g.gen)
	t.Cleanup(p.Close)

	_, err := p.Get(context.Background())
	require.ErrorContains(t, err, "entropy exhausted")
	require.Equal(t, int64(1), p.Stats().Errors)
}

func TestPoolClose(t *testing.T) {
	t.Parallel()
	g := &countingGen{}
	p := newPool(PoolConfig{Size: 3, Workers: 2}, g.gen)
	waitReady(t, p, 3)
	p.Close()
	p.Close() // idempotent

	_, err := p.Get(context.Background())
	require.ErrorIs(t, err, ErrPoolClosed)
}

func TestNewPoolValidates(t *testing.T) {
	t.Parallel()
	_, err := NewPool(PoolConfig{Algorithm: "dsa"})
	require.ErrorContains(t, err, "unknown SSH key algorithm")
	_, err = NewPool(PoolConfig{Comment: "a\nb"})
	require.ErrorContains(t, err, "single line")

	p, err := NewPool(PoolConfig{Size: -1, Algorithm: Ed25519})
	require.NoError(t, err)
	defer p.Close()
	waitReady(t, p, DefaultPoolSize)
	kp, err := p.Get(context.Background())
	require.NoError(t, err)
	require.Contains(t, kp.PublicKey, "ssh-ed25519 ")
}

func BenchmarkGenerateRSA4096(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(RSA4096, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateEd25519(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(Ed25519, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolBurst measures a burst of 2×GOMAXPROCS simultaneous Gets of RSA 4096 keys: "cold"
// starts from an empty pool (generation spread over every core), "warm" from a pool filled
// beforehand (the time the provisioning worker sees). ns/op is per burst.
func BenchmarkPoolBurst(b *testing.B) {
	burst := 2 * runtime.GOMAXPROCS(0)
	run := func(b *testing.B, p *Pool) {
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				if _, err := p.Get(context.Background()); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			p, err := NewPool(PoolConfig{Size: 0})
			require.NoError(b, err)
			run(b, p)
			p.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/key")
	})
	b.Run("warm", func(b *testing.B) {
		p, err := NewPool(PoolConfig{Size: burst})
		require.NoError(b, err)
		defer p.Close()
		for b.Loop() {
			b.StopTimer()
			for p.Stats().Ready < burst {
				<-time.After(time.Millisecond) // poll without stealing the generators' CPU
			}
			b.StartTimer()
			run(b, p)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/key")
	})
}
