package httpapp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
)

func TestSessionCache(t *testing.T) {
	t.Parallel()
	c := newSessionCache()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	calls := 0
	valid := true
	lookup := func(_ context.Context, token string) (*auth.Session, error) {
		calls++
		if !valid {
			return nil, auth.ErrNoSession
		}
		return &auth.Session{AdminID: 1, AdminEmail: "a@example.com", ExpiresAt: now.Add(time.Hour)}, nil
	}
	ctx := context.Background()

	for range 3 {
		s, err := c.lookup(ctx, "tok", lookup)
		require.NoError(t, err)
		require.Equal(t, int64(1), s.AdminID)
	}
	require.Equal(t, 1, calls, "cached within the TTL")

	now = now.Add(sessionCacheTTL)
	_, err := c.lookup(ctx, "tok", lookup)
	require.NoError(t, err)
	require.Equal(t, 2, calls, "asked again after the TTL")

	c.forget("tok")
	valid = false
	_, err = c.lookup(ctx, "tok", lookup)
	require.True(t, errors.Is(err, auth.ErrNoSession))
	_, err = c.lookup(ctx, "tok", lookup)
	require.True(t, errors.Is(err, auth.ErrNoSession), "a refused session is not cached")
	require.Equal(t, 4, calls)

	// A cached session past its absolute expiry is looked up again.
	valid = true
	c.m["old"] = cachedSession{s: &auth.Session{ExpiresAt: now.Add(-time.Second)}, until: now.Add(time.Second)}
	_, err = c.lookup(ctx, "old", lookup)
	require.NoError(t, err)
	require.Equal(t, 5, calls)
}
