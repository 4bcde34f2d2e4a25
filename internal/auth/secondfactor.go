package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
)

// TOTPIssuer names the app in authenticator apps.
const TOTPIssuer = "Rachel Cloud"

// RecoveryCodeCount is how many recovery codes an enrolment issues.
const RecoveryCodeCount = 10

// ErrBadCode is returned for a wrong second-factor code, one already used, or an unknown or used
// recovery code, without saying which.
var ErrBadCode = errors.New("the code is wrong or was already used")

// ErrSecondFactorOn is returned when enrolling an admin whose second factor is already on.
var ErrSecondFactorOn = errors.New("the second factor is already on")

// ErrNoEnrolment is returned when confirming an enrolment that was never started.
var ErrNoEnrolment = errors.New("no second-factor enrolment is in progress")

// Option configures a [Service].
type Option func(*Service)

// WithKeyring lets the service encrypt and decrypt TOTP secrets (needed for the second factor).
func WithKeyring(kr *secrets.Keyring) Option { return func(s *Service) { s.keyring = kr } }

// secondFactorOn reports whether an admin signs in with a TOTP code.
func secondFactorOn(a db.Admin) bool { return a.TotpEnabledAt != nil }

func totpAD(column string, adminID int64) secrets.AD {
	return secrets.AD{Table: "admins", Column: column, RowID: adminID}
}

func (s *Service) needKeyring() error {
	if s.keyring == nil {
		return errors.New("second factor: no keyring configured (RACHEL_KEYRING)")
	}
	return nil
}

// Enrolment is a started TOTP enrolment: the secret (for manual entry) and its otpauth:// URI
// (for the QR code).
type Enrolment struct {
	Secret secrets.Secret
	URI    secrets.Secret
}

// BeginEnrolment returns the admin's pending TOTP secret, creating (and storing, encrypted and
// bound to the admin's row) one if there is none, so reloading the page shows the same QR code.
func (s *Service) BeginEnrolment(ctx context.Context, adminID int64) (*Enrolment, error) {
	if err := s.needKeyring(); err != nil {
		return nil, err
	}
	var secret, email string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := s.q.AdminGetForUpdate(ctx, tx, adminID)
		if err != nil {
			return fmt.Errorf("admin %d: %w", adminID, err)
		}
		email = a.Email
		if secondFactorOn(a) {
			return ErrSecondFactorOn
		}
		if a.TotpPendingSecret != nil {
			pt, err := s.keyring.Decrypt(a.TotpPendingSecret, totpAD("totp_pending_secret", a.ID))
			if err != nil {
				return fmt.Errorf("decrypt pending TOTP secret of admin %d: %w", a.ID, err)
			}
			secret = string(pt)
			return nil
		}
		secret = newTOTPSecret()
		ct, err := s.keyring.Encrypt([]byte(secret), totpAD("totp_pending_secret", a.ID))
		if err != nil {
			return fmt.Errorf("encrypt TOTP secret: %w", err)
		}
		return s.q.AdminSetTOTPPending(ctx, tx, db.AdminSetTOTPPendingParams{ID: a.ID, Secret: ct})
	})
	if err != nil {
		return nil, err
	}
	return &Enrolment{Secret: secrets.NewSecret(secret), URI: secrets.NewSecret(TOTPURI(TOTPIssuer, email, secret))}, nil
}

// ConfirmEnrolment turns the second factor on when code matches the pending secret, and returns
// new recovery codes, shown once (only their hashes are kept). Audited.
func (s *Service) ConfirmEnrolment(ctx context.Context, actor audit.Actor, code string) ([]string, error) {
	if err := s.needKeyring(); err != nil {
		return nil, err
	}
	var codes []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := s.q.AdminGetForUpdate(ctx, tx, actor.AdminID)
		if err != nil {
			return fmt.Errorf("admin %d: %w", actor.AdminID, err)
		}
		if secondFactorOn(a) {
			return ErrSecondFactorOn
		}
		if a.TotpPendingSecret == nil {
			return ErrNoEnrolment
		}
		pt, err := s.keyring.Decrypt(a.TotpPendingSecret, totpAD("totp_pending_secret", a.ID))
		if err != nil {
			return fmt.Errorf("decrypt pending TOTP secret of admin %d: %w", a.ID, err)
		}
		key, err := decodeTOTPSecret(string(pt))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(key, normalizeCode(code), s.nowFunc())
		if !ok {
			return ErrBadCode
		}
		ct, err := s.keyring.Encrypt(pt, totpAD("totp_secret", a.ID))
		if err != nil {
			return fmt.Errorf("encrypt TOTP secret: %w", err)
		}
		if err := s.q.AdminEnableTOTP(ctx, tx, db.AdminEnableTOTPParams{ID: a.ID, Secret: ct, Step: int64(step)}); err != nil {
			return fmt.Errorf("enable TOTP for %s: %w", a.Email, err)
		}
		if codes, err = s.newRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "totp_enable", Detail: fmt.Sprintf("%d recovery codes issued", len(codes))})
	})
	if errors.Is(err, ErrBadCode) {
		_ = audit.Record(ctx, s.pool, actor, audit.Entry{Action: "totp_enable_failed", Detail: "wrong code"})
	}
	return codes, err
}

