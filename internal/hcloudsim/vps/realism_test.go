package vps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnitWithoutItsProgramFailsWith203 holds the unit life cycle to systemd's: restart of a
// Type=simple unit succeeds once forked, then the missing program shows as 203/EXEC and the
// unit keeps being restarted; is-active does not say active.
func TestUnitWithoutItsProgramFailsWith203(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *Config, cc map[string]any) {
		files := cc["write_files"].([]any)
		cc["write_files"] = files[:1] // the unit, without /usr/local/bin/rachel-assistant
	})
	<-b.m.Done()
	c := b.login(t)
	for i, stdin := range [][]byte{[]byte(`{"accessToken":"x"}`), nil, []byte("TELEGRAM_BOT_TOKEN=1\n"), nil} {
		require.Equal(t, 0, run(t, c, injectionCommands[i], stdin).status)
	}
	require.Equal(t, result{}, run(t, c, injectionCommands[4], nil), "systemctl restart returns once systemd forked")
	r := run(t, c, isActive, nil)
	require.Equal(t, result{stdout: "activating\n", status: 3}, r)
	show := run(t, c, injectionCommands[5], nil)
	require.Contains(t, show.stdout, "Result=exit-code\n")
	require.Contains(t, show.stdout, "ExecMainStatus=203\n")
	require.Contains(t, show.stdout, "ActiveState=activating\nSubState=auto-restart\n")
	require.NotEqual(t, "active", b.m.Services()[unit])

	// Installed but not executable: the same.
	b2 := setup(t, func(_ *Config, cc map[string]any) {
		files := cc["write_files"].([]any)
		f := files[1].(map[string]any)
		f["permissions"] = "0644"
	})
	<-b2.m.Done()
	c2 := b2.login(t)
	for i, stdin := range [][]byte{[]byte(`{"accessToken":"x"}`), nil, []byte("TELEGRAM_BOT_TOKEN=1\n"), nil, nil} {
		require.Equal(t, 0, run(t, c2, injectionCommands[i], stdin).status)
	}
	require.Contains(t, run(t, c2, injectionCommands[5], nil).stdout, "ExecMainStatus=203\n")
}

// TestRuncmdSetEFailsCloudInit: under `set -e` the first failing runcmd line ends the script
// and cloud-init's status is error, with cloud-init's own message; without it, only the last
// line's status counts, as with sh.
func TestRuncmdSetEFailsCloudInit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *Config, cc map[string]any) {
		cc["runcmd"] = []any{"set -e", "false", "mkdir /never"}
	})
	<-b.m.Done()
	_, made := b.m.Dir("/never")
	require.False(t, made, "set -e stopped the script")
	c := b.login(t)
	r := run(t, c, "cloud-init status --wait --format json", nil)
	require.Equal(t, 1, r.status)
	require.Contains(t, r.stdout, `"status": "error"`)
	require.Contains(t, r.stdout, `Runparts: 1 failures (runcmd) in 1 attempted commands`)
	require.Equal(t, result{stdout: "status: error\n", status: 1}, run(t, c, "cloud-init status", nil))

	ok := setup(t, func(_ *Config, cc map[string]any) { cc["runcmd"] = []any{"false", "true"} })
	<-ok.m.Done()
	require.Empty(t, ok.m.State().CloudInitErrors)
	r = run(t, ok.login(t), "cloud-init status --format json", nil)
	require.Equal(t, 0, r.status)
	require.Contains(t, r.stdout, `"status": "done"`)
	require.Contains(t, r.stdout, `"errors": []`)
}

// TestArtifactDownloadAndCheck runs the download cloud-init's runcmd does: curl over the
// machine's HTTP client, sha256sum --check, install.
func TestArtifactDownloadAndCheck(t *testing.T) {
	t.Parallel()
	prog := []byte("#!/bin/sh\nexec sleep infinity\n")
	sum := sha256.Sum256(prog)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(prog)
	}))
	t.Cleanup(srv.Close)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + closed.Addr().String() + "/a"
	require.NoError(t, closed.Close())

	for name, tc := range map[string]struct {
		url, sum string
		fails    string
	}{
		"good":         {srv.URL + "/a", hex.EncodeToString(sum[:]), ""},
		"wrong digest": {srv.URL + "/a", strings.Repeat("0", 64), "computed checksum did NOT match"},
		"404":          {srv.URL + "/missing", hex.EncodeToString(sum[:]), "curl: (22) The requested URL returned error: 404"},
		"refused":      {refused, hex.EncodeToString(sum[:]), "curl: (7) Failed to connect"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(_ *Config, cc map[string]any) {
				cc["write_files"] = []any{map[string]any{"path": "/var/lib/rachel-install/a.sha256",
					"content": tc.sum + "  /var/lib/rachel-install/a\n"}}
				cc["runcmd"] = []any{"set -e",
					[]string{"curl", "--fail", "--silent", "--show-error", "--location", "--retry", "1", "--max-time", "30", "--output", "/var/lib/rachel-install/a", tc.url},
					[]string{"sha256sum", "--check", "--strict", "--quiet", "/var/lib/rachel-install/a.sha256"},
					[]string{"install", "-D", "-m", "0755", "-o", "root", "-g", "root", "/var/lib/rachel-install/a", "/opt/x/bin/a"},
				}
			})
			<-b.m.Done()
			f, installed := b.m.File("/opt/x/bin/a")
			if tc.fails == "" {
				require.True(t, installed, b.m.State().Warnings)
				require.Equal(t, hex.EncodeToString(sum[:]), f.SHA256)
				require.EqualValues(t, 0o755, f.Mode)
				require.Empty(t, b.m.State().CloudInitErrors)
				return
			}
			require.False(t, installed)
			require.NotEmpty(t, b.m.State().CloudInitErrors)
			require.Contains(t, strings.Join(b.m.State().Warnings, "\n"), tc.fails)
		})
	}
}

// TestSSHDListensOnThePortTheUserDataSays: a Port line in an sshd_config.d drop-in wins over
// the simulator's default port, as on a real VPS.
func TestSSHDListensOnThePortTheUserDataSays(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	b := setup(t, func(c *Config, cc map[string]any) {
		cc["write_files"] = append(cc["write_files"].([]any), map[string]any{"path": "/etc/ssh/sshd_config.d/50-rachel.conf",
			"content": fmt.Sprintf("Port %d\nAllowUsers rachel-ops\n", port)})
	})
	require.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), b.m.SSHAddr())
	c := b.login(t)
	require.Equal(t, result{stdout: "rachel-sub-1\n"}, run(t, c, "hostname", nil))
}
