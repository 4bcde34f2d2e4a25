package hcloudsim

import (
	"math"
	"sync"
	"time"
)

// RateLimitState is the bucket as the RateLimit-* headers describe it.
type RateLimitState struct {
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

// bucket is Hetzner's token bucket: Limit requests, one more every refill interval, bursts
// allowed. It runs on real time (not the scaled clock) because clients pace themselves in real
// time.
type bucket struct {
	mu     sync.Mutex
	now    func() time.Time
	limit  int
	every  time.Duration
	tokens float64
	last   time.Time
}

func newBucket(limit int, every time.Duration, now func() time.Time) *bucket {
	return &bucket{now: now, limit: limit, every: every, tokens: float64(limit), last: now()}
}

// refill must be called with mu held.
func (b *bucket) refill() time.Time {
	now := b.now()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(float64(b.limit), b.tokens+float64(el)/float64(b.every))
	}
	b.last = now
	return now
}

// take spends one token if there is one and returns the state to report either way.
func (b *bucket) take() (ok bool, st RateLimitState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	if b.tokens >= 1 {
		b.tokens--
		ok = true
	}
	return ok, b.stateLocked()
}

func (b *bucket) state() RateLimitState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	return b.stateLocked()
}

func (b *bucket) stateLocked() RateLimitState {
	missing := float64(b.limit) - b.tokens
	return RateLimitState{
		Limit:     b.limit,
		Remaining: int(math.Floor(b.tokens)),
		Reset:     b.last.Add(time.Duration(missing * float64(b.every))),
	}
}

// set replaces the remaining tokens (tests and benchmarks start from a drained bucket).
func (b *bucket) set(remaining int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens = float64(min(max(remaining, 0), b.limit))
}