// newRecoveryCodes replaces the admin's recovery codes and returns the new ones.
func (s *Service) newRecoveryCodes(ctx context.Context, tx pgx.Tx, adminID int64) ([]string, error) {
	if err := s.q.RecoveryCodeDeleteByAdmin(ctx, tx, adminID); err != nil {
		return nil, fmt.Errorf("drop recovery codes: %w", err)
	}
	codes := make([]string, 0, RecoveryCodeCount)
	for range RecoveryCodeCount {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		raw := strings.ToLower(b32.EncodeToString(b)) // 16 characters, 80 bits
		code := raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		if err := s.q.RecoveryCodeInsert(ctx, tx, db.RecoveryCodeInsertParams{AdminID: adminID, CodeHash: recoveryHash(code)}); err != nil {
			return nil, fmt.Errorf("store recovery code: %w", err)
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// normalizeCode removes what people type around a code: spaces and dashes; letters lower-cased.
func normalizeCode(code string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code))
}

func recoveryHash(code string) []byte {
	h := sha256.Sum256([]byte(normalizeCode(code)))
	return h[:]
}

// RecoveryCodesLeft counts the admin's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, adminID int64) (int64, error) {
	n, err := s.q.RecoveryCodeCountUnused(ctx, s.pool, adminID)
	if err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// VerifySecondFactor completes a sign-in whose password was right: code is a TOTP code (accepted
// once: a code of a step already used is refused) or an unused recovery code (then used up).
// Failures count towards the same throttle as wrong passwords. On success the pending session is
// replaced by a new one (a new token) and its token returned.
func (s *Service) VerifySecondFactor(ctx context.Context, token, code, ip, userAgent string) (string, *Session, error) {
	if err := s.needKeyring(); err != nil {
		return "", nil, err
	}
	if len(code) > 64 || !printable(code) {
		code = ""
	}
	row, err := s.q.SessionGet(ctx, s.pool, db.SessionGetParams{TokenHash: hashToken(token), IdleSince: s.nowFunc().Add(-s.idle)})
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return "", nil, ErrNoSession
		}
		return "", nil, fmt.Errorf("look up session: %w", err)
	}
	if !row.AdminSession.SecondFactorPending {
		return "", nil, ErrNoSession
	}
	email, adminID := row.AdminEmail, row.AdminSession.AdminID
	act := audit.Actor{AdminID: adminID, Email: email, IP: ip}
	// Throttled like passwords, in buckets of their own: codes per account over every address
	// (only someone who knows the password can fail here, and a right password does not clear
	// it), and the address's bucket shared with password attempts.
	buckets := secondFactorBuckets(adminID, ip)
	full, err := s.reserve(ctx, buckets)
	if err != nil {
		return "", nil, err
	}
	if full != "" {
		if err := s.throttled(ctx, full, email, &adminID, ip); err != nil {
			return "", nil, err
		}
		return "", nil, ErrThrottled
	}

	var newToken string
	var sess *Session
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := s.q.AdminGetForUpdate(ctx, tx, row.AdminSession.AdminID)
		if err != nil {
			return fmt.Errorf("admin %d: %w", row.AdminSession.AdminID, err)
		}
		how, err := s.checkCode(ctx, tx, a, normalizeCode(code))
		if err != nil {
			return err
		}
		if how == "" {
			if err := s.q.LoginAttemptInsert(ctx, tx, db.LoginAttemptInsertParams{Email: email, Ip: ip, Succeeded: false}); err != nil {
				return fmt.Errorf("record sign-in attempt: %w", err)
			}
			if err := audit.Record(ctx, tx, act, audit.Entry{Action: "sign_in_2fa_failed"}); err != nil {
				return err
			}
			return nil
		}
		if err := s.q.LoginAttemptInsert(ctx, tx, db.LoginAttemptInsertParams{Email: email, Ip: ip, Succeeded: true}); err != nil {
			return fmt.Errorf("record sign-in attempt: %w", err)
		}
		if err := s.succeeded(ctx, tx, buckets, a.ID, ip); err != nil {
			return err
		}
		if err := s.q.SessionDelete(ctx, tx, hashToken(token)); err != nil {
			return fmt.Errorf("end pending session: %w", err)
		}
		newToken = RandomToken(sessionTokenSize)
		ns, err := s.q.SessionCreate(ctx, tx, db.SessionCreateParams{
			TokenHash: hashToken(newToken), AdminID: a.ID, CsrfToken: RandomToken(32),
			Ip: ip, UserAgent: truncate(clean(userAgent), 300), ExpiresAt: s.nowFunc().Add(s.maxAge),
		})
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		sess = &Session{AdminID: a.ID, AdminEmail: a.Email, CSRFToken: ns.CsrfToken, ExpiresAt: ns.ExpiresAt,
			Role: Role(a.Role), MustChangePassword: a.MustChangePassword, SecondFactor: true}
		return audit.Record(ctx, tx, act, audit.Entry{Action: "sign_in", Detail: how})
	})
	if err != nil {
		return "", nil, err
	}
	if sess == nil {
		return "", nil, ErrBadCode
	}
	return newToken, sess, nil
}

