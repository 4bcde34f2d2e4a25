package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
)

// hetznerAnswer serves one Hetzner error response and returns the error hcloud-go makes of it,
// so the classification below sees real hcloud.Error values, response included.
func hetznerAnswer(t *testing.T, status int, code, message string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error": {"code": %q, "message": %q, "details": null}}`, code, message)
	}))
	t.Cleanup(srv.Close)
	c := hcloud.NewClient(hcloud.WithToken("t"), hcloud.WithEndpoint(srv.URL),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	req, err := c.NewRequest(context.Background(), "GET", "/servers", nil)
	require.NoError(t, err)
	_, err = c.Do(req, nil)
	require.Error(t, err)
	return err
}

// TestHetznerErrorsRetriedOrFailedWithAdvice: transient answers come back for the step to be
// retried; permanent ones end the step with a reason that says what to change.
func TestHetznerErrorsRetriedOrFailedWithAdvice(t *testing.T) {
	t.Parallel()
	require.NoError(t, hetznerError("create the server", nil))

	transient := []error{
		errors.New("dial tcp: connection refused"),
		&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded},
		hetznerAnswer(t, 423, "locked", "server is locked"),
		hetznerAnswer(t, 429, "rate_limit_exceeded", "slow down"),
		hetznerAnswer(t, 412, "resource_unavailable", "no capacity"),
		hetznerAnswer(t, 409, "conflict", "busy"),
		hetznerAnswer(t, 503, "maintenance", "maintenance"),
		hetznerAnswer(t, 500, "server_error", "oops"),
		// A 5xx with a code nobody knows is still the server's trouble.
		hetznerAnswer(t, 502, "brand_new_code", "gateway"),
		hetznerAnswer(t, 503, "unavailable", "unavailable"),
	}
	for _, err := range transient {
		got := hetznerError("create the server", err)
		var f *stepFailure
		require.False(t, errors.As(got, &f), "%v is transient", err)
		require.ErrorIs(t, got, err, "the cause stays inspectable")
		require.True(t, strings.HasPrefix(got.Error(), "create the server: "), got.Error())
	}

	for _, tc := range []struct {
		err  error
		want []string
	}{
		{hetznerAnswer(t, 401, "unauthorized", "unable to authenticate"), []string{"refused the API token while trying to create the server", "HCLOUD_TOKEN", "Retry"}},
		{hetznerAnswer(t, 403, "forbidden", "insufficient permissions"), []string{"may not create the server", "insufficient permissions", "read & write"}},
		{hetznerAnswer(t, 403, "resource_limit_exceeded", "server limit reached"), []string{ReasonLimitReached, "server limit reached", "raise the limit"}},
		{hetznerAnswer(t, 422, "invalid_input", "invalid input in field 'server_type'"), []string{"rejected the request to create the server as invalid", "server_type", "Check the server type"}},
		{hetznerAnswer(t, 409, "uniqueness_error", "server name is already used"), []string{"Hetzner refused to create the server (uniqueness_error: server name is already used)", "Destroy"}},
		{hetznerAnswer(t, 404, "not_found", "server not found"), []string{"(not_found: server not found)"}},
	} {
		got := hetznerError("create the server", tc.err)
		var f *stepFailure
		require.True(t, errors.As(got, &f), "%v ends the step", tc.err)
		for _, w := range tc.want {
			require.Contains(t, got.Error(), w)
		}
	}
	got := hetznerError("create the server", hetznerAnswer(t, 403, "resource_limit_exceeded", "x"))
	require.True(t, strings.HasPrefix(got.Error(), ReasonLimitReached), "notifications look for the prefix: %s", got)
}

func TestCapacityErrorsByCodeNotText(t *testing.T) {
	t.Parallel()
	require.True(t, isCapacityError(hetznerAnswer(t, 412, "resource_unavailable", "anything")))
	require.True(t, isCapacityError(hetznerAnswer(t, 422, "placement_error", "anything")))
	require.True(t, isCapacityError(fmt.Errorf("create: %w", hcloud.Error{Code: hcloud.ErrorCodePlacementError})), "wrapped")
	require.False(t, isCapacityError(hetznerAnswer(t, 422, "invalid_input", "resource_unavailable placement_error")))
	require.False(t, isCapacityError(errors.New("resource_unavailable")))

	require.Equal(t, "placement_error", errCode(fmt.Errorf("x: %w", hcloud.Error{Code: hcloud.ErrorCodePlacementError})))
	require.Equal(t, "error", errCode(errors.New("plain")))
}

