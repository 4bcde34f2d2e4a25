package vps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// artifactServer serves what a VPS downloads: /ok, /missing (404), /moved (302 to /ok),
// /flaky (503 until the third request), /slow (answers only when the test ends).
func artifactServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var flaky atomic.Int32
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "curl/7.88.1" {
			http.Error(w, "not curl", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "payload")
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no such artifact", http.StatusNotFound) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, _ *http.Request) {
		if flaky.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "finally")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv, &flaky
}

// bootFetcher is bootShell with curl's retry pause scaled down (the machine's callback
// interval drives it, as on a time-scaled simulator).
func bootFetcher(t *testing.T) *Machine {
	t.Helper()
	m, err := Start(t.Context(), Config{UserData: shellUserData, IP: net.IPv4(127, 0, 0, 1), CloudInitDelay: time.Hour,
		CallbackRetryInterval: 3 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return m
}

// TestCurlExitCodesAsCurl: curl 7.88's exit codes and messages for what an artifact download
// meets: success, HTTP errors with and without --fail, redirects, retries, refusals, timeouts.
func TestCurlExitCodesAsCurl(t *testing.T) {
	t.Parallel()
	srv, flaky := artifactServer(t)
	m := bootFetcher(t)
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return "http://" + addr + "/x"
	}()
	for _, tc := range []shellCase{
		{line: "curl -fsSL -o /srv/a " + srv.URL + "/ok"},
		// Without --fail an error page is a download like any other.
		{line: "curl -s -o /srv/page " + srv.URL + "/missing"},
		{line: "curl -fsS -o /srv/b " + srv.URL + "/missing", status: 22, stderr: "curl: (22) The requested URL returned error: 404"},
		{line: "curl -fs -o /srv/b " + srv.URL + "/missing", status: 22, stdout: ""},
		// Redirects are followed with -L only.
		{line: "curl -fsS -o /srv/redirect " + srv.URL + "/moved"},
		{line: "curl -fsSL -o /srv/followed " + srv.URL + "/moved"},
		// --retry tries again on 503 (curl's transient errors).
		{line: "curl -fsS --retry 1 -o /srv/c " + srv.URL + "/flaky", status: 22, stderr: "returned error: 503"},
		{line: "curl -fsS --retry 5 -o /srv/c " + srv.URL + "/flaky"},
		// A refused connection is retried only with --retry-connrefused; either way it is 7.
		{line: "curl -fsS --retry 2 -o /srv/d " + refused, status: 7, stderr: "curl: (7) Failed to connect to 127.0.0.1 port"},
		{line: "curl -fsS --retry 2 --retry-connrefused -o /srv/d " + refused, status: 7, stderr: "Couldn't connect to server"},
		{line: "curl -fsS --max-time 0.05 -o /srv/e " + srv.URL + "/slow", status: 28, stderr: "curl: (28) Operation timed out after 50 milliseconds"},
		{line: "curl -fsS --max-time soon -o /srv/e " + srv.URL + "/ok", status: 2, stderr: "expected a proper numerical parameter"},
		{line: "curl -fsS -o /srv/e ftp://example.com/x", status: 3, stderr: "curl: (3) URL rejected"},
		{line: "curl -fsS " + srv.URL + "/ok", status: 2, stderr: "-o FILE"},
		{line: "curl -fsS -o /srv/e", status: 2, stderr: "exactly one URL"},
		{line: "curl --bogus -o /srv/e " + srv.URL + "/ok", status: 2, stderr: "unrecognized option '--bogus'"},
		{user: "bob", line: "curl -fsS -o /etc/evil " + srv.URL + "/ok", status: 23, stderr: "curl: (23) Failure writing output to destination"},
	} {
		tc.check(t, m)
	}
	fileIs(t, m, "/srv/a", "payload", 0o644, "root", "root")
	fileIs(t, m, "/srv/page", "no such artifact\n", 0o644, "root", "root")
	redirect, ok := m.File("/srv/redirect")
	require.True(t, ok)
	require.Contains(t, string(redirect.Content), `href="/ok"`, "without -L, the 302's own body")
	fileIs(t, m, "/srv/followed", "payload", 0o644, "root", "root")
	fileIs(t, m, "/srv/c", "finally", 0o644, "root", "root")
	require.EqualValues(t, 3, flaky.Load(), "two 503s, then the file")
	noFile(t, m, "/srv/b")
	noFile(t, m, "/srv/d")
	noFile(t, m, "/etc/evil")
}

// TestSha256sumAsGNU: digests, and --check with GNU's lines, warnings (singular and plural),
// --quiet, --status and --strict.
func TestSha256sumAsGNU(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	shellCase{line: "install -m 0644 /dev/stdin /srv/a", stdin: "a"}.check(t, m)
	shellCase{line: "install -m 0644 /dev/stdin /srv/b", stdin: "b"}.check(t, m)
	shellCase{line: "sha256sum /srv/a /srv/b", stdout: sum("a") + "  /srv/a\n" + sum("b") + "  /srv/b\n"}.check(t, m)
	shellCase{line: "sha256sum /srv/a /srv/none", status: 1, stdout: sum("a") + "  /srv/a\n", stderr: "sha256sum: cannot stat '/srv/none': No such file or directory"}.check(t, m)
	shellCase{line: "sha256sum -", stdin: "b", stdout: sum("b") + "  -\n"}.check(t, m)

	list := func(path string, lines ...string) {
		shellCase{line: "install -m 0644 /dev/stdin " + path, stdin: strings.Join(lines, "\n") + "\n"}.check(t, m)
	}
	list("/srv/good.sum", sum("a")+"  /srv/a", sum("b")+" */srv/b")
	list("/srv/bad.sum", sum("x")+"  /srv/a", sum("y")+"  /srv/b", sum("a")+"  /srv/gone1", sum("a")+"  /srv/gone2", "junk", "more junk")
	list("/srv/one.sum", sum("x")+"  /srv/a", "junk")
	list("/srv/junk.sum", "junk")
	list("/srv/mixed.sum", sum("a")+"  /srv/a", "junk")
	for _, tc := range []shellCase{
		{line: "sha256sum -c /srv/good.sum", stdout: "/srv/a: OK\n/srv/b: OK\n"},
		{line: "sha256sum --check --quiet /srv/good.sum", stdout: ""},
		{line: "sha256sum -c /srv/bad.sum", status: 1,
			stdout: "/srv/a: FAILED\n/srv/b: FAILED\n/srv/gone1: FAILED open or read\n/srv/gone2: FAILED open or read\n",
			stderr: "sha256sum: WARNING: 2 lines are improperly formatted\nsha256sum: WARNING: 2 listed files could not be read\nsha256sum: WARNING: 2 computed checksums did NOT match\n"},
		{line: "sha256sum -c /srv/one.sum", status: 1, stdout: "/srv/a: FAILED\n",
			stderr: "sha256sum: WARNING: 1 line is improperly formatted\nsha256sum: WARNING: 1 computed checksum did NOT match\n"},
		// --status prints nothing but the files it cannot read.
		{line: "sha256sum -c --status /srv/bad.sum", status: 1, stdout: "", stderr: "sha256sum: /srv/gone1: No such file or directory"},
		{line: "sha256sum -c /srv/junk.sum", status: 1, stderr: "sha256sum: /srv/junk.sum: no properly formatted checksum lines found"},
		// A malformed line beside good ones is a warning, an error only with --strict.
		{line: "sha256sum -c /srv/mixed.sum", stdout: "/srv/a: OK\n", stderr: "WARNING: 1 line is improperly formatted"},
		{line: "sha256sum -c --strict /srv/mixed.sum", status: 1, stderr: "WARNING: 1 line is improperly formatted"},
		{line: "sha256sum -c /srv/none.sum", status: 1, stderr: "No such file or directory"},
		{line: "sha256sum -c /srv/good.sum /srv/bad.sum", status: 1, stderr: "one list"},
		{line: "sha256sum --tag /srv/a", status: 1, stderr: "unrecognized option '--tag'"},
	} {
		tc.check(t, m)
	}
	_, errOut, _ := m.RunAs("root", "sha256sum -c --status /srv/bad.sum", nil)
	require.NotContains(t, errOut, "WARNING")
}

func TestPhoneHomeHelpers(t *testing.T) {
	t.Parallel()
	for local, want := range map[string][2]string{
		"rachel-sub-1":         {"rachel-sub-1", "rachel-sub-1"},
		"web.example.com":      {"web", "web.example.com"},
		"":                     {"", ""},
		"trailing.dot.example": {"trailing", "trailing.dot.example"},
	} {
		short, fqdn := cloudHostnames(local)
		require.Equal(t, want, [2]string{short, fqdn}, local)
	}
	require.Equal(t, "https://admin.example.com/…", redactURL("https://admin.example.com/callback/s3cret-token?server=1"))
	require.Equal(t, "(unparsable url)", redactURL("http://[::1"))
}

// TestSSHDReadsItsDropIns: the port and AllowUsers come from sshd_config.d in lexical order,
// then sshd_config, as Debian's sshd reads them.
func TestSSHDReadsItsDropIns(t *testing.T) {
	t.Parallel()
	// Fixed ports, so an address of its own: 127.91.x.y, picked at random.
	ip := net.IPv4(127, 91, byte(rand.IntN(250)+1), byte(rand.IntN(250)+1))
	m, err := Start(t.Context(), Config{IP: ip, CloudInitDelay: time.Hour, UserData: shellUserData + `  - path: /etc/ssh/sshd_config.d/20-b.conf
    content: "Port 2200\nAllowUsers alice bob\n"
  - path: /etc/ssh/sshd_config.d/10-a.conf
    content: "# comment\nPort 2100\nPort notaport\nPort 70000\n"
  - path: /etc/ssh/sshd_config.d/30-ignored.txt
    content: "Port 2300\n"
  - path: /etc/ssh/sshd_config
    content: "Port 2400\n"
`})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	m.mu.Lock()
	ports := m.sshdPorts()
	allowed := m.sshdAllowUsers()
	m.mu.Unlock()
	require.Equal(t, []int{2100, 2200, 2400}, ports)
	require.ElementsMatch(t, []string{"alice", "bob"}, allowed)
	host, port, err := net.SplitHostPort(m.SSHAddr())
	require.NoError(t, err)
	require.Equal(t, "2100", port, "sshd listens on the first Port it reads")
	require.Equal(t, ip.String(), host)
	require.Contains(t, strings.Join(m.State().Warnings, "\n"), "Port is given 3 times")
}
