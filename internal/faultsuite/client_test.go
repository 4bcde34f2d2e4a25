package faultsuite

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// admin is a signed-in admin's browser: cookies kept, redirects not followed, the session's CSRF
// token at hand.
type admin struct {
	base string
	http *http.Client
	csrf string
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func newBrowser(base string) *admin {
	jar, _ := cookiejar.New(nil)
	return &admin{base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs in through the sign-in form, as a person would.
func signIn(t testing.TB, base string) *admin {
	t.Helper()
	a := newBrowser(base)
	_, _, tok := a.get(t, "/signin")
	require.NotEmpty(t, tok, "sign-in form has a CSRF token")
	resp, body := a.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {adminPassword}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign in: %s", body)
	_, _, a.csrf = a.get(t, "/")
	require.NotEmpty(t, a.csrf, "signed-in pages carry the session's CSRF token")
	return a
}

// get fetches a page: status, body and the CSRF token in it.
func (a *admin) get(t testing.TB, path string) (int, string, string) {
	t.Helper()
	resp, err := a.http.Get(a.base + path)
	require.NoError(t, err, "GET %s", path)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	tok := ""
	if m := csrfRe.FindSubmatch(body); m != nil {
		tok = string(m[1])
	}
	return resp.StatusCode, string(body), tok
}

// post submits a form.
func (a *admin) post(t testing.TB, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return a.do(t, http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), -1)
}

// do sends any request; length < 0 leaves Content-Length to the client.
func (a *admin) do(t testing.TB, method, path, contentType string, body io.Reader, length int64) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	resp, err := a.http.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// customerForm is a valid customer form for customer n.
func (a *admin) customerForm(n int) url.Values {
	return url.Values{
		"_csrf": {a.csrf}, "email": {fmt.Sprintf("customer%d@example.com", n)}, "name": {fmt.Sprintf("Customer %d", n)},
		"plan": {"personal"}, "billing_status": {"active"},
		"claude_access_token": {"sk-ant-oat01-faultsuite-access"}, "claude_refresh_token": {"sk-ant-ort01-faultsuite-refresh"},
		"claude_token_expires_at": {"2030-01-02T03:04"},
		"telegram_bot_token":      {"123456789:AAEhBP0av28faultsuiteBOTtokenVALUE1"}, "owner_telegram_user_id": {"424242"},
	}
}

var subscriptionPath = regexp.MustCompile(`^/subscriptions/(\d+)$`)

// createCustomer submits the customer form and returns the new subscription's ID.
func (a *admin) createCustomer(t testing.TB, n int) int64 {
	t.Helper()
	resp, body := a.post(t, "/customers", a.customerForm(n))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "create customer %d: %s", n, body)
	m := subscriptionPath.FindStringSubmatch(resp.Header.Get("Location"))
	require.NotNil(t, m, "redirected to the subscription, not %q", resp.Header.Get("Location"))
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

// press presses a subscription's button (provision, retry, ...) and expects the redirect back.
func (a *admin) press(t testing.TB, id int64, action string) {
	t.Helper()
	resp, body := a.post(t, fmt.Sprintf("/subscriptions/%d/%s", id, action), url.Values{"_csrf": {a.csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s subscription %d: %s", action, id, body)
	require.Equal(t, fmt.Sprintf("/subscriptions/%d", id), resp.Header.Get("Location"))
}
