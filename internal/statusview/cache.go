package statusview

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Every open status page polls its subscription every 2 s, but most polls find nothing changed
// (cloud-init alone takes a minute). The web process therefore keeps the status rows of polled
// subscriptions in memory and LISTENs on subscription_changed, which triggers announce on commit
// of any change to what the page shows; an announced row is dropped and read again on the next
// poll. Durations and "stuck" are still measured at each poll. Without a live listener nothing
// is cached.
const (
	// statusCacheMaxAge bounds how long a row is trusted even without an announcement.
	statusCacheMaxAge = 30 * time.Second
	// statusCacheMax bounds the cached rows (one per polled subscription); past it the rows are
	// dropped and read again.
	statusCacheMax = 50_000
)

// The cache keeps per-subscription state only for the subscriptions being polled: a cached row,
// or a read in progress. Announcements come for the whole fleet (the worker, the reconciler, a
// bulk change), and one for a subscription nobody polls costs a map lookup and leaves nothing
// behind, so neither the memory nor the hit rate depends on the size of the fleet. (Keeping a
// generation for every announced subscription, as before, grew with the fleet and flushed every
// cached row each time statusCacheMax subscriptions had been announced.)
type statusCache struct {
	mu      sync.Mutex
	live    bool // the listener is connected: announcements arrive
	epoch   uint64
	entries map[int64]statusEntry
	reads   map[int64]*statusReads
}

type statusEntry struct {
	status *parsedStatus
	read   time.Time
}

// statusReads are the reads of one subscription in progress; gen counts the announcements that
// came in meanwhile, so a read that began before one is not kept.
type statusReads struct {
	n   int
	gen uint64
}

// statusToken is what a read must present to keep its row.
type statusToken struct {
	epoch, gen uint64
	counted    bool // the read is counted in reads (the cache was live when it began)
}

func newStatusCache() *statusCache {
	return &statusCache{entries: map[int64]statusEntry{}, reads: map[int64]*statusReads{}}
}

// get returns a cached row, or the token of a read (ok false), which must then be ended with put
// or abandon.
func (c *statusCache) get(id int64, now time.Time) (st *parsedStatus, ok bool, token statusToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return nil, false, statusToken{epoch: c.epoch}
	}
	if e, found := c.entries[id]; found && now.Sub(e.read) < statusCacheMaxAge {
		return e.status, true, token
	}
	r := c.reads[id]
	if r == nil {
		r = &statusReads{}
		c.reads[id] = r
	}
	r.n++
	return nil, false, statusToken{epoch: c.epoch, gen: r.gen, counted: true}
}

// put stores a status read after get returned token, unless an announcement (or a reconnect) came
// in between: it may already be stale.
func (c *statusCache) put(id int64, st *parsedStatus, token statusToken, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.end(id, token)
	if !c.live || !token.counted || token.epoch != c.epoch || r == nil || r.gen != token.gen {
		return
	}
	if len(c.entries) >= statusCacheMax {
		c.entries = map[int64]statusEntry{}
	}
	c.entries[id] = statusEntry{status: st, read: read}
}

// abandon ends a read that failed.
func (c *statusCache) abandon(id int64, token statusToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end(id, token)
}

// end counts a read of id as done and returns its subscription's reads (nil when the read
// belongs to an earlier epoch); the entry goes once no read is left.
func (c *statusCache) end(id int64, token statusToken) *statusReads {
	r := c.reads[id]
	if !token.counted || token.epoch != c.epoch || r == nil {
		return nil
	}
	r.n--
	if r.n <= 0 {
		delete(c.reads, id)
	}
	return r
}

func (c *statusCache) changed(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	if r := c.reads[id]; r != nil {
		r.gen++
	}
}

// setLive switches caching on or off; either way everything cached so far is forgotten, since
// announcements may have been missed.
func (c *statusCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.epoch++
	c.entries = map[int64]statusEntry{}
	c.reads = map[int64]*statusReads{}
}

// size is how many subscriptions the cache holds state for (rows and reads in progress).
func (c *statusCache) size() (entries, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), len(c.reads)
}

// PollStatus is [Reader.Status] for the polled status fragment: served from memory while nothing
// has changed, when [Reader.ListenForChanges] runs.
func (s *Reader) PollStatus(ctx context.Context, subscriptionID int64) (*Status, error) {
	now := time.Now()
	p, ok, token := s.statuses.get(subscriptionID, now)
	if !ok {
		row, err := s.statusRow(ctx, subscriptionID)
		if err == nil {
			p, err = parseStatus(row)
		}
		if err != nil {
			s.statuses.abandon(subscriptionID, token)
			return nil, err
		}
		s.statuses.put(subscriptionID, p, token, now)
	}
	return s.named(ctx)(p.at(time.Now()), nil)
}

// ListenForChanges keeps a connection LISTENing for status changes until ctx ends, reconnecting
// with backoff; while it is connected, [Reader.PollStatus] serves from memory.
func (s *Reader) ListenForChanges(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := s.listen(ctx)
		s.statuses.setLive(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		s.log.WarnContext(ctx, "status listener lost its connection; polls read the database until it is back", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (s *Reader) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := s.q.StatusListen(ctx, conn); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Only now are announcements sure to arrive: anything cached before may have missed some.
	s.statuses.setLive(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			s.statuses.changed(id)
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
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
