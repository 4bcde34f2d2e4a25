package httpapp_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	qrcode "github.com/skip2/go-qrcode"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/browsertest"
)

// browserSignOut presses Sign out in the header.
func browserSignOut(tab *browsertest.Tab) {
	tab.ClickAndLoad(browserStep, "sign out", `form.signout button[type=submit]`, `document.querySelector('#email') !== null`)
}

// browserPassword signs in with a password on the sign-in page and waits for what follows.
func browserPassword(tab *browsertest.Tab, base, email, password, then string) {
	tab.Do(browserStep, "open the sign-in page",
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
	)
	tab.ClickAndLoad(browserStep, "sign in", `form[action="/signin"] button[type=submit]`, then)
}

// browserCode types a second-factor code and submits it.
func browserCode(tab *browsertest.Tab, code, then string) {
	tab.Do(browserStep, "type the code", chromedp.SendKeys(chromedp.CSS("#code"), code))
	tab.ClickAndLoad(browserStep, "submit the code", `form[action="/signin/2fa"] button[type=submit]`, then)
}

const (
	navShown  = `document.querySelector('nav[aria-label="Main"]') !== null`
	codeAsked = `document.querySelector('form[action="/signin/2fa"]') !== null`
)

// TestBrowserSecondFactor: enrol from the QR code (the image the page shows encodes the secret it
// also shows as text), sign in with a code, and with a recovery code — once.
func TestBrowserSecondFactor(t *testing.T) {
	t.Parallel()
	tab := browsertest.NewTab(t)
	b := setup(t)
	base := b.server.URL
	browserSignIn(tab, base)

	tab.Do(browserStep, "open the second-factor page",
		chromedp.Navigate(base+"/account/2fa"),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")),
	)
	tab.WaitJS(browserStep, "the QR image loads under the CSP", `document.querySelector('#totp-qr').complete && document.querySelector('#totp-qr').naturalWidth === 256`)
	secret := strings.TrimSpace(tab.Text("#totp-secret"))
	ctx, cancel := timeoutCtx(tab)
	defer cancel()
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/account/2fa/qr.png').then(r => r.arrayBuffer()).then(b => btoa(String.fromCharCode(...new Uint8Array(b))))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	want, err := qrcode.Encode(auth.TOTPURI(auth.TOTPIssuer, adminEmail, secret), qrcode.Medium, 256)
	require.NoError(t, err)
	require.Equal(t, base64.StdEncoding.EncodeToString(want), shown, "the QR code holds the otpauth URI of the secret shown")

	code, err := auth.TOTPCode(secret, time.Now())
	require.NoError(t, err)
	tab.Do(browserStep, "type the first code", chromedp.SendKeys(chromedp.CSS("#code"), code))
	tab.ClickAndLoad(browserStep, "turn the second factor on", `form[action="/account/2fa"] button[type=submit]`,
		`document.querySelector('#recovery-codes') !== null`)
	codes := strings.Fields(tab.Text("#recovery-codes"))
	require.Len(t, codes, auth.RecoveryCodeCount)

	// Password, then a code (of the next step: the enrolment used this one).
	browserSignOut(tab)
	browserPassword(tab, base, adminEmail, adminPassword, codeAsked)
	require.False(t, browsertest.Eval[bool](tab, navShown), "no navigation before the code")
	next, err := auth.TOTPCode(secret, time.Now().Add(auth.TOTPPeriod*time.Second))
	require.NoError(t, err)
	browserCode(tab, next, navShown)

	// A recovery code works once.
	browserSignOut(tab)
	browserPassword(tab, base, adminEmail, adminPassword, codeAsked)
	browserCode(tab, codes[0], navShown)
	browserSignOut(tab)
	browserPassword(tab, base, adminEmail, adminPassword, codeAsked)
	browserCode(tab, codes[0], `document.querySelector('#code-error') !== null`)
	require.Contains(t, tab.Text("#code-error"), "The code is wrong or was already used.")
	require.False(t, browsertest.Eval[bool](tab, navShown))
	tab.Screenshot(t.Name())
}

