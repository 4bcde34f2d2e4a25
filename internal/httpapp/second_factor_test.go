package httpapp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
)

// enrol turns the signed-in client's second factor on from the enrolment page and returns the
// secret and the recovery codes.
func (b *testBundle) enrol(t *testing.T) (string, []string) {
	t.Helper()
	status, body, tok := b.get(t, "/account/2fa")
	require.Equal(t, http.StatusOK, status)
	d := doc(t, body)
	secret := d.Find("#totp-secret").Text()
	require.Len(t, secret, 32)
	require.Equal(t, "/account/2fa/qr.png", d.Find("#totp-qr").AttrOr("src", ""))

	// A wrong first code turns nothing on.
	resp, body := b.post(t, "/account/2fa", url.Values{"_csrf": {tok}, "code": {"000000"}})
	if !strings.Contains(body, "second-factor-on") { // 000000 might, once in a million, be right
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		require.Contains(t, body, "The code is wrong.")
		require.Contains(t, body, secret, "the same secret is offered again")
	}
	code, err := auth.TOTPCode(secret, time.Now())
	require.NoError(t, err)
	resp, body = b.post(t, "/account/2fa", url.Values{"_csrf": {tok}, "code": {code}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var codes []string
	doc(t, body).Find("#recovery-codes code").Each(func(_ int, s *goquery.Selection) { codes = append(codes, s.Text()) })
	require.Len(t, codes, auth.RecoveryCodeCount)
	return secret, codes
}

// signInPassword posts the password and returns where the app sends the client.
func (b *testBundle) signInPassword(t *testing.T, email, password string) *http.Response {
	t.Helper()
	_, _, tok := b.get(t, "/signin")
	resp, _ := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {email}, "password": {password}, "next": {"/audit"}})
	return resp
}

// postCode submits a second-factor code on the code form.
func (b *testBundle) postCode(t *testing.T, code string) (*http.Response, string) {
	t.Helper()
	status, _, tok := b.get(t, "/signin/2fa")
	require.Equal(t, http.StatusOK, status)
	return b.post(t, "/signin/2fa", url.Values{"_csrf": {tok}, "code": {code}, "next": {"/audit"}})
}

func TestSecondFactorEnrolSignInReplayRecovery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t)

	// The QR code is a PNG served by the app, never cached.
	resp, err := b.client.Get(b.server.URL + "/account/2fa/qr.png")
	require.NoError(t, err)
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")))

	secret, codes := b.enrol(t)
	var stored []byte
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT totp_secret FROM admins WHERE email = $1`, adminEmail).Scan(&stored))
	require.NotContains(t, string(stored), secret, "encrypted at rest")
	_, body, tok := b.get(t, "/account/2fa")
	require.Contains(t, body, "10 recovery codes left")
	require.NotContains(t, body, secret)
	b.post(t, "/signout", url.Values{"_csrf": {tok}})

	// The password alone opens nothing but the code form.
	resp = b.signInPassword(t, adminEmail, adminPassword)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/signin/2fa?next=%2Faudit", resp.Header.Get("Location"))
	for _, p := range []string{"/", "/subscriptions", "/account/2fa"} {
		status, _, _ := b.get(t, p)
		require.Equal(t, http.StatusSeeOther, status, p)
	}
	resp, body = b.postCode(t, "12345x")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "The code is wrong or was already used.")

	// The enrolment used the current step; the app accepts the next one too (clock drift).
	code, err := auth.TOTPCode(secret, time.Now().Add(auth.TOTPPeriod*time.Second))
	require.NoError(t, err)
	resp, _ = b.postCode(t, code)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/audit", resp.Header.Get("Location"))
	status, _, tok := b.get(t, "/audit")
	require.Equal(t, http.StatusOK, status)
	b.post(t, "/signout", url.Values{"_csrf": {tok}})

	// The same code again, within its window: refused.
	b.signInPassword(t, adminEmail, adminPassword)
	resp, _ = b.postCode(t, code)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a replayed code")

	// A recovery code works once (typed in upper case with spaces).
	resp, _ = b.postCode(t, strings.ToUpper(strings.ReplaceAll(codes[3], "-", " ")))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body, tok = b.get(t, "/account/2fa")
	require.Contains(t, body, "9 recovery codes left")
	b.post(t, "/signout", url.Values{"_csrf": {tok}})
	b.signInPassword(t, adminEmail, adminPassword)
	resp, _ = b.postCode(t, codes[3])
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a recovery code used twice")

	// Failures are throttled like wrong passwords (3 so far; 2 more reach the limit).
	for range auth.MaxFailsAccount - 3 {
		resp, _ = b.postCode(t, "999999x")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, body = b.postCode(t, codes[4])
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, body, "Too many failed sign-ins")

	rows, err := b.pool.Query(context.Background(), `SELECT action || ':' || CASE WHEN action = 'sign_in_throttled' THEN '' ELSE detail END FROM audit_log WHERE action IN ('totp_enable', 'sign_in', 'sign_in_2fa_failed', 'sign_in_throttled') ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"sign_in:", "totp_enable:10 recovery codes issued", "sign_in_2fa_failed:", "sign_in:totp",
		"sign_in_2fa_failed:", "sign_in:recovery code", "sign_in_2fa_failed:", "sign_in_2fa_failed:", "sign_in_2fa_failed:",
		"sign_in_throttled:"}, got)
}

// TestRequire2FAAndReset: with REQUIRE_2FA an admin without a second factor is sent to enrolment
// after the password; an owner's reset turns it off and ends the admin's sessions.
func TestRequire2FAAndReset(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["REQUIRE_2FA"] = "true" })
	resp := b.signInPassword(t, adminEmail, adminPassword)
	require.Equal(t, "/audit", resp.Header.Get("Location"))
	status, _, _ := b.get(t, "/audit")
	require.Equal(t, http.StatusSeeOther, status, "sent to enrolment")
	resp, err := b.client.Get(b.server.URL + "/subscriptions")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "/account/2fa", resp.Header.Get("Location"))
	_, body, _ := b.get(t, "/account/2fa")
	require.Contains(t, body, "Every admin needs a second factor.")
	b.enrol(t)
	status, _, tok := b.get(t, "/audit")
	require.Equal(t, http.StatusOK, status)

	// A second owner resets the first's second factor: their session ends, and they are sent to
	// enrolment again after the password.
	require.NotEmpty(t, tok)
	other, _ := b.as(t, auth.RoleOwner)
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM admins WHERE email = $1`, adminEmail).Scan(&id))
	other.enrol(t)
	_, _, otok := other.get(t, "/admins")
	resp2, _ := other.post(t, "/admins/"+itoa(id)+"/reset-2fa", url.Values{"_csrf": {otok}})
	require.Equal(t, http.StatusSeeOther, resp2.StatusCode)
	var on bool
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT totp_secret IS NOT NULL OR EXISTS (SELECT 1 FROM admin_recovery_codes WHERE admin_id = $1) FROM admins WHERE id = $1`, id).Scan(&on))
	require.False(t, on)
	status, _, _ = b.get(t, "/audit")
	require.Equal(t, http.StatusSeeOther, status, "their session ended")
	resp = b.signInPassword(t, adminEmail, adminPassword)
	require.Equal(t, "/audit", resp.Header.Get("Location"), "no code asked")
	_, body, _ = b.get(t, "/account/2fa")
	require.Contains(t, body, "totp-secret", "enrolment again")
}