func TestDescribeServerNamesWhatItGot(t *testing.T) {
	t.Parallel()
	require.Equal(t, "cx23 in fsn1 with debian-12", describeServer(&hcloud.Server{ServerType: &hcloud.ServerType{Name: "cx23"},
		Location: &hcloud.Location{Name: "fsn1"}, Image: &hcloud.Image{Name: "debian-12"}}))
	require.Equal(t, "cx23", describeServer(&hcloud.Server{ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{}}),
		"an image without a name (a snapshot) is left out")
	require.Empty(t, describeServer(&hcloud.Server{}))
}

func TestRateLimitTrackerReadsHetznersHeaders(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	var noHeaders atomic.Bool
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !noHeaders.Load() {
			w.Header().Set("RateLimit-Limit", "3600")
			w.Header().Set("RateLimit-Remaining", "17")
			w.Header().Set("RateLimit-Reset", "1764590400")
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	var tr RateLimitTracker
	_, ok := tr.Latest()
	require.False(t, ok, "nothing seen yet")
	c := &http.Client{Transport: tr.Transport(nil)}
	get := func() {
		resp, err := c.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
	}

	get()
	st, ok := tr.Latest()
	require.True(t, ok)
	require.Equal(t, 3600, st.Limit)
	require.Equal(t, 17, st.Remaining)
	require.Equal(t, time.Unix(1764590400, 0), st.Reset)
	require.False(t, st.Limited)
	require.False(t, st.Seen.IsZero())

	status.Store(http.StatusTooManyRequests)
	get()
	st, _ = tr.Latest()
	require.True(t, st.Limited, "a 429 is remembered")

	// A response without the headers (a proxy's error page) keeps the last state.
	status.Store(http.StatusBadGateway)
	noHeaders.Store(true)
	get()
	st, _ = tr.Latest()
	require.Equal(t, 17, st.Remaining)
	require.True(t, st.Limited)

	// Transport errors are passed through untouched.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err := c.Get(dead.URL)
	require.Error(t, err)
}

func TestNewHCloudClientNeedsTheToken(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	_, err = NewHCloudClient(cfg, nil, nil)
	require.ErrorContains(t, err, "HCLOUD_TOKEN")

	// With a token and an endpoint, requests go there and feed the tracker.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || !strings.Contains(r.Header.Get("User-Agent"), "rachel-cloud-admin/1") {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error": {"code": "unauthorized", "message": "token or application not sent", "details": null}}`)
			return
		}
		w.Header().Set("RateLimit-Limit", "10")
		w.Header().Set("RateLimit-Remaining", "9")
		w.Header().Set("RateLimit-Reset", "0")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"server": {"id": 1, "name": "x", "status": "running", "created": "2025-01-01T00:00:00Z"}}`)
	}))
	defer srv.Close()
	cfg, err = config.Load(func(k string) string {
		return map[string]string{"HCLOUD_TOKEN": "tok", "HCLOUD_ENDPOINT": srv.URL}[k]
	})
	require.NoError(t, err)
	var tr RateLimitTracker
	hc, err := NewHCloudClient(cfg, &tr, nil)
	require.NoError(t, err)
	s, _, err := hc.Server.GetByID(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, "x", s.Name)
	st, ok := tr.Latest()
	require.True(t, ok)
	require.Equal(t, 9, st.Remaining)
}

// TestParseUnitStateAsSystemctlPrintsIt reads `systemctl show` output (property-table order,
// not the order asked for) and words systemd's states as `systemctl status` would.
func TestParseUnitStateAsSystemctlPrintsIt(t *testing.T) {
	t.Parallel()
	st, err := parseUnitState([]byte("Result=exit-code\nNRestarts=4\nExecMainStatus=203\nActiveState=activating\nSubState=auto-restart\nActiveEnterTimestampMonotonic=123\n"))
	require.NoError(t, err)
	require.Equal(t, unitState{Active: "activating", Sub: "auto-restart", Result: "exit-code", ExecMainStatus: 203, NRestarts: 4, EnteredMonotonic: "123"}, st)
	require.True(t, st.failing())
	require.False(t, st.running())
	require.Equal(t, "rachel-assistant.service is activating (auto-restart), result exit-code, main process exited with status 203/EXEC, restarted 4 times", st.describe())

	st, err = parseUnitState([]byte("  ActiveState=active\r\nSubState=running\nResult=success\nExecMainStatus=0\nNRestarts=0\nActiveEnterTimestampMonotonic=9\n"))
	require.NoError(t, err)
	require.True(t, st.running())
	require.False(t, st.failing())
	require.Equal(t, "rachel-assistant.service is active (running), result success", st.describe())

	st = unitState{Active: "failed", Sub: "failed", Result: "exit-code", ExecMainStatus: 1}
	require.True(t, st.failing())
	require.Equal(t, "rachel-assistant.service is failed (failed), result exit-code, main process exited with status 1", st.describe(),
		"an exit status of the program itself has no systemd name")
	require.Equal(t, st.describe(), (&errUnitFailed{st}).Error())

	_, err = parseUnitState([]byte("ActiveState=active\nSubState=running\n"))
	require.ErrorContains(t, err, "systemctl show printed no Result")
	_, err = parseUnitState([]byte("ActiveState=active\nSubState=running\nResult=success\nExecMainStatus=x\nNRestarts=0\nActiveEnterTimestampMonotonic=1\n"))
	require.ErrorContains(t, err, `ExecMainStatus "x"`)
}

func TestParseCloudInitStatusLong(t *testing.T) {
	t.Parallel()
	status, detail, last, ok := parseCloudInitStatus("status: done\r\nboot_status_code: enabled-by-generator\r\nlast_update: Thu, 01 Jan 1970 00:02:05 +0000\r\ndetail:\r\nDataSourceHetzner\r\n")
	require.True(t, ok)
	require.Equal(t, "done", status)
	require.Equal(t, "DataSourceHetzner", detail)
	require.Equal(t, time.Unix(125, 0).UTC(), last.UTC())

	status, detail, _, ok = parseCloudInitStatus("status: error\nlast_update: garbage\ndetail:\n('scripts-user', RuntimeError('Runparts: 1 failures'))\nmore\n")
	require.True(t, ok)
	require.Equal(t, "error", status)
	require.Equal(t, "('scripts-user', RuntimeError('Runparts: 1 failures'))\nmore", detail)

	_, detail, _, _ = parseCloudInitStatus("status: error\ndetail:\n" + strings.Repeat("x", 600))
	require.Len(t, detail, 500+len("…"), "a long detail is cut")

	_, _, _, ok = parseCloudInitStatus("cloud-init: command not found\n")
	require.False(t, ok)

	require.Equal(t, "a; b", cloudInitResult{Status: "error", Errors: []string{"a", "b"}, Detail: "d"}.message())
	require.Equal(t, "DataSourceHetzner", cloudInitResult{Status: "done", Detail: "DataSourceHetzner"}.message())
	require.Equal(t, "status: running", cloudInitResult{Status: "running"}.message())
}

func TestSSHErrorWording(t *testing.T) {
	t.Parallel()
	// A timeout is what a firewall dropping packets looks like; a refusal is not.
	require.Contains(t, silenceHint(&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}), "SSH_ALLOWED_SOURCES")
	require.Contains(t, silenceHint(fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded})), "no answer at all")
	require.Empty(t, silenceHint(errors.New("connection refused")))

	for cmd, want := range map[string]string{
		"sudo /usr/bin/install -m 0600 /dev/stdin /etc/x": "/usr/bin/install",
		"cloud-init status --wait":                        "cloud-init",
		"sudo":                                            "sudo",
		"   ":                                             "(empty command)",
	} {
		require.Equal(t, want, program(cmd), cmd)
	}

	require.True(t, sudoRefused(errors.New("Sorry, user rachel-ops is not allowed to execute '/usr/bin/cat' as root on h.")))
	require.True(t, sudoRefused(errors.New("sudo: a password is required")))
	require.False(t, sudoRefused(errors.New("install: Permission denied")))
}

func TestOwnershipByLabels(t *testing.T) {
	t.Parallel()
	sub := db.Subscription{ID: 42, HetznerTag: "t4g"}
	labels := labelsFor("inst1", sub)
	require.Equal(t, map[string]string{"managed-by": "rachel-cloud", "installation": "inst1", "subscription": "42", "subscription-tag": "t4g"}, labels)
	require.True(t, ownedBy(labels, "inst1", sub))
	require.False(t, ownedBy(labels, "inst2", sub), "another installation")
	require.False(t, ownedBy(labels, "inst1", db.Subscription{ID: 43, HetznerTag: "t4g"}), "another subscription")
	require.False(t, ownedBy(labels, "inst1", db.Subscription{ID: 42, HetznerTag: "other"}), "the ID reused after a restore")
	require.False(t, ownedBy(map[string]string{}, "inst1", sub))
	require.Equal(t, "managed-by=rachel-cloud,installation=inst1", installationSelector("inst1"))

	name := ServerName("0123456789ab", 9_223_372_036_854_775_807)
	require.LessOrEqual(t, len(name), 63, "one DNS label")
	require.Equal(t, "rachel-0123456789ab-sub-9223372036854775807", name)
	require.Equal(t, "rachel-0123456789ab-ssh-only", FirewallName("0123456789ab"))
}

func TestJobRequestIDAndRetryBackoff(t *testing.T) {
	t.Parallel()
	require.Equal(t, "req-1", jobRequestID([]byte(`{"request_id": "req-1", "other": 1}`)))
	require.Empty(t, jobRequestID(nil))
	require.Empty(t, jobRequestID([]byte(`not json`)))
	require.Empty(t, jobRequestID([]byte(`{}`)))

	// Exponential from base, capped at 32×base, with at most a quarter of jitter on top.
	p := retryPolicy{base: time.Second}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		6: 32 * time.Second, 50: 32 * time.Second} {
		before := time.Now()
		next := p.NextRetry(&rivertype.JobRow{Attempt: attempt})
		d := next.Sub(before)
		require.GreaterOrEqual(t, d, want, "attempt %d", attempt)
		require.LessOrEqual(t, d, want+want/4+time.Since(before), "attempt %d", attempt)
	}
}

func TestTimingsDefaults(t *testing.T) {
	t.Parallel()
	d := Timings{}.withDefaults()
	require.Equal(t, time.Minute, d.SSHCommand)
	require.Equal(t, 15*time.Second, d.SSHKeepalive)
	require.Equal(t, 10*time.Second, d.SSHTimeout)
	kept := Timings{SSHCommand: time.Second, SSHKeepalive: 2 * time.Second, SSHTimeout: 3 * time.Second}.withDefaults()
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, []time.Duration{kept.SSHCommand, kept.SSHKeepalive, kept.SSHTimeout})
	def := DefaultTimings()
	require.Greater(t, def.PollMax, def.PollMin)
	require.Greater(t, def.CallbackGrace, 3*time.Second, "longer than phone_home's retry interval")
}

func TestCheckSSHNamesTheVariable(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) *config.Config {
		t.Helper()
		c, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		return c
	}
	var reasons []string
	add := func(f string, a ...any) { reasons = append(reasons, fmt.Sprintf(f, a...)) }
	checkSSH(load(map[string]string{"SSH_ALLOWED_SOURCES": "203.0.113.0/24", "PUBLIC_BASE_URL": "https://admin.example.com"}), add)
	require.Empty(t, reasons, "the cloud-config makes sshd listen on VPS_SSH_PORT")
	checkSSH(load(map[string]string{"SSH_ALLOWED_SOURCES": "203.0.113.0/24", "VPS_SSH_PORT": "2222", "PUBLIC_BASE_URL": "https://admin.example.com"}), add)
	require.Empty(t, reasons, strconv.Quote(strings.Join(reasons, "; ")))
	none := load(map[string]string{"PUBLIC_BASE_URL": "https://admin.example.com"})
	none.SSHAllowedFrom = nil
	checkSSH(none, add)
	require.Equal(t, []string{"SSH_ALLOWED_SOURCES: the firewall would admit SSH from nowhere, so the worker could never reach a VPS"}, reasons)
}
