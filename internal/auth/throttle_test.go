package auth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/testkit"
)

func auditCount(t *testing.T, pool *pgxpool.Pool, action string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = $1`, action).Scan(&n))
	return n
}

// Of 40 wrong passwords sent at once for one account from one address, exactly MaxFailsAccount
// are checked (it used to be up to 39): each attempt is counted before its password is hashed.
// The throttled rest, and a further flood, add one audit row, not one each.
func TestThrottleCountsParallelAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)

	flood := func(n int) (wrong, throttled int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.SignIn(ctx, "ops@example.com", "wrong password!!", "203.0.113.5", "ua")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, auth.ErrBadCredentials):
					wrong++
				case errors.Is(err, auth.ErrThrottled):
					throttled++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		return wrong, throttled
	}
	wrong, throttled := flood(40)
	require.Equal(t, auth.MaxFailsAccount, wrong, "checked")
	require.Equal(t, 40-auth.MaxFailsAccount, throttled)
	require.Equal(t, auth.MaxFailsAccount, auditCount(t, pool, "sign_in_failed"))
	require.Equal(t, 1, auditCount(t, pool, "sign_in_throttled"))

	wrong, throttled = flood(100)
	require.Zero(t, wrong)
	require.Equal(t, 100, throttled)
	require.Equal(t, 1, auditCount(t, pool, "sign_in_throttled"), "a throttled flood is counted, not logged attempt by attempt")
	var suppressed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(suppressed) FROM login_throttle`).Scan(&suppressed))
	require.Equal(t, 135, suppressed)
}

// A guessing run spread over many addresses fills the account-wide bucket: then addresses the
// admin never signed in from are refused, while the admin's known address still signs in.
func TestAccountWideLimitSparesKnownAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	a, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.10", "ua")
	require.NoError(t, err)

	// Failures from many addresses, each below its own limits, add up account-wide.
	for i := range 3 {
		_, _, err := s.SignIn(ctx, "ops@example.com", "wrong password!!", fmt.Sprintf("198.51.100.%d", i+1), "ua")
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT failures FROM login_throttle WHERE bucket = $1`, fmt.Sprintf("acct:admin:%d", a.ID)).Scan(&n))
	require.Equal(t, 3, n)
	// The rest of the distributed run (47 more addresses) is set up directly.
	_, err = pool.Exec(ctx, `UPDATE login_throttle SET failures = $2 WHERE bucket = $1`, fmt.Sprintf("acct:admin:%d", a.ID), auth.MaxFailsAccountWide)
	require.NoError(t, err)

	_, _, err = s.SignIn(ctx, "ops@example.com", "wrong password!!", "198.51.100.200", "ua")
	require.ErrorIs(t, err, auth.ErrThrottled, "a new address is refused once the account-wide limit is reached")
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.10", "ua")
	require.NoError(t, err, "the admin's known address still signs in")
}

// What was typed into the email field is not stored or logged unless it is an admin's email: a
// password typed there by mistake leaves no trace.
func TestUnknownEmailIsNotStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	const typed = "Tr0ub4dor&3-my-real-password"
	for range auth.MaxFailsAccount + 2 {
		_, _, err := s.SignIn(ctx, typed, "a long enough password", "192.0.2.1", "ua")
		require.Error(t, err)
	}
	require.Equal(t, auth.MaxFailsAccount, auditCount(t, pool, "sign_in_failed"), "unknown emails are throttled like known ones")
	require.Equal(t, 1, auditCount(t, pool, "sign_in_throttled"))
	var found int
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM audit_log WHERE admin_email ILIKE '%troub4dor%' OR detail ILIKE '%troub4dor%')
		     + (SELECT count(*) FROM login_attempts WHERE email ILIKE '%troub4dor%')
		     + (SELECT count(*) FROM login_throttle WHERE bucket ILIKE '%troub4dor%')`).Scan(&found))
	require.Zero(t, found)
	var email string
	require.NoError(t, pool.QueryRow(ctx, `SELECT admin_email FROM audit_log WHERE action = 'sign_in_failed' LIMIT 1`).Scan(&email))
	require.Equal(t, "(unknown account)", email)
}

// Expired sessions, old attempts and stale counters are deleted by the periodic cleanup the web
// process runs.
func TestCleanupEveryDeletesExpiredRows(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	_, err := s.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	live, _, err := s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)
	_, _, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.2", "ua")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
		UPDATE admin_sessions SET expires_at = now() - interval '1 second' WHERE ip = '192.0.2.2';
		INSERT INTO login_attempts (email, ip, succeeded, attempted_at) VALUES ('(unknown account)', '192.0.2.3', false, now() - interval '2 days');
		INSERT INTO login_throttle (bucket, window_start, failures, updated_at) VALUES ('addr:192.0.2.3', now() - interval '1 hour', 3, now() - interval '1 hour');`)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() { defer close(done); s.CleanupEvery(ctx, time.Hour, discard()) }()
	count := func(q string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, q).Scan(&n))
		return n
	}
	testkit.Eventually(t, "expired sessions, attempts and throttle rows deleted", func() bool {
		return count(`SELECT count(*) FROM admin_sessions`) == 1 &&
			count(`SELECT count(*) FROM login_attempts WHERE ip = '192.0.2.3'`) == 0 &&
			count(`SELECT count(*) FROM login_throttle WHERE bucket = 'addr:192.0.2.3'`) == 0
	})
	_, err = s.Lookup(ctx, live)
	require.NoError(t, err, "the live session is kept")
	require.Positive(t, count(`SELECT count(*) FROM login_throttle WHERE bucket LIKE 'known:%'`), "known addresses are kept")
	cancel()
	<-done
}

// However many sign-ins arrive at once, at most MaxConcurrentHashes argon2id hashes (19 MiB
// each) run at a time.
func TestPasswordHashingIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Minute, time.Hour)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Different accounts from different addresses: nothing is throttled, every one hashes.
			_, _, err := s.SignIn(ctx, fmt.Sprintf("nobody%d@example.com", i), "wrong password!!", fmt.Sprintf("198.51.100.%d", i+1), "ua")
			require.ErrorIs(t, err, auth.ErrBadCredentials)
		}()
	}
	wg.Wait()
	require.Equal(t, 12, auditCount(t, pool, "sign_in_failed"))
	peak := auth.HashPeak()
	require.Positive(t, peak)
	require.LessOrEqual(t, peak, int64(auth.MaxConcurrentHashes))
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
