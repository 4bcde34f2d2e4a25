package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
)

const sessionTokenSize = 32

// ErrBadCredentials is returned for an unknown email or a wrong password, without saying which.
var ErrBadCredentials = errors.New("email or password is wrong")

// ErrThrottled is returned when too many sign-ins failed recently.
var ErrThrottled = errors.New("too many failed sign-ins; try again in 15 minutes")

// ErrNoSession is returned for a missing, unknown or expired session.
var ErrNoSession = errors.New("no valid session")

// Session is a signed-in admin.
type Session struct {
	AdminID    int64
	AdminEmail string
	CSRFToken  string
	ExpiresAt  time.Time
	// Role is the admin's role when the session was looked up.
	Role Role
	// MustChangePassword is set while the admin still signs in with an invitation's one-time
	// password: nothing but the password change is open to them.
	MustChangePassword bool
	// SecondFactorPending is set between a right password and a right second-factor code: the
	// session reaches nothing but the code form.
	SecondFactorPending bool
	// SecondFactor reports whether the admin has a TOTP second factor.
	SecondFactor bool
}

// Service signs admins in and out and looks sessions up.
type Service struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	idle    time.Duration
	maxAge  time.Duration
	nowFunc func() time.Time
	keyring *secrets.Keyring // encrypts TOTP secrets; nil: no second factor
}

// NewService returns a Service with the given idle and absolute session lifetimes.
func NewService(pool *pgxpool.Pool, idle, maxAge time.Duration, opts ...Option) *Service {
	s := &Service{pool: pool, q: db.New(), idle: idle, maxAge: maxAge, nowFunc: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NormalizeEmail lower-cases and trims an email for lookups.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CreateAdmin stores a new owner with an argon2id hash of password.
func (s *Service) CreateAdmin(ctx context.Context, email, password string) (db.Admin, error) {
	return s.CreateAdminWithRole(ctx, email, password, RoleOwner)
}

// CreateAdminWithRole stores a new admin with the given role and an argon2id hash of password.
func (s *Service) CreateAdminWithRole(ctx context.Context, email, password string, role Role) (db.Admin, error) {
	return s.createAdmin(ctx, s.pool, email, password, role, false)
}

func (s *Service) createAdmin(ctx context.Context, dbtx db.DBTX, email, password string, role Role, mustChange bool) (db.Admin, error) {
	email = NormalizeEmail(email)
	if len(email) > 254 || !printable(email) || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n") {
		return db.Admin{}, fmt.Errorf("%q is not an email address", email)
	}
	if !role.Valid() {
		return db.Admin{}, fmt.Errorf("create admin %s: unknown role %q", email, role)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return db.Admin{}, err
	}
	a, err := s.q.AdminCreate(ctx, dbtx, db.AdminCreateParams{Email: email, PasswordHash: hash, Role: string(role), MustChangePassword: mustChange})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return db.Admin{}, fmt.Errorf("create admin %s: %w", email, ErrAdminExists)
		}
		return db.Admin{}, fmt.Errorf("create admin %s: %w", email, err)
	}
	return a, nil
}

// ErrAdminExists is returned when an admin with the email already exists.
var ErrAdminExists = errors.New("an admin with this email already exists")

// SetPassword replaces an admin's password and ends their sessions.
func (s *Service) SetPassword(ctx context.Context, email, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := s.q.AdminGetByEmail(ctx, tx, NormalizeEmail(email))
		if err != nil {
			return fmt.Errorf("admin %s: %w", email, err)
		}
		if err := s.q.AdminSetPassword(ctx, tx, db.AdminSetPasswordParams{ID: a.ID, PasswordHash: hash, MustChangePassword: false}); err != nil {
			return fmt.Errorf("set password of %s: %w", email, err)
		}
		if err := s.q.SessionDeleteByAdmin(ctx, tx, a.ID); err != nil {
			return fmt.Errorf("end sessions of %s: %w", email, err)
		}
		return s.audit(ctx, tx, &a.ID, a.Email, "password_set", "")
	})
}

