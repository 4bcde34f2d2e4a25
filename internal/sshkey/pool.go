package sshkey

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrPoolClosed is returned by [Pool.Get] after [Pool.Close].
var ErrPoolClosed = errors.New("ssh key pool is closed")

// DefaultPoolSize is how many ready key pairs a [Pool] keeps when [PoolConfig.Size] is negative.
const DefaultPoolSize = 16

// PoolConfig configures a [Pool].
type PoolConfig struct {
	// Size is how many ready key pairs to keep; 0 keeps none (every Get generates), negative means
	// [DefaultPoolSize].
	Size int
	// Algorithm of the pooled keys; the zero value is [RSA4096].
	Algorithm Algorithm
	// Comment ends each pooled public key line; see [KeyPair.WithComment] to set one per VPS.
	Comment string
	// Workers caps how many keys are generated at once, by the pool and by Get together;
	// 0 means GOMAXPROCS.
	Workers int
}

// PoolStats is a snapshot of a pool's activity, for metrics.
type PoolStats struct {
	Ready  int   // key pairs ready now
	Hits   int64 // Gets served from the pool
	Misses int64 // Gets that found the pool empty
	Errors int64 // failed generations
}

// Pool keeps up to Size key pairs ready, generating them in the background, so that a burst of
// provisionings does not queue behind one RSA generation after another.
//
// The total of ready and in-progress background keys never exceeds Size. All generation, in the
// background and in Get, shares Workers CPU slots, so a burst cannot start more generations than
// there are cores.
type Pool struct {
	gen func() (*KeyPair, error)

	ready chan *KeyPair // ready pairs; capacity Size
	slots chan struct{} // one token per free place in the pool
	cpu   chan struct{} // one token per generation running
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	hits, misses, errs atomic.Int64
}

// NewPool starts a pool's background generators; call [Pool.Close] to stop them.
func NewPool(cfg PoolConfig) (*Pool, error) {
	alg, err := ParseAlgorithm(string(cfg.Algorithm))
	if err != nil {
		return nil, fmt.Errorf("ssh key pool: %w", err)
	}
	if err := checkComment(cfg.Comment); err != nil {
		return nil, fmt.Errorf("ssh key pool: %w", err)
	}
	return newPool(cfg, func() (*KeyPair, error) { return Generate(alg, cfg.Comment) }), nil
}

// newPool lets tests substitute the generator.
func newPool(cfg PoolConfig, gen func() (*KeyPair, error)) *Pool {
	size := cfg.Size
	if size < 0 {
		size = DefaultPoolSize
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Pool{
		gen:   gen,
		ready: make(chan *KeyPair, size),
		slots: make(chan struct{}, size),
		cpu:   make(chan struct{}, workers),
		done:  make(chan struct{}),
	}
	for range size {
		p.slots <- struct{}{}
	}
	for range min(workers, size) {
		p.wg.Add(1)
		go p.fill()
	}
	return p
}

// fill generates a key whenever the pool has a free place.
func (p *Pool) fill() {
	defer p.wg.Done()
	for {
		select {
		case <-p.slots:
		case <-p.done:
			return
		}
		select {
		case p.cpu <- struct{}{}:
		case <-p.done:
			return
		}
		kp, err := p.gen()
		<-p.cpu
		if err != nil {
			// Only a broken random source fails here; don't spin on it.
			p.errs.Add(1)
			p.slots <- struct{}{}
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				return
			}
			continue
		}
		p.ready <- kp // never blocks: a slot token was taken for it
	}
}

// Get returns a ready key pair, or generates one when the pool is empty (taking whichever comes
// first: its own generation or a pooled key). It returns ctx's error if ctx ends first.
func (p *Pool) Get(ctx context.Context) (*KeyPair, error) {
	select {
	case <-p.done:
		return nil, ErrPoolClosed
	default:
	}
	if kp, ok := p.take(); ok {
		p.hits.Add(1)
		return kp, nil
	}
	p.misses.Add(1)
	select {
	case kp := <-p.ready:
		p.slots <- struct{}{}
		return kp, nil
	case p.cpu <- struct{}{}:
		return p.generate(ctx)
	case <-ctx.Done():
		return nil, fmt.Errorf("get ssh key pair: %w", ctx.Err())
	case <-p.done:
		return nil, ErrPoolClosed
	}
}

// take returns a ready pair without waiting.
func (p *Pool) take() (*KeyPair, bool) {
	select {
	case kp := <-p.ready:
		p.slots <- struct{}{}
		return kp, true
	default:
		return nil, false
	}
}

type genResult struct {
	kp  *KeyPair
	err error
}

// generate runs one generation on the CPU slot the caller holds. If a pooled pair or ctx's end
// comes first, the pair being generated is kept for the pool (when it has room) instead of lost.
func (p *Pool) generate(ctx context.Context) (*KeyPair, error) {
	res := make(chan genResult, 1)
	go func() {
		kp, err := p.gen()
		<-p.cpu
		if err != nil {
			p.errs.Add(1)
		}
		res <- genResult{kp, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, fmt.Errorf("get ssh key pair: %w", r.err)
		}
		return r.kp, nil
	case kp := <-p.ready:
		p.slots <- struct{}{}
		p.adopt(res)
		return kp, nil
	case <-ctx.Done():
		p.adopt(res)
		return nil, fmt.Errorf("get ssh key pair: %w", ctx.Err())
	}
}

// adopt puts the result of an abandoned generation into the pool if there is a free place.
func (p *Pool) adopt(res <-chan genResult) {
	go func() {
		r := <-res
		if r.err != nil {
			return
		}
		select {
		case <-p.slots:
			p.ready <- r.kp
		default:
		}
	}()
}

// Stats reports the pool's state for metrics.
func (p *Pool) Stats() PoolStats {
	return PoolStats{Ready: len(p.ready), Hits: p.hits.Load(), Misses: p.misses.Load(), Errors: p.errs.Load()}
}

// Close stops the background generators and waits for theirs in progress to end (at most one
// generation's time); a generation started by a Get finishes on its own. Get then returns
// [ErrPoolClosed]. Close is safe to call more than once.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}
