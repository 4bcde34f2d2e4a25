package httpapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/testkit"
)

// /metrics is not on the public web port by default; with METRICS_TOKEN it is, for scrapers that
// send the token (no session needed), and it holds no customer data.
func TestMetricsNeedTheTokenAndHoldNoCustomerData(t *testing.T) {
	t.Parallel()
	closed := setup(t)
	status, text, _ := closed.get(t, "/metrics")
	require.NotEqual(t, http.StatusOK, status, "no METRICS_TOKEN: no /metrics on the web port")
	require.NotContains(t, text, "go_goroutines")

	const token = "scrape-token-0123456789"
	b := setup(t, func(o *setupOpts) { o.env["METRICS_TOKEN"] = token })
	tok := b.signIn(t)
	resp, _ := b.post(t, "/customers", url.Values{"_csrf": {tok}, "email": {"metrics-customer@example.com"}, "name": {"Metric Person"},
		"plan": {"personal"}, "billing_status": {"active"}, "claude_access_token": {"sk-ant-oat01-METRICSSECRET"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	// A session is not enough, nor a wrong token.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		req, err := http.NewRequest(http.MethodGet, b.server.URL+"/metrics", nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r, err := b.client.Do(req)
		require.NoError(t, err)
		r.Body.Close()
		require.Equal(t, http.StatusUnauthorized, r.StatusCode, "Authorization %q", auth)
	}

	req, err := http.NewRequest(http.MethodGet, b.server.URL+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	r, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	defer r.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	require.Equal(t, http.StatusOK, r.StatusCode)
	text = body.String()
	require.Contains(t, text, `rachel_subscriptions{status="none"} 1`)
	require.Contains(t, text, `rachel_http_requests_total{code="303",route="/customers"} 1`)
	for _, leak := range []string{"metrics-customer", "Metric Person", "METRICSSECRET", adminEmail, token} {
		require.NotContains(t, text, leak)
	}
}

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func TestRequestIDOnLogLinesAndInContext(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	b := setup(t, func(o *setupOpts) { o.log = logging.New("json", &logs, slog.LevelInfo) })
	resp, err := b.client.Get(b.server.URL + "/callback-does-not-exist")
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = b.client.Get(b.server.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-ID")
	require.NotEmpty(t, id)
	found := false
	for _, l := range b.waitLines(t, &logs, 2) {
		require.NotEmpty(t, l["request_id"], "every request line has a request ID: %v", l)
		if l["request_id"] == id {
			found = true
			require.Equal(t, "/healthz", l["route"])
		}
	}
	require.True(t, found)

	// The callback's token never reaches the log: routes are logged by pattern.
	resp, err = b.client.PostForm(b.server.URL+"/callback/SECRETTOKENVALUE", url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	for _, l := range b.waitLines(t, &logs, 3) {
		for _, v := range l {
			require.NotContains(t, fmt.Sprint(v), "SECRETTOKENVALUE")
		}
	}
}

// waitLines returns the log lines once there are at least n (the request line is written after
// the response).
func (b *testBundle) waitLines(t *testing.T, logs *lockedBuffer, n int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	testkit.Eventually(t, fmt.Sprintf("%d log lines", n), func() bool { lines = logs.lines(t); return len(lines) >= n })
	return lines
}

func TestCallbackIsRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	statuses := map[int]int{}
	for range 150 {
		resp, err := http.PostForm(b.server.URL+"/callback/"+strings.Repeat("A", 43), url.Values{"instance_id": {"1"}})
		require.NoError(t, err)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	require.Positive(t, statuses[http.StatusNotFound])
	require.Positive(t, statuses[http.StatusTooManyRequests], "%v", statuses)
	require.Equal(t, 150, statuses[http.StatusNotFound]+statuses[http.StatusTooManyRequests])
}

func TestClientAddressOnlyFromTrustedProxy(t *testing.T) {
	t.Parallel()
	for _, trust := range []string{"false", "true"} {
		b := setup(t, func(o *setupOpts) { o.env["TRUST_PROXY"] = trust })
		_, _, tok := b.get(t, "/signin")
		req, err := http.NewRequest(http.MethodPost, b.server.URL+"/signin",
			strings.NewReader(url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {"wrong password!!"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "203.0.113.77")
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		var ip string
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT ip FROM audit_log WHERE action = 'sign_in_failed'`).Scan(&ip))
		if trust == "true" {
			require.Equal(t, "203.0.113.77", ip)
		} else {
			require.Equal(t, "127.0.0.1", ip, "a forged X-Forwarded-For is ignored")
		}
	}
}
