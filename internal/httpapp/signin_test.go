package httpapp_test

import (
	"net/http"
	"net/url"
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
