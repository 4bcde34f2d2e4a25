package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/db"
)

// Sign-in throttling. Every attempt is counted in up to three buckets before its password is
// hashed; an attempt that would take a bucket past its limit is refused (ErrThrottled) without
// hashing. Counting takes each bucket's row lock (in a fixed order) and holds it until the
// attempt is counted everywhere, so parallel attempts are counted one after another: of 40 at
// once on one account from one address, exactly MaxFailsAccount are checked.
//
//   - pair (account, address): MaxFailsAccount per ThrottleWindow. This is what stops guessing
//     from one address, and it is the only per-account limit a single stranger can reach — so a
//     stranger who knows an admin's email locks out only themselves, never the admin signing in
//     from elsewhere.
//   - address: MaxFailsAddress per ThrottleWindow over all accounts (one address spraying many
//     accounts).
//   - account-wide: MaxFailsAccountWide per ThrottleWindow over all addresses, for a guessing run
//     spread over many addresses. It does not apply to an address the admin signed in from
//     successfully within KnownAddressFor: during such a run the admin still signs in from their
//     usual places; only attempts from addresses never used successfully are slowed to
//     MaxFailsAccountWide per window in total.
//
// A successful sign-in gives its attempt back and clears its pair bucket. Only the first
// throttled attempt per bucket and window is audited; the rest are counted in the bucket row, so
// a throttled flood does not grow the audit log. An email no admin has is never stored: its
// buckets use a truncated SHA-256 of it, and audit and attempt rows say "(unknown account)".
const (
	ThrottleWindow      = 15 * time.Minute
	MaxFailsAccount     = 5
	MaxFailsAddress     = 20
	MaxFailsAccountWide = 50
	KnownAddressFor     = 30 * 24 * time.Hour
)

// unknownAccount stands for an email no admin has, in the audit log and login_attempts.
const unknownAccount = "(unknown account)"

// accountKey names the account an attempt is for: an admin by ID, or an email no admin has by a
// truncated hash (the same for every attempt, so unknown emails are throttled like known ones and
// throttling does not tell which emails exist).
func accountKey(admin *db.Admin, email string) string {
	if admin != nil {
		return "admin:" + strconv.FormatInt(admin.ID, 10)
	}
	h := sha256.Sum256([]byte("rachel-signin\x00" + email))
	return "unknown:" + hex.EncodeToString(h[:8])
}

type bucket struct {
	key   string
	limit int32
}

// attemptBuckets are the buckets an attempt counts in; known is whether the admin signed in from
// ip before (then the account-wide bucket does not apply).
func attemptBuckets(account, ip string, known bool) []bucket {
	ip = truncate(clean(ip), 64)
	bs := []bucket{
		{"pair:" + account + "|" + ip, MaxFailsAccount},
		{"addr:" + ip, MaxFailsAddress},
	}
	if !known {
		bs = append(bs, bucket{"acct:" + account, MaxFailsAccountWide})
	}
	// One lock order for every attempt: no deadlock between two attempts.
	slices.SortFunc(bs, func(a, b bucket) int { return strings.Compare(a.key, b.key) })
	return bs
}

func knownKey(adminID int64, ip string) string {
	return "known:" + strconv.FormatInt(adminID, 10) + "|" + truncate(clean(ip), 64)
}

// reserve counts an attempt in its buckets, in one transaction. It returns the bucket that is
// full ("" when the attempt may go on); then nothing was counted.
func (s *Service) reserve(ctx context.Context, bs []bucket) (full string, err error) {
	now := s.nowFunc()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, b := range bs {
			n, err := s.q.LoginThrottleHit(ctx, tx, db.LoginThrottleHitParams{Bucket: b.key, Now: now, Since: now.Add(-ThrottleWindow)})
			if err != nil {
				return fmt.Errorf("count sign-in attempt: %w", err)
			}
			if n > b.limit {
				full = b.key
				return errFull
			}
		}
		return nil
	})
	if errors.Is(err, errFull) {
		return full, nil
	}
	return "", err
}

var errFull = errors.New("throttle bucket full")

// throttled records a refused attempt against the full bucket and audits it when it is the
// first in the bucket's window.
func (s *Service) throttled(ctx context.Context, full, auditEmail string, adminID *int64, ip string) error {
	n, err := s.q.LoginThrottleSuppress(ctx, s.pool, db.LoginThrottleSuppressParams{Bucket: full, Now: s.nowFunc()})
	if err != nil {
		return fmt.Errorf("count throttled sign-in: %w", err)
	}
	if n == 1 {
		kind, _, _ := strings.Cut(full, ":")
		detail := fmt.Sprintf("limit of the %s bucket reached; further throttled attempts in this %s window are counted, not logged", kind, ThrottleWindow)
		return s.auditDetail(ctx, s.pool, adminID, auditEmail, "sign_in_throttled", ip, detail)
	}
	return nil
}

// succeeded gives a successful attempt's count back, clears its pair bucket and remembers the
// address as one the admin signs in from.
func (s *Service) succeeded(ctx context.Context, tx pgx.Tx, bs []bucket, adminID int64, ip string) error {
	for _, b := range bs {
		var err error
		if kind, _, _ := strings.Cut(b.key, ":"); kind == "pair" {
			err = s.q.LoginThrottleDelete(ctx, tx, b.key)
		} else {
			err = s.q.LoginThrottleRefund(ctx, tx, b.key)
		}
		if err != nil {
			return fmt.Errorf("release sign-in attempt: %w", err)
		}
	}
	if err := s.q.LoginThrottleMarkKnown(ctx, tx, db.LoginThrottleMarkKnownParams{Bucket: knownKey(adminID, ip), Now: s.nowFunc()}); err != nil {
		return fmt.Errorf("remember sign-in address: %w", err)
	}
	return nil
}
