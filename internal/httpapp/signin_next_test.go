package httpapp

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A post-sign-in redirect stays on this site, whatever a link's next= holds: every input a
// browser could read as another host (tabs and newlines it drops, backslashes it reads as
// slashes, scheme-relative and absolute URLs) falls back to "/".
func TestSafeNextKeepsRedirectsOnThisSite(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"", "evil.example", "https://evil.example/", "http:evil.example", "javascript:alert(1)",
		"//evil.example", "///evil.example", "////evil.example", "/\\evil.example", "\\\\evil.example",
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "\t//evil.example", " //evil.example",
		"/ /evil.example", "/\x00/evil.example", "/\x7f/evil.example", "/\x0b/evil.example",
		"/\\/evil.example", "/./\\evil.example", "/%2F%2Fevil.example", "/%2f/evil.example",
		"/%5C%5Cevil.example", "/%09/evil.example", "/\u3000/evil.example", "/\u2028/evil.example",
		"/\uff0f\uff0fevil.example", "https:/evil.example", "/@evil.example#frag", "/a#//evil.example",
		"/" + strings.Repeat("a", 600), "/a\r\nSet-Cookie: x=y", "%2F%2Fevil.example",
	} {
		require.Equal(t, "/", safeNext(bad), "next=%q", bad)
	}
	for in, want := range map[string]string{
		"/":                          "/",
		"/subscriptions":             "/subscriptions",
		"/subscriptions?page=2&q=ab": "/subscriptions?page=2&q=ab",
		"/subscriptions/12":          "/subscriptions/12",
		"/subscriptions?q=a%20b":     "/subscriptions?q=a%20b",
		"/audit?x=//evil.example":    "/audit?x=//evil.example",
	} {
		got := safeNext(in)
		require.Equal(t, want, got, "next=%q", in)
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.Empty(t, u.Host)
		require.Empty(t, u.Scheme)
	}
}
