package auth_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(burstEnv); url != "" {
		os.Exit(burstChild(url))
	}
	os.Exit(dbtest.Main(m))
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"))
	require.True(t, auth.CheckPassword(h, "correct horse battery"))
	require.False(t, auth.CheckPassword(h, "correct horse batterz"))
	require.False(t, auth.CheckPassword("$argon2id$garbage", "x"))
	h2, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")
	_, err = auth.HashPassword("short")
	require.Error(t, err)
}

func TestSignInLookupSignOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, 30*time.Minute, 12*time.Hour)
	_, err := s.CreateAdmin(ctx, " Ops@Example.com ", "a long enough password")
	require.NoError(t, err)

	_, _, err = s.SignIn(ctx, "ops@example.com", "wrong password!!", "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, _, err = s.SignIn(ctx, "nobody@example.com", "a long enough password", "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCredentials)

	token, sess, err := s.SignIn(ctx, "OPS@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)
	require.Equal(t, "ops@example.com", sess.AdminEmail)
	require.NotEmpty(t, sess.CSRFToken)

	got, err := s.Lookup(ctx, token)
	require.NoError(t, err)
	require.Equal(t, sess.AdminID, got.AdminID)
	require.Equal(t, sess.CSRFToken, got.CSRFToken)

	// A second sign-in gets a different token: nothing fixed before sign-in survives it.
	token2, _, err := s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)
	require.NotEqual(t, token, token2)

	// Input PostgreSQL cannot store is refused as a wrong login, not an error.
	for _, bad := range []string{"ops\x00@example.com", "ops\xff@example.com"} {
		_, _, err = s.SignIn(ctx, bad, "a long enough password", "192.0.2.1", "ua")
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "agent\x00with\xffjunk")
	require.NoError(t, err, "a junk User-Agent is cleaned, not refused")

	_, err = s.Lookup(ctx, "forged-token")
	require.ErrorIs(t, err, auth.ErrNoSession)

	require.NoError(t, s.SignOut(ctx, token, got, "192.0.2.1"))
	_, err = s.Lookup(ctx, token)
	require.ErrorIs(t, err, auth.ErrNoSession)

	var actions []string
	rows, err := pool.Query(ctx, `SELECT action FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actions = append(actions, a)
	}
	require.Equal(t, []string{"sign_in_failed", "sign_in_failed", "sign_in", "sign_in", "sign_in", "sign_out"}, actions)
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	token, _, err := s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)

	// Idle: last seen two minutes ago.
	_, err = pool.Exec(ctx, `UPDATE admin_sessions SET last_seen_at = now() - interval '2 minutes'`)
	require.NoError(t, err)
	_, err = s.Lookup(ctx, token)
	require.ErrorIs(t, err, auth.ErrNoSession)

	// Absolute: active but past its maximum age.
	_, err = pool.Exec(ctx, `UPDATE admin_sessions SET last_seen_at = now(), expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	_, err = s.Lookup(ctx, token)
	require.ErrorIs(t, err, auth.ErrNoSession)

	require.NoError(t, s.Cleanup(ctx))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM admin_sessions`).Scan(&n))
	require.Zero(t, n)
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	for i := 0; i < auth.MaxFailsAccount; i++ {
		_, _, err := s.SignIn(ctx, "ops@example.com", "wrong password!!", "192.0.2.1", "ua")
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
	// The right password is refused from the address that guessed, not from the admin's own.
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrThrottled)
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "198.51.100.9", "ua")
	require.NoError(t, err, "a stranger who knows the email does not lock the admin out")

	// Per address: many accounts tried from one address.
	for i := 0; i < auth.MaxFailsAddress; i++ {
		_, _, _ = s.SignIn(ctx, "x"+strings.Repeat("y", i)+"@example.com", "wrong password!!", "203.0.113.5", "ua")
	}
	_, err = s.CreateAdmin(ctx, "other@example.com", "a long enough password")
	require.NoError(t, err)
	_, _, err = s.SignIn(ctx, "other@example.com", "a long enough password", "203.0.113.5", "ua")
	require.ErrorIs(t, err, auth.ErrThrottled)
	_, _, err = s.SignIn(ctx, "other@example.com", "a long enough password", "198.51.100.10", "ua")
	require.NoError(t, err)
}

func TestSetPasswordEndsSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	token, _, err := s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)

	require.Error(t, s.SetPassword(ctx, "ops@example.com", "short"))
	require.ErrorIs(t, s.SetPassword(ctx, "nobody@example.com", "another long password"), db.ErrNotFound)
	require.NoError(t, s.SetPassword(ctx, "OPS@example.com", "another long password"))

	_, err = s.Lookup(ctx, token)
	require.ErrorIs(t, err, auth.ErrNoSession, "sessions end with the old password")
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	_, _, err = s.SignIn(ctx, "ops@example.com", "another long password", "192.0.2.1", "ua")
	require.NoError(t, err)
}

// Two owners demoting each other at once: one change wins, the other is refused, an owner stays.
func TestLastOwnerUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	a, err := s.CreateAdmin(ctx, "a@example.com", "a long enough password")
	require.NoError(t, err)
	b, err := s.CreateAdmin(ctx, "b@example.com", "a long enough password")
	require.NoError(t, err)
	for round := range 5 {
		errs := make(chan error, 2)
		go func() { errs <- s.SetRole(ctx, audit.Actor{AdminID: a.ID, Email: a.Email}, b.ID, auth.RoleViewer) }()
		go func() { errs <- s.SetDisabled(ctx, audit.Actor{AdminID: b.ID, Email: b.Email}, a.ID, true) }()
		e1, e2 := <-errs, <-errs
		require.True(t, (e1 == nil) != (e2 == nil), "round %d: exactly one wins (%v, %v)", round, e1, e2)
		for _, e := range []error{e1, e2} {
			if e != nil {
				require.ErrorIs(t, e, auth.ErrLastOwner)
			}
		}
		var owners int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM admins WHERE role = 'owner' AND disabled_at IS NULL`).Scan(&owners))
		require.Equal(t, 1, owners)
		// Back to two owners for the next round.
		require.NoError(t, s.SetRole(ctx, audit.Actor{}, b.ID, auth.RoleOwner))
		require.NoError(t, s.SetDisabled(ctx, audit.Actor{}, a.ID, false))
	}
	require.Error(t, s.SetRole(ctx, audit.Actor{}, a.ID, "king"), "an unknown role is refused")
}
