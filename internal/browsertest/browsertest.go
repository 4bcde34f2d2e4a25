// Package browsertest drives Debian's Chromium with chromedp for the browser tests: one headless
// browser per test binary, started with a fresh profile and no background networking, and one
// isolated browser context (cookies, storage) per test.
//
// A missing Chromium fails the tests with a message saying how to install it, as every missing
// tool does (testkit.Require).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rachelcloud/admin/internal/testkit"
)

// ArtifactsDir is where screenshots go, relative to the repository root (git-ignored).
const ArtifactsDir = "test-artifacts"

var shared struct {
	mu      sync.Mutex
	ctx     context.Context // a browser context that has run once: children share its browser
	cancel  context.CancelFunc
	cancelA context.CancelFunc
	dir     string
	err     error
}

// Chromium returns the path of the installed Chromium, or an error saying how to install it.
func Chromium() (string, error) {
	p, err := testkit.Find("chromium")
	if err != nil {
		return "", fmt.Errorf("browser tests need Chromium: %w", err)
	}
	return p, nil
}

// start launches the shared browser once.
func start() (context.Context, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.ctx != nil || shared.err != nil {
		return shared.ctx, shared.err
	}
	path, err := Chromium()
	if err != nil {
		shared.err = err
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rachel-chromium-")
	if err != nil {
		shared.err = fmt.Errorf("browser profile dir: %w", err)
		return nil, shared.err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.UserDataDir(dir),
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser, bound to bctx
		cancel()
		cancelA()
		_ = os.RemoveAll(dir)
		shared.err = fmt.Errorf("start Chromium at %s: %w", path, err)
		return nil, shared.err
	}
	shared.ctx, shared.cancel, shared.cancelA, shared.dir = bctx, cancel, cancelA, dir
	return bctx, nil
}

// Close stops the shared browser; call it from TestMain after the tests ran.
func Close() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cancel != nil {
		shared.cancel()
		shared.cancelA()
		_ = os.RemoveAll(shared.dir)
		shared.ctx, shared.cancel, shared.cancelA = nil, nil, nil
	}
}

// Tab is one test's tab, in a browser context of its own.
type Tab struct {
	t   testing.TB
	ctx context.Context
}

// NewTab opens a tab in a fresh browser context (no cookies shared with other tests), closed
// when the test ends. It fails the test when Chromium is missing.
func NewTab(t testing.TB) *Tab {
	t.Helper()
	bctx, err := start()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &Tab{t: t, ctx: ctx}
}

// Context is the tab's chromedp context.
func (tb *Tab) Context() context.Context { return tb.ctx }

// Do runs the actions with a timeout, failing the test (with a screenshot) on error.
func (tb *Tab) Do(timeout time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Screenshot(tb.t.Name() + "-failed")
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// Text returns the visible text of the first element matching the CSS selector.
func (tb *Tab) Text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.Screenshot(tb.t.Name() + "-failed")
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// Eval evaluates a JavaScript expression in the page and returns its value.
func Eval[T any](tb *Tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitJS waits until the JavaScript expression is truthy in the page, evaluating it every 50 ms
// until timeout. Evaluation errors (the page is being replaced by a navigation) count as false.
func (tb *Tab) WaitJS(timeout time.Duration, what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			tb.Screenshot(tb.t.Name() + "-failed")
			tb.t.Fatalf("%s: not true within %s: %s (last error: %v)", what, timeout, expr, lastErr)
		}
		select {
		case <-tick.C:
		case <-tb.ctx.Done():
			tb.t.Fatalf("%s: %v", what, tb.ctx.Err())
		}
	}
}

// ClickAndLoad clicks the element and waits until a new document has loaded in which expr is
// true (the old document is tagged first, so it cannot satisfy the wait).
func (tb *Tab) ClickAndLoad(timeout time.Duration, what, sel, expr string) {
	tb.t.Helper()
	Eval[bool](tb, `(window.__browsertestOld = true)`)
	tb.Do(timeout, what, chromedp.Click(chromedp.CSS(sel)))
	tb.WaitJS(timeout, what, `window.__browsertestOld === undefined && document.readyState === 'complete' && (`+expr+`)`)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG of the tab under test-artifacts/ at the repository root and
// returns its path ("" when it could not be taken; the test does not fail for that).
func (tb *Tab) Screenshot(name string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join(repoRoot(), ArtifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	tb.t.Logf("screenshot: %s", path)
	return path
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
