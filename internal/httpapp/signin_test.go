package httpapp_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reported open redirect: next=/\t/evil.example (read by browsers as //evil.example) goes
// home after sign-in, while a same-site path is kept.
func TestSignInRedirectStaysOnSite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for next, want := range map[string]string{"/\t/evil.example": "/", "/subscriptions?page=2": "/subscriptions?page=2"} {
		b.client.Jar.SetCookies(mustURL(t, b.server.URL), []*http.Cookie{{Name: "rachel_session", Value: "", MaxAge: -1}})
		_, _, tok := b.get(t, "/signin?next="+url.QueryEscape(next))
		resp, _ := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {adminPassword}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, want, resp.Header.Get("Location"), "next=%q", next)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// A password typed into the email field is not shown back on the page, nor stored.
func TestSignInDoesNotEchoTheEmailField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, tok := b.get(t, "/signin")
	resp, body := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {"Hunter2-Secret-Typed-Here"}, "password": {"x"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "The email or password is wrong.")
	require.NotContains(t, strings.ToLower(body), "hunter2-secret-typed-here")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM audit_log WHERE admin_email ILIKE '%hunter2%')
		     + (SELECT count(*) FROM login_attempts WHERE email ILIKE '%hunter2%')`).Scan(&n))
	require.Zero(t, n)
}