// SignIn checks the credentials and starts a new session. Every attempt is recorded for
// throttling and audited. The returned token goes into the session cookie; a fresh one is issued
// on every sign-in, so a session fixed before sign-in is never reused.
func (s *Service) SignIn(ctx context.Context, email, password, ip, userAgent string) (token string, sess *Session, err error) {
	if len(email) > 254 || len(password) > 1024 || !printable(email) {
		return "", nil, ErrBadCredentials
	}
	email = NormalizeEmail(email)
	admin, err := s.q.AdminGetByEmail(ctx, s.pool, email)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return "", nil, fmt.Errorf("look up admin: %w", err)
	}
	found := err == nil
	// What the audit log and login_attempts say: the admin's email, never an email no admin has
	// (it may be a password typed into the wrong field).
	recorded, known := unknownAccount, false
	var acct string
	if found {
		recorded, acct = admin.Email, accountKey(&admin, email)
		if known, err = s.q.LoginThrottleIsKnown(ctx, s.pool, db.LoginThrottleIsKnownParams{
			Bucket: knownKey(admin.ID, ip), Since: s.nowFunc().Add(-KnownAddressFor),
		}); err != nil {
			return "", nil, fmt.Errorf("look up sign-in address: %w", err)
		}
	} else {
		acct = accountKey(nil, email)
	}
	buckets := attemptBuckets(acct, ip, known)
	full, err := s.reserve(ctx, buckets)
	if err != nil {
		return "", nil, err
	}
	if full != "" {
		if err := s.throttled(ctx, full, recorded, nil, ip); err != nil {
			return "", nil, err
		}
		return "", nil, ErrThrottled
	}

	ok := false
	if found {
		ok, err = checkPassword(ctx, admin.PasswordHash, password)
		// A disabled admin's right password is refused like a wrong one.
		ok = ok && admin.DisabledAt == nil
	} else {
		_, err = checkPassword(ctx, dummyHash, password)
	}
	if err != nil {
		return "", nil, err
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", nil, err
	}
	defer tx.Rollback(ctx)
	if err := s.q.LoginAttemptInsert(ctx, tx, db.LoginAttemptInsertParams{Email: recorded, Ip: ip, Succeeded: ok}); err != nil {
		return "", nil, fmt.Errorf("record sign-in attempt: %w", err)
	}
	if !ok {
		if err := s.audit(ctx, tx, nil, recorded, "sign_in_failed", ip); err != nil {
			return "", nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return "", nil, err
		}
		return "", nil, ErrBadCredentials
	}
	if err := s.succeeded(ctx, tx, buckets, admin.ID, ip); err != nil {
		return "", nil, err
	}
	// With a second factor, the password opens only a pending session: the code form.
	pending := secondFactorOn(admin)
	token = RandomToken(sessionTokenSize)
	row, err := s.q.SessionCreate(ctx, tx, db.SessionCreateParams{
		TokenHash: hashToken(token), AdminID: admin.ID, CsrfToken: RandomToken(32),
		Ip: ip, UserAgent: truncate(clean(userAgent), 300), ExpiresAt: s.nowFunc().Add(s.maxAge),
		SecondFactorPending: pending,
	})
	if err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	action := "sign_in"
	if pending {
		action = "sign_in_password" // the sign-in completes with the code
	}
	if err := s.audit(ctx, tx, &admin.ID, admin.Email, action, ip); err != nil {
		return "", nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", nil, err
	}
	return token, &Session{AdminID: admin.ID, AdminEmail: admin.Email, CSRFToken: row.CsrfToken, ExpiresAt: row.ExpiresAt,
		Role: Role(admin.Role), MustChangePassword: admin.MustChangePassword,
		SecondFactorPending: pending, SecondFactor: pending}, nil
}

// Lookup returns the live session for a cookie token and marks it used.
func (s *Service) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 100 {
		return nil, ErrNoSession
	}
	h := hashToken(token)
	row, err := s.q.SessionGet(ctx, s.pool, db.SessionGetParams{TokenHash: h, IdleSince: s.nowFunc().Add(-s.idle)})
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return nil, ErrNoSession
		}
		return nil, fmt.Errorf("look up session: %w", err)
	}
	if err := s.q.SessionTouch(ctx, s.pool, h); err != nil {
		return nil, fmt.Errorf("touch session: %w", err)
	}
	return &Session{AdminID: row.AdminSession.AdminID, AdminEmail: row.AdminEmail,
		CSRFToken: row.AdminSession.CsrfToken, ExpiresAt: row.AdminSession.ExpiresAt,
		Role: Role(row.AdminRole), MustChangePassword: row.AdminMustChangePassword,
		SecondFactorPending: row.AdminSession.SecondFactorPending, SecondFactor: row.AdminSecondFactor}, nil
}

// SignOut ends the session of token.
func (s *Service) SignOut(ctx context.Context, token string, sess *Session, ip string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := s.q.SessionDelete(ctx, tx, hashToken(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if sess != nil {
		if err := s.audit(ctx, tx, &sess.AdminID, sess.AdminEmail, "sign_out", ip); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Cleanup deletes expired sessions, sign-in attempts older than a day, throttle counters whose
// window has passed and sign-in addresses not used for KnownAddressFor.
func (s *Service) Cleanup(ctx context.Context) error {
	now := s.nowFunc()
	if _, err := s.q.SessionDeleteExpired(ctx, s.pool, now.Add(-s.idle)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := s.q.LoginAttemptDeleteBefore(ctx, s.pool, now.Add(-24*time.Hour)); err != nil {
		return fmt.Errorf("delete old sign-in attempts: %w", err)
	}
	if _, err := s.q.LoginThrottleDeleteStale(ctx, s.pool, db.LoginThrottleDeleteStaleParams{
		WindowSince: now.Add(-ThrottleWindow), KnownSince: now.Add(-KnownAddressFor),
	}); err != nil {
		return fmt.Errorf("delete stale sign-in counters: %w", err)
	}
	return nil
}

// CleanupEvery runs Cleanup now and then every interval until ctx ends (the web process runs
// it; several processes doing so is harmless). A failed run is logged and retried next time.
func (s *Service) CleanupEvery(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Cleanup(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "auth cleanup", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) audit(ctx context.Context, dbtx db.DBTX, adminID *int64, email, action, ip string) error {
	return s.auditDetail(ctx, dbtx, adminID, email, action, ip, "")
}

func (s *Service) auditDetail(ctx context.Context, dbtx db.DBTX, adminID *int64, email, action, ip, detail string) error {
	if err := s.q.AuditInsert(ctx, dbtx, db.AuditInsertParams{AdminID: adminID, AdminEmail: email, Action: action, Ip: ip, Detail: detail}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// printable reports whether s is valid UTF-8 without control characters (PostgreSQL refuses NUL).
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// clean makes a client-supplied string storable: valid UTF-8, no control characters.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func truncate(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	if len(s) <= n {
		return s
	}
	return s[:n]
}
