package assistantfixture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFixtureRunsWithItsConfiguration runs the program with sh, as systemd would with the
// unit's environment, and reads the status it records.
func TestFixtureRunsWithItsConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds := filepath.Join(dir, "claude-credentials.json")
	require.NoError(t, os.WriteFile(creds, []byte(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x"}}`+"\n"), 0o600))
	prog := filepath.Join(dir, "rachel-assistant")
	require.NoError(t, os.WriteFile(prog, Program, 0o755))
	state := filepath.Join(dir, "state")
	require.NoError(t, os.Mkdir(state, 0o700))

	cmd := exec.Command(prog)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TELEGRAM_BOT_TOKEN=123:secret-token", "TELEGRAM_OWNER_ID=42",
		"RACHEL_CLAUDE_CREDENTIALS=" + creds, "STATE_DIRECTORY=" + state}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	var status []byte
	for status == nil {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("the fixture exited (%v): %s", err, out.String())
		case <-time.After(20 * time.Millisecond): // poll interval, not a deadline
		}
		status, _ = os.ReadFile(filepath.Join(state, "assistant-status"))
	}
	lines := strings.Split(strings.TrimSpace(string(status)), "\n")
	require.Len(t, lines, 5)
	require.Regexp(t, `^started pid=\d+ user=`, lines[0])
	require.Equal(t, "telegram_owner_id=42", lines[1])
	require.Equal(t, "telegram_bot_token_sha256="+sum([]byte("123:secret-token")), lines[2])
	require.Equal(t, "credentials="+creds, lines[3])
	raw, _ := os.ReadFile(creds)
	require.Equal(t, "credentials_sha256="+sum(raw), lines[4])
	require.NotContains(t, string(status), "secret-token", "no secret in the status")
}

// TestFixtureFailsWithoutItsConfiguration: each missing piece makes it exit 1 with a reason.
func TestFixtureFailsWithoutItsConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prog := filepath.Join(dir, "rachel-assistant")
	require.NoError(t, os.WriteFile(prog, Program, 0o755))
	creds := filepath.Join(dir, "c.json")
	require.NoError(t, os.WriteFile(creds, []byte(`{"other":1}`), 0o600))
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"no token":       {[]string{"TELEGRAM_OWNER_ID=1", "RACHEL_CLAUDE_CREDENTIALS=" + creds}, "TELEGRAM_BOT_TOKEN is not set"},
		"no owner":       {[]string{"TELEGRAM_BOT_TOKEN=x", "RACHEL_CLAUDE_CREDENTIALS=" + creds}, "TELEGRAM_OWNER_ID is not set"},
		"no credentials": {[]string{"TELEGRAM_BOT_TOKEN=x", "TELEGRAM_OWNER_ID=1"}, "RACHEL_CLAUDE_CREDENTIALS is not set"},
		"unreadable":     {[]string{"TELEGRAM_BOT_TOKEN=x", "TELEGRAM_OWNER_ID=1", "RACHEL_CLAUDE_CREDENTIALS=" + dir + "/none"}, "cannot read"},
		"no accessToken": {[]string{"TELEGRAM_BOT_TOKEN=x", "TELEGRAM_OWNER_ID=1", "RACHEL_CLAUDE_CREDENTIALS=" + creds}, "holds no accessToken"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(prog)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "STATE_DIRECTORY=" + dir}, tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, 1, exit.ExitCode())
			require.Contains(t, string(out), tc.want)
		})
	}
}

func TestHandlerServesTheProgram(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, SHA256, sum(body))
	resp, err = http.Get(srv.URL + "/other")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
