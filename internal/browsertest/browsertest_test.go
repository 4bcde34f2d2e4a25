package browsertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

// TestChromiumMissing: without Chromium the message says how to install it (tests then fail
// with it rather than skip).
func TestChromiumMissing(t *testing.T) {
	saved := testkit.SearchDirs
	t.Cleanup(func() { testkit.SearchDirs = saved })
	testkit.SearchDirs = []string{"/nonexistent"}
	t.Setenv("PATH", t.TempDir())
	_, err := Chromium()
	require.Error(t, err)
	require.Contains(t, err.Error(), "browser tests need Chromium")
	require.Contains(t, err.Error(), "make test")
	require.Contains(t, err.Error(), "apt-get install chromium")
}

func TestRepoRoot(t *testing.T) {
	t.Parallel()
	require.FileExists(t, repoRoot()+"/go.mod")
}
