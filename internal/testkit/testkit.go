// Package testkit holds the helpers every package's tests share: one way to wait for a condition
// ([Eventually]), one writer that sends a component's log to the test log ([LogWriter],
// [Logger]), one buffer that goroutines may write while the test reads ([Buffer]), and one way to
// demand a program a test runs ([Require]).
//
// It imports nothing of the project, so any package's internal tests can use it without an import
// cycle. The full stack (database, simulator, worker, web app) is built by internal/teststack.
package testkit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// PollInterval is how often [Eventually] checks its condition: the interval of a condition poll,
// not a wait for an event.
const PollInterval = 15 * time.Millisecond

// maxHangGuard bounds a wait when the test has no deadline (go test -timeout 0, benchmarks).
const maxHangGuard = 10 * time.Minute

// HangGuard is how long a wait that should end by itself may last: until shortly before the test
// binary's own -timeout (so the test fails saying what it waited for instead of the binary
// panicking), at most 10 minutes. Only a hang reaches it, never a slow machine.
func HangGuard(t testing.TB) time.Duration {
	guard := maxHangGuard
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := tt.Deadline(); ok {
			guard = min(guard, max(time.Until(d)-time.Minute, time.Minute))
		}
	}
	return guard
}

// Cond is what [Eventually] polls: a predicate, or a check whose error says what it saw instead
// of the awaited state (reported when the wait fails).
type Cond interface {
	func() bool | func() error
}

// errNotYet is what a false predicate reports: it has nothing more to say.
var errNotYet = errors.New("condition false")

// Eventually polls cond every [PollInterval] until it holds. There is no fixed deadline — a busy
// machine may take long — only the [HangGuard]: if the condition still fails then, the test fails
// naming what it waited for, for how long, and what the check last saw. cond may call t.Fatal
// (require) to stop at once on an error that no waiting mends.
func Eventually[C Cond](t testing.TB, what string, cond C) {
	t.Helper()
	poll(t, what, toCheck(cond), HangGuard(t))
}

func poll(t testing.TB, what string, check func() error, guard time.Duration) {
	t.Helper()
	start := time.Now()
	for polls := 1; ; polls++ {
		err := check()
		if err == nil {
			return
		}
		if time.Since(start) > guard {
			t.Fatalf("still waiting for %s after %s (%d checks); last seen: %v",
				what, time.Since(start).Round(time.Millisecond), polls, err)
		}
		time.Sleep(PollInterval) // the interval of a condition poll, not a wait for an event
	}
}

func toCheck[C Cond](cond C) func() error {
	if c, ok := any(cond).(func() error); ok {
		return c
	}
	pred := any(cond).(func() bool)
	return func() error {
		if pred() {
			return nil
		}
		return errNotYet
	}
}

// LogWriter sends what is written to the test's log, one t.Log call per write (slog writes a
// record at a time), so a component's log shows under the test that made it.
func LogWriter(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Logger is a text logger at level that writes to the test's log.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(LogWriter(t), &slog.HandlerOptions{Level: level}))
}

// Buffer is a bytes.Buffer that several goroutines may write while the test reads it: the log or
// output of a component under test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
