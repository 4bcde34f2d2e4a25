package httpapp

import (
	"context"
	"sync"
	"time"

	"github.com/rachelcloud/admin/internal/auth"
)

// sessionCacheTTL is how long a looked-up session is trusted without asking the database again.
// Every open status page polls every 2 s; without this each poll would cost two queries for the
// session alone. A session ended in another web process stays usable here for at most this long;
// signing out in this process takes effect at once.
const sessionCacheTTL = 5 * time.Second

// sessionCacheMax bounds the cache; past it the cache starts afresh.
const sessionCacheMax = 10_000

// sessionCache remembers recent session lookups by cookie token.
type sessionCache struct {
	mu  sync.Mutex
	m   map[string]cachedSession
	now func() time.Time
}

type cachedSession struct {
	s     *auth.Session
	until time.Time
}

func newSessionCache() *sessionCache {
	return &sessionCache{m: map[string]cachedSession{}, now: time.Now}
}

// lookup returns the session for token from the cache, or from lookup (and caches it).
func (c *sessionCache) lookup(ctx context.Context, token string, lookup func(context.Context, string) (*auth.Session, error)) (*auth.Session, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[token]
	c.mu.Unlock()
	if ok && now.Before(e.until) && now.Before(e.s.ExpiresAt) {
		return e.s, nil
	}
	s, err := lookup(ctx, token)
	if err != nil {
		c.forget(token)
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= sessionCacheMax {
		c.m = map[string]cachedSession{}
	}
	c.m[token] = cachedSession{s: s, until: now.Add(sessionCacheTTL)}
	c.mu.Unlock()
	return s, nil
}

// forget drops token (signed out, or no longer valid).
func (c *sessionCache) forget(token string) {
	c.mu.Lock()
	delete(c.m, token)
	c.mu.Unlock()
}

// clear forgets every session (after a change to admins: roles, disabling, passwords).
func (c *sessionCache) clear() {
	c.mu.Lock()
	c.m = map[string]cachedSession{}
	c.mu.Unlock()
}
