package vps

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloudInitStatusFormats: `cloud-init status` as cloud-init 22.4's cmd/status.py prints it,
// in its three forms, before and after the final stage and with a failed runcmd; exit status 1
// when the status is error.
func TestCloudInitStatusFormats(t *testing.T) {
	t.Parallel()
	waiting := bootShell(t, "")
	for _, tc := range []shellCase{
		{user: "bob", line: "cloud-init status", stdout: "status: running\n"},
		{user: "bob", line: "cloud-init status --format tabular", stdout: "status: running\n"},
		{user: "bob", line: "cloud-init status --format yaml", status: 2, stderr: "--format yaml is not simulated"},
		{user: "bob", line: "cloud-init status --bogus", status: 2, stderr: "usage: cloud-init status"},
		{user: "bob", line: "cloud-init status extra", status: 2, stderr: "usage: cloud-init status"},
		{user: "bob", line: "cloud-init init", status: 2, stderr: "only `cloud-init status` is simulated"},
	} {
		tc.check(t, waiting)
	}
	out, _, status := waiting.RunAs("bob", "cloud-init status --long", nil)
	require.Equal(t, 0, status)
	require.Contains(t, out, "status: running\nboot_status_code: enabled-by-generator\nlast_update: ")
	require.Contains(t, out, "detail:\nRunning in stage: modules-final\n")

	done := bootRuncmd(t, "  - echo fine\n")
	out, _, status = done.RunAs("bob", "cloud-init status --wait --format json", nil)
	require.Equal(t, 0, status)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "done", st["status"])
	require.Equal(t, "DataSourceHetzner", st["detail"])
	require.Equal(t, "hetzner", st["datasource"])
	require.Equal(t, []any{}, st["errors"], "an empty list, not null")
	last, err := time.Parse("Mon, 02 Jan 2006 15:04:05 -0700", st["last_update"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, done.State().CloudInitDoneAt, last, time.Second)

	failed := bootRuncmd(t, "  - false\n")
	out, _, status = failed.RunAs("bob", "cloud-init status -w -l", nil)
	require.Equal(t, 1, status, "cloud-init exits 1 on error")
	require.True(t, strings.HasPrefix(out, "status: error\n"), out)
	require.Contains(t, out, "detail:\n('scripts-user', RuntimeError('Runparts: 1 failures (runcmd) in 1 attempted commands'))\n")
	out, _, status = failed.RunAs("bob", "cloud-init status --format json", nil)
	require.Equal(t, 1, status)
	st = nil
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "error", st["status"])
	require.Len(t, st["errors"], 1)
}

// bootRuncmd starts a machine whose final stage runs at once with the given runcmd entries and
// waits for it.
func bootRuncmd(t *testing.T, runcmd string) *Machine {
	t.Helper()
	m, err := Start(t.Context(), Config{IP: net.IPv4(127, 0, 0, 1),
		UserData: shellUserData + "runcmd:\n" + runcmd})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	<-m.Done()
	return m
}
