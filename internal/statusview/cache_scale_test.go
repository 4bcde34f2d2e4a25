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
		c.put(id, &parsedStatus{base: Status{SubscriptionID: id}}, tok, now)
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
		require.Equal(t, id, row.base.SubscriptionID)
	}

	// A read overtaken by an announcement is not kept; the next read is.
	c.changed(7)
	_, ok, tok := c.get(7, now)
	require.False(t, ok)
	c.changed(7)
	c.put(7, &parsedStatus{base: Status{SubscriptionID: 7, Plan: "stale"}}, tok, now)
	_, ok, tok = c.get(7, now)
	require.False(t, ok, "the overtaken read was not kept")
	c.put(7, &parsedStatus{base: Status{SubscriptionID: 7, Plan: "fresh"}}, tok, now)
	row, ok, _ := c.get(7, now)
	require.True(t, ok)
	require.Equal(t, "fresh", row.base.Plan)

	// A failed read leaves nothing behind; a reconnect forgets everything.
	_, _, tok = c.get(9_999, now)
	c.abandon(9_999, tok)
	_, reads = c.size()
	require.Zero(t, reads)
	_, _, tok = c.get(8, now.Add(statusCacheMaxAge))
	c.setLive(true)
	c.put(8, &parsedStatus{base: Status{SubscriptionID: 8}}, tok, now)
	entries, reads = c.size()
	require.Zero(t, entries)
	require.Zero(t, reads)
}

// TestParsedStatusMeasuredAtEachPoll: a status kept in memory is decoded once, but the current
// step's duration and whether it overran are measured at each poll, and two polls' answers share
// nothing a caller may change.
func TestParsedStatusMeasuredAtEachPoll(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := db.ProvisioningStatusCloudInit
	row := db.UIStatusGetRow{ID: 5, Plan: "personal", BillingStatus: "active", ProvisioningStatus: &st, StepStartedAt: &started,
		Events: []byte(`[{"at": "2026-12-01T11:59:00Z", "step": "pending", "kind": "entered", "message": "m", "actor": "a"},
			{"at": "2026-12-01T11:59:30Z", "step": "creating", "kind": "entered", "message": "m", "actor": "a"},
			{"at": "2026-12-01T12:00:00Z", "step": "cloud_init", "kind": "entered", "message": "m", "actor": "a"}]`),
		Actions: []byte(`[]`)}
	p, err := parseStatus(row)
	require.NoError(t, err)
	current := func(s *Status) StepView {
		for _, v := range s.Steps {
			if v.State == "current" {
				return v
			}
		}
		t.Fatalf("no current step in %+v", s.Steps)
		return StepView{}
	}
	early := p.at(started.Add(time.Minute))
	late := p.at(started.Add(time.Hour))
	require.Equal(t, time.Minute, current(early).Duration)
	require.Equal(t, time.Hour, current(late).Duration)
	require.Nil(t, early.Stuck, "a minute is within cloud-init's expected time")
	require.NotNil(t, late.Stuck, "an hour is not")
	require.Len(t, late.Events, 3)

	late.ServerName = "changed"
	late.Steps[0].State = "changed"
	again := p.at(started.Add(time.Minute))
	require.Empty(t, again.ServerName)
	require.Equal(t, current(early), current(again))
	require.NotEqual(t, "changed", again.Steps[0].State)
}
