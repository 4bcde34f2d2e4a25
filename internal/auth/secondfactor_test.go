package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/secrets"
)

// TestSecondFactorLifecycle: enrol with an authenticator code, sign in with a TOTP code (each
// code once) or a recovery code (each once), and an owner's reset; every step audited.
func TestSecondFactorLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	krs, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	kr, err := secrets.ParseKeyring(krs)
	require.NoError(t, err)

	// Without a keyring the second factor cannot be stored.
	bare := auth.NewService(pool, time.Hour, 12*time.Hour)
	a, err := bare.CreateAdmin(ctx, "ops@example.com", "a long enough password")
	require.NoError(t, err)
	_, err = bare.BeginEnrolment(ctx, a.ID)
	require.ErrorContains(t, err, "RACHEL_KEYRING")

	s := auth.NewService(pool, time.Hour, 12*time.Hour, auth.WithKeyring(kr))
	actor := audit.Actor{AdminID: a.ID, Email: a.Email, IP: "192.0.2.1"}
	_, err = s.ConfirmEnrolment(ctx, actor, "123456")
	require.ErrorIs(t, err, auth.ErrNoEnrolment)

	en, err := s.BeginEnrolment(ctx, a.ID)
	require.NoError(t, err)
	again, err := s.BeginEnrolment(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, en.Secret.Reveal(), again.Secret.Reveal(), "a reload shows the same QR code")
	require.True(t, strings.HasPrefix(en.URI.Reveal(), "otpauth://totp/"), en.URI.Reveal())
	require.Contains(t, en.URI.Reveal(), "secret="+en.Secret.Reveal())
	var stored []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT totp_pending_secret FROM admins WHERE id = $1`, a.ID).Scan(&stored))
	require.NotContains(t, string(stored), en.Secret.Reveal(), "stored encrypted")

	now := time.Now()
	code, err := auth.TOTPCode(en.Secret.Reveal(), now)
	require.NoError(t, err)
	// A wrong code: none of the steps the skew accepts.
	valid := map[string]bool{}
	for _, d := range []time.Duration{-2, -1, 0, 1, 2} {
		c, err := auth.TOTPCode(en.Secret.Reveal(), now.Add(d*auth.TOTPPeriod*time.Second))
		require.NoError(t, err)
		valid[c] = true
	}
	wrong := "000000"
	for n := 1; valid[wrong]; n++ {
		wrong = fmt.Sprintf("%06d", n)
	}
	_, err = s.ConfirmEnrolment(ctx, actor, wrong)
	require.ErrorIs(t, err, auth.ErrBadCode)
	codes, err := s.ConfirmEnrolment(ctx, actor, code[:3]+" "+code[3:])
	require.NoError(t, err, "spaces typed in the code are ignored")
	require.Len(t, codes, auth.RecoveryCodeCount)
	for _, c := range codes {
		require.Regexp(t, `^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`, c)
	}
	_, err = s.BeginEnrolment(ctx, a.ID)
	require.ErrorIs(t, err, auth.ErrSecondFactorOn)
	_, err = s.ConfirmEnrolment(ctx, actor, code)
	require.ErrorIs(t, err, auth.ErrSecondFactorOn)

	// The password alone opens a pending session that reaches nothing but the code form.
	signIn := func() string {
		t.Helper()
		tok, sess, err := s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
		require.NoError(t, err)
		require.True(t, sess.SecondFactorPending)
		return tok
	}
	pending := signIn()
	_, _, err = s.VerifySecondFactor(ctx, pending, code, "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCode, "the code used for the enrolment is spent")
	next, err := auth.TOTPCode(en.Secret.Reveal(), now.Add(auth.TOTPPeriod*time.Second))
	require.NoError(t, err)
	full, sess, err := s.VerifySecondFactor(ctx, pending, next, "192.0.2.1", "ua")
	require.NoError(t, err)
	require.NotEqual(t, pending, full, "a new token replaces the pending one")
	require.True(t, sess.SecondFactor)
	require.False(t, sess.SecondFactorPending)
	_, err = s.Lookup(ctx, pending)
	require.ErrorIs(t, err, auth.ErrNoSession)
	_, _, err = s.VerifySecondFactor(ctx, full, next, "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrNoSession, "a full session needs no code")

	// A recovery code works once, however it is typed.
	left, err := s.RecoveryCodesLeft(ctx, a.ID)
	require.NoError(t, err)
	require.EqualValues(t, auth.RecoveryCodeCount, left)
	_, _, err = s.VerifySecondFactor(ctx, signIn(), strings.ToUpper(strings.ReplaceAll(codes[0], "-", " ")), "192.0.2.1", "ua")
	require.NoError(t, err)
	_, _, err = s.VerifySecondFactor(ctx, signIn(), codes[0], "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCode)
	left, err = s.RecoveryCodesLeft(ctx, a.ID)
	require.NoError(t, err)
	require.EqualValues(t, auth.RecoveryCodeCount-1, left)
	_, _, err = s.VerifySecondFactor(ctx, "no-such-token", codes[1], "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrNoSession)

	// An owner resets a lost device: secret and codes gone, sessions ended, the password alone
	// signs in again.
	require.NoError(t, s.ResetSecondFactor(ctx, audit.Actor{Email: "owner@example.com"}, a.ID))
	_, err = s.Lookup(ctx, full)
	require.ErrorIs(t, err, auth.ErrNoSession)
	left, err = s.RecoveryCodesLeft(ctx, a.ID)
	require.NoError(t, err)
	require.Zero(t, left)
	_, sess, err = s.SignIn(ctx, "ops@example.com", "a long enough password", "192.0.2.1", "ua")
	require.NoError(t, err)
	require.False(t, sess.SecondFactorPending)
	require.False(t, sess.SecondFactor)

	counts := map[string]int{}
	rows, err := pool.Query(ctx, `SELECT action, count(*) FROM audit_log GROUP BY action`)
	require.NoError(t, err)
	for rows.Next() {
		var action string
		var n int
		require.NoError(t, rows.Scan(&action, &n))
		counts[action] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 1, counts["totp_enable"])
	require.Equal(t, 1, counts["totp_enable_failed"])
	require.Equal(t, 2, counts["sign_in_2fa_failed"])
	require.Equal(t, 1, counts["admin_reset_2fa"])
}

func TestRolesAndPasswordRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, least auth.Role
		want        bool
	}{
		{auth.RoleOwner, auth.RoleOperator, true},
		{auth.RoleOwner, auth.RoleOwner, true},
		{auth.RoleOperator, auth.RoleViewer, true},
		{auth.RoleOperator, auth.RoleOwner, false},
		{auth.RoleViewer, auth.RoleOperator, false},
		{"king", auth.RoleViewer, false},
		{"", auth.RoleViewer, false},
	} {
		require.Equal(t, tc.want, tc.role.AtLeast(tc.least), "%s at least %s", tc.role, tc.least)
	}
	for _, r := range auth.Roles {
		got, err := auth.ParseRole(string(r))
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	_, err := auth.ParseRole("Owner")
	require.ErrorContains(t, err, "use viewer, operator or owner")

	require.ErrorContains(t, auth.ValidatePassword(strings.Repeat("x", auth.MinPasswordLength-1)), "at least")
	require.NoError(t, auth.ValidatePassword(strings.Repeat("x", auth.MinPasswordLength)))
	require.ErrorContains(t, auth.ValidatePassword(strings.Repeat("x", 1025)), "at most 1024")
	require.Equal(t, "ops@example.com", auth.NormalizeEmail("  OPS@Example.COM "))
	require.NotEqual(t, auth.GeneratePassword(), auth.GeneratePassword())
	require.NoError(t, auth.ValidatePassword(auth.GeneratePassword()), "generated passwords pass the rules")
}

// TestInviteAndChangePassword: an invited admin must replace the one-time password; changing a
// password needs the current one and ends the other sessions, not the one making the change.
func TestInviteAndChangePassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	s := auth.NewService(pool, time.Hour, 12*time.Hour)
	owner := audit.Actor{Email: "owner@example.com", IP: "192.0.2.9"}

	_, _, err := s.Invite(ctx, owner, "new@example.com", "admin")
	require.ErrorContains(t, err, `unknown role "admin"`)
	view, once, err := s.Invite(ctx, owner, " New@Example.com ", auth.RoleOperator)
	require.NoError(t, err)
	require.Equal(t, "new@example.com", view.Email)
	require.Equal(t, auth.RoleOperator, view.Role)
	require.True(t, view.MustChangePassword)
	require.NoError(t, auth.ValidatePassword(once))
	_, _, err = s.Invite(ctx, owner, "new@example.com", auth.RoleViewer)
	require.ErrorIs(t, err, auth.ErrAdminExists)

	first, sess, err := s.SignIn(ctx, "new@example.com", once, "192.0.2.1", "ua")
	require.NoError(t, err)
	require.True(t, sess.MustChangePassword)
	other, _, err := s.SignIn(ctx, "new@example.com", once, "192.0.2.2", "ua")
	require.NoError(t, err)

	me := audit.Actor{AdminID: view.ID, Email: view.Email, IP: "192.0.2.1"}
	require.ErrorIs(t, s.ChangePassword(ctx, me, first, "wrong", "a new long password"), auth.ErrWrongPassword)
	require.ErrorContains(t, s.ChangePassword(ctx, me, first, once, "short"), "at least")
	require.NoError(t, s.ChangePassword(ctx, me, first, once, "a new long password"))
	kept, err := s.Lookup(ctx, first)
	require.NoError(t, err)
	require.False(t, kept.MustChangePassword)
	_, err = s.Lookup(ctx, other)
	require.ErrorIs(t, err, auth.ErrNoSession, "other sessions end")
	_, _, err = s.SignIn(ctx, "new@example.com", once, "192.0.2.1", "ua")
	require.ErrorIs(t, err, auth.ErrBadCredentials, "the one-time password is spent")

	admins, err := s.ListAdmins(ctx)
	require.NoError(t, err)
	require.Len(t, admins, 1)
	require.Equal(t, view.ID, admins[0].ID)
	require.False(t, admins[0].MustChangePassword)

	// Disabling ends the sessions; enabling again does not bring them back.
	require.NoError(t, s.SetDisabled(ctx, owner, view.ID, true))
	_, err = s.Lookup(ctx, first)
	require.ErrorIs(t, err, auth.ErrNoSession)
	_, _, err = s.SignIn(ctx, "new@example.com", "a new long password", "192.0.2.1", "ua")
	require.Error(t, err, "a disabled admin cannot sign in")
	require.NoError(t, s.SetDisabled(ctx, owner, view.ID, true), "disabling twice changes nothing")
	require.NoError(t, s.SetDisabled(ctx, owner, view.ID, false))
	_, _, err = s.SignIn(ctx, "new@example.com", "a new long password", "192.0.2.1", "ua")
	require.NoError(t, err)
	require.Error(t, s.SetRole(ctx, owner, view.ID+1000, auth.RoleViewer), "no such admin")

	var actions []string
	rows, err := pool.Query(ctx, `SELECT action FROM audit_log WHERE action LIKE 'admin_%' OR action LIKE 'password_%' ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actions = append(actions, a)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"admin_invite", "password_change_failed", "password_change", "admin_disable", "admin_enable"}, actions)
}
