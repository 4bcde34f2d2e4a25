package provision

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/db"
)

// Every open status page polls its subscription every 2 s, but most polls find nothing changed
// (cloud-init alone takes a minute). The web process therefore keeps the status rows of polled
// subscriptions in memory and LISTENs on subscription_changed, which triggers announce on commit
// of any change to what the page shows; an announced row is dropped and read again on the next
// poll. Durations and "stuck" are still measured at each poll. Without a live listener nothing
// is cached.
const (
	statusChannel = "subscription_changed"
	// statusCacheMaxAge bounds how long a row is trusted even without an announcement.
	statusCacheMaxAge = 30 * time.Second
	// statusCacheMax bounds the cache; past it the cache starts afresh.
	statusCacheMax = 50_000
)

type statusCache struct {
	mu      sync.Mutex
	live    bool // the listener is connected: announcements arrive
	epoch   uint64
	gen     map[int64]uint64 // announcements seen per subscription while live
	entries map[int64]statusEntry
}

type statusEntry struct {
	row  db.UIStatusGetRow
	gen  uint64
	read time.Time
}

func newStatusCache() *statusCache {
	return &statusCache{gen: map[int64]uint64{}, entries: map[int64]statusEntry{}}
}

// get returns a cached row, or the token to store a fresh one with (ok false).
func (c *statusCache) get(id int64, now time.Time) (row db.UIStatusGetRow, ok bool, token [2]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	token = [2]uint64{c.epoch, c.gen[id]}
	if !c.live {
		return row, false, token
	}
	e, found := c.entries[id]
	if found && e.gen == c.gen[id] && now.Sub(e.read) < statusCacheMaxAge {
		return e.row, true, token
	}
	return row, false, token
}

// put stores a row read after get returned token, unless an announcement (or a reconnect) came
// in between: the row may already be stale.
func (c *statusCache) put(id int64, row db.UIStatusGetRow, token [2]uint64, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || token != [2]uint64{c.epoch, c.gen[id]} {
		return
	}
	if len(c.entries) >= statusCacheMax {
		c.entries = map[int64]statusEntry{}
	}
	c.entries[id] = statusEntry{row: row, gen: token[1], read: read}
}

func (c *statusCache) changed(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[id]++
	delete(c.entries, id)
	if len(c.gen) >= statusCacheMax {
		c.reset()
	}
}

// setLive switches caching on or off; either way everything cached so far is forgotten, since
// announcements may have been missed.
func (c *statusCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.reset()
}

func (c *statusCache) reset() {
	c.epoch++
	c.gen = map[int64]uint64{}
	c.entries = map[int64]statusEntry{}
}

// PollStatus is [Service.Status] for the polled status fragment: served from memory while nothing
// has changed, when [Service.ListenForChanges] runs.
func (s *Service) PollStatus(ctx context.Context, subscriptionID int64) (*Status, error) {
	now := time.Now()
	row, ok, token := s.statuses.get(subscriptionID, now)
	if !ok {
		var err error
		if row, err = s.statusRow(ctx, subscriptionID); err != nil {
			return nil, err
		}
		s.statuses.put(subscriptionID, row, token, now)
	}
	return s.named(ctx)(statusFromRow(row, time.Now()))
}

// ListenForChanges keeps a connection LISTENing for status changes until ctx ends, reconnecting
// with backoff; while it is connected, [Service.PollStatus] serves from memory.
func (s *Service) ListenForChanges(ctx context.Context) {
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
		s.o.log.WarnContext(ctx, "status listener lost its connection; polls read the database until it is back", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (s *Service) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+statusChannel); err != nil {
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
