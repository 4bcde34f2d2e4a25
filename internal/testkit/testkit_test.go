package testkit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	go func() {
		for range 3 {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	Eventually(t, "three increments", func() bool { mu.Lock(); defer mu.Unlock(); return n == 3 })

	calls := 0
	Eventually(t, "the third check", func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	require.Equal(t, 3, calls)
}

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(errStop)
}

var errStop = errors.New("stop")

func TestEventuallyReportsWhatItLastSaw(t *testing.T) {
	t.Parallel()
	f := &fakeT{TB: t}
	checks := 0
	func() {
		defer func() { require.Equal(t, errStop, recover()) }()
		// A zero guard: the wait gives up after the first failed check.
		poll(f, "the widget", func() error {
			checks++
			return fmt.Errorf("widget is %d", checks)
		}, 0)
	}()
	require.Regexp(t, regexp.MustCompile(`^still waiting for the widget after .+ \(1 checks\); last seen: widget is 1$`), f.failed)

	f.failed = ""
	func() {
		defer func() { require.Equal(t, errStop, recover()) }()
		poll(f, "the gadget", toCheck(func() bool { return false }), 0)
	}()
	require.Contains(t, f.failed, "still waiting for the gadget")
	require.Contains(t, f.failed, "last seen: condition false")
}

func TestHangGuardFollowsTheTestDeadline(t *testing.T) {
	t.Parallel()
	g := HangGuard(t)
	require.Positive(t, g)
	require.LessOrEqual(t, g, maxHangGuard)
	if d, ok := t.Deadline(); ok && time.Until(d) > 2*time.Minute {
		require.Less(t, g, time.Until(d), "the guard ends before the binary's -timeout")
	}
}

func TestBufferTakesConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	require.Equal(t, strings.Repeat("x", 800), b.String())
}

func TestLoggerWritesToTheTestLog(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{TB: t}
	Logger(rec, slog.LevelWarn).Warn("disk full", "dir", "/tmp")
	Logger(rec, slog.LevelWarn).Info("not shown")
	require.Len(t, rec.lines, 1)
	require.Contains(t, rec.lines[0], `msg="disk full" dir=/tmp`)
	require.False(t, strings.HasSuffix(rec.lines[0], "\n"))
}

type logRecorder struct {
	testing.TB
	lines []string
}

func (r *logRecorder) Log(args ...any) { r.lines = append(r.lines, fmt.Sprint(args...)) }

func TestFindNamesThePackageOfAMissingTool(t *testing.T) {
	t.Parallel()
	_, err := find("rachel-no-such-tool", map[string]string{"rachel-no-such-tool": "rachel-no-such-package"})
	require.ErrorContains(t, err, "Debian package rachel-no-such-package")
	require.ErrorContains(t, err, "make test")
	_, err = Find("rachel-unlisted-tool")
	require.ErrorContains(t, err, "add it there and to .ci/deps.sh")
	p, err := Find("sh")
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(p))
}

// TestDepsInstallsEveryTool holds .ci/deps.sh to Tools: every package a test's tool comes from is
// one `make test` installs.
func TestDepsInstallsEveryTool(t *testing.T) {
	t.Parallel()
	deps, err := os.ReadFile("../../.ci/deps.sh")
	require.NoError(t, err)
	for tool, pkg := range Tools {
		require.Regexp(t, regexp.MustCompile(`missing\+=\(`+regexp.QuoteMeta(pkg)+`\)`), string(deps),
			"%s comes from %s, which .ci/deps.sh must install", tool, pkg)
	}
}
