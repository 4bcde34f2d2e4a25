package statusview

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestStatusCacheIndependentOfFleet: announcements for a fleet of 200,000 subscriptions that
// nobody polls neither drop the rows of the polled ones nor leave state behind; a read that an
// announcement overtook is not kept, one that began afterwards is.
func TestStatusCacheIndependentOfFleet(t *testing.T) {
	t.Parallel()
	c := newStatusCache()
	c.setLive(true)
	now := time.Now()
	for id := int64(1); id <= 500; id++ {
		_, ok, tok := c.get(id, now)
		require.False(t, ok)
		c.put(id, db.UIStatusGetRow{ID: id}, tok, now)
	}
	for id := int64(1000); id < 201_000; id++ {
		c.changed(id)
	}
	entries, reads := c.size()
	require.Equal(t, 500, entries, "no polled row was dropped")
	require.Zero(t, reads)
	for id := int64(1); id <= 500; id++ {
		row, ok, _ := c.get(id, now)
		require.True(t, ok, "subscription %d served from memory", id)
		require.Equal(t, id, row.ID)
	}

	// A read overtaken by an announcement is not kept; the next read is.
	c.changed(7)
	_, ok, tok := c.get(7, now)
	require.False(t, ok)
	c.changed(7)
	c.put(7, db.UIStatusGetRow{ID: 7, Plan: "stale"}, tok, now)
	_, ok, tok = c.get(7, now)
	require.False(t, ok, "the overtaken read was not kept")
	c.put(7, db.UIStatusGetRow{ID: 7, Plan: "fresh"}, tok, now)
	row, ok, _ := c.get(7, now)
	require.True(t, ok)
	require.Equal(t, "fresh", row.Plan)

	// A failed read leaves nothing behind; a reconnect forgets everything.
	_, _, tok = c.get(9_999, now)
	c.abandon(9_999, tok)
	_, reads = c.size()
	require.Zero(t, reads)
	_, _, tok = c.get(8, now.Add(statusCacheMaxAge))
	c.setLive(true)
	c.put(8, db.UIStatusGetRow{ID: 8}, tok, now)
	entries, reads = c.size()
	require.Zero(t, entries)
	require.Zero(t, reads)
}