// TestBrowserViewer: a viewer sees no action buttons, and a POST forged from their page (with a
// valid CSRF token) is refused 403 and changes nothing.
func TestBrowserViewer(t *testing.T) {
	t.Parallel()
	tab := browsertest.NewTab(t)
	b := setup(t)
	id := b.createCustomer(t, b.signIn(t), customerForm("viewer-browser@example.com"))
	viewer, _ := b.as(t, auth.RoleViewer)
	email := viewer.lastAdmin(t)

	base := b.server.URL
	browserPassword(tab, base, email, adminPassword, navShown)
	for _, p := range []string{"/subscriptions/" + itoa(id), "/subscriptions", "/reconcile", "/audit", "/"} {
		tab.Do(browserStep, "open "+p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("main")))
		require.Zero(t, browsertest.Eval[int](tab, `document.querySelectorAll('main form[method="post"], main button[type="submit"]:not(form[method="get"] button)').length`), p)
		require.Zero(t, browsertest.Eval[int](tab, `document.querySelectorAll('a[href="/customers/new"], a[href$="/edit"], a[href="/admins"]').length`), p)
	}
	ctx, cancel := timeoutCtx(tab)
	defer cancel()
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/subscriptions/`+itoa(id)+`/provision', {method: 'POST', redirect: 'manual',
		body: new URLSearchParams({_csrf: document.querySelector('meta[name="csrf-token"]').content})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status)
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT count(*) FROM subscriptions WHERE provisioning_status IS NOT NULL`).Scan(&n))
	require.Zero(t, n, "nothing was provisioned")
	tab.Screenshot(t.Name())
}

// timeoutCtx bounds one evaluation in the tab (a hang guard, not a wait).
func timeoutCtx(tab *browsertest.Tab) (context.Context, context.CancelFunc) {
	return context.WithTimeout(tab.Context(), browserStep)
}

// lastAdmin is the email of the newest admin.
func (b *testBundle) lastAdmin(t *testing.T) string {
	t.Helper()
	var email string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT email FROM admins ORDER BY id DESC LIMIT 1`).Scan(&email))
	return email
}

// TestBrowserBulkRetry: tick two rows of the list (the checkboxes belong to the bulk form by their
// form attribute), press Retry selected, confirm once, and read each row's outcome.
func TestBrowserBulkRetry(t *testing.T) {
	t.Parallel()
	tab := browsertest.NewTab(t)
	b := setup(t)
	tok := b.signIn(t)
	failed := b.createCustomer(t, tok, customerForm("bulk-browser-failed@example.com"))
	fresh := b.createCustomer(t, tok, customerForm("bulk-browser-fresh@example.com"))
	_, err := b.pool.Exec(context.Background(), `UPDATE subscriptions SET provisioning_status = 'failed', provisioning_error = 'boom', failed_step = 'creating' WHERE id = $1`, failed)
	require.NoError(t, err)

	base := b.server.URL
	browserSignIn(tab, base)
	tab.Do(browserStep, "tick two subscriptions",
		chromedp.Navigate(base+"/subscriptions"),
		chromedp.WaitVisible(chromedp.CSS("#select-"+itoa(failed))),
		chromedp.Click(chromedp.CSS("#select-"+itoa(failed))),
		chromedp.Click(chromedp.CSS("#select-"+itoa(fresh))),
	)
	tab.ClickAndLoad(browserStep, "press Retry selected", `#bulk-form button[value=retry]`, `document.querySelector('#bulk-items') !== null`)
	require.Equal(t, 2, browsertest.Eval[int](tab, `document.querySelectorAll('#bulk-items tbody tr').length`))
	require.Equal(t, "failed", b.state(t, failed), "nothing runs before the confirmation")
	tab.ClickAndLoad(browserStep, "confirm", `form[action="/subscriptions/bulk"] button[type=submit]`,
		`document.querySelector('#bulk-items td.ok-note, #bulk-items td.muted') !== null`)
	require.Contains(t, tab.Text("#bulk-"+itoa(failed)), "Retry started.")
	require.Contains(t, tab.Text("#bulk-"+itoa(fresh)), "Not possible in its current state")
	require.Equal(t, "creating", b.state(t, failed))
	tab.Screenshot(t.Name())
}