// checkCode says how code completes a's sign-in ("totp", "recovery code"), or "" when it does not.
func (s *Service) checkCode(ctx context.Context, tx pgx.Tx, a db.Admin, code string) (string, error) {
	if a.TotpSecret == nil || code == "" {
		return "", nil
	}
	if len(code) == TOTPDigits {
		pt, err := s.keyring.Decrypt(a.TotpSecret, totpAD("totp_secret", a.ID))
		if err != nil {
			return "", fmt.Errorf("decrypt TOTP secret of admin %d: %w", a.ID, err)
		}
		key, err := decodeTOTPSecret(string(pt))
		if err != nil {
			return "", err
		}
		step, ok := matchTOTP(key, code, s.nowFunc())
		if !ok {
			return "", nil
		}
		// Only a step later than every step used before: a code seen once is worthless.
		n, err := s.q.AdminUseTOTPStep(ctx, tx, db.AdminUseTOTPStepParams{ID: a.ID, Step: int64(step)})
		if err != nil {
			return "", fmt.Errorf("use TOTP step: %w", err)
		}
		if n == 0 {
			return "", nil
		}
		return "totp", nil
	}
	n, err := s.q.RecoveryCodeUse(ctx, tx, db.RecoveryCodeUseParams{AdminID: a.ID, CodeHash: recoveryHash(code)})
	if err != nil {
		return "", fmt.Errorf("use recovery code: %w", err)
	}
	if n == 0 {
		return "", nil
	}
	return "recovery code", nil
}

// secondFactorBuckets are the throttle buckets a second-factor code counts in.
func secondFactorBuckets(adminID int64, ip string) []bucket {
	bs := []bucket{
		{"2fa:admin:" + strconv.FormatInt(adminID, 10), MaxFailsAccount},
		{"addr:" + truncate(clean(ip), 64), MaxFailsAddress},
	}
	slices.SortFunc(bs, func(a, b bucket) int { return strings.Compare(a.key, b.key) })
	return bs
}

// ResetSecondFactor turns an admin's second factor off (secret and recovery codes deleted) and
// ends their sessions, for an admin who lost their device. Audited.
func (s *Service) ResetSecondFactor(ctx context.Context, actor audit.Actor, adminID int64) error {
	return s.changeAdmin(ctx, adminID, func(tx pgx.Tx, a db.Admin, _ []int64) error {
		if err := s.q.AdminResetTOTP(ctx, tx, a.ID); err != nil {
			return fmt.Errorf("reset second factor of %s: %w", a.Email, err)
		}
		if err := s.q.RecoveryCodeDeleteByAdmin(ctx, tx, a.ID); err != nil {
			return fmt.Errorf("drop recovery codes of %s: %w", a.Email, err)
		}
		if err := s.q.SessionDeleteByAdmin(ctx, tx, a.ID); err != nil {
			return fmt.Errorf("end sessions of %s: %w", a.Email, err)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "admin_reset_2fa", Detail: a.Email})
	})
}
