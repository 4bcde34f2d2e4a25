package browsertest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChromiumMissing: without Chromium the message says how to install it (tests then fail
// with it rather than skip).
func TestChromiumMissing(t *testing.T) {
	saved := ChromiumPaths
	t.Cleanup(func() { ChromiumPaths = saved })
	ChromiumPaths = []string{"/nonexistent/chromium"}
	t.Setenv("PATH", t.TempDir())
	_, err := Chromium()
	require.Error(t, err)
	require.Contains(t, err.Error(), "make deps")
	require.Contains(t, err.Error(), "apt-get install chromium")
	require.Contains(t, err.Error(), EnvSkip+"=1")
}

func TestRepoRoot(t *testing.T) {
	t.Parallel()
	require.FileExists(t, repoRoot()+"/go.mod")
}
