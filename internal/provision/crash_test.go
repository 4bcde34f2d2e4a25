package provision

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/testkit"
)

const envCrashAt = "RACHEL_PROVISION_TEST_CRASH_AT"

// TestHelperWorkerProcess is not a test: it is the worker process of the crash-safety test (the
// test binary re-executed with envHelper set). It prints each hook point and, at the one named
// by envCrashAt, blocks until it is killed.
func TestHelperWorkerProcess(t *testing.T) {
	if os.Getenv(envHelper) == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	crashAt := os.Getenv(envCrashAt)
	w, err := NewWorker(pool, cfg, WithTimings(SimulatorTimings()), WithHook(func(p string) {
		fmt.Println("HOOK", p)
		if p == crashAt {
			select {} // wait here to be killed
		}
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("STARTED")
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startWorkerProcess runs the test binary as a worker; lines are its stdout.
func (b *bundle) startWorkerProcess(t *testing.T, crashAt string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), envHelper+"=1", envCrashAt+"="+crashAt)
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = testkit.LogWriter(t)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, lines
}

// TestCrashSafety kills the worker process with SIGKILL at each point of the steps in turn,
// starts a new one, and checks the provisioning still ends ready with one server and one key.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	points := []string{"keys-stored", "ssh-key-uploaded", "ssh-key-recorded", "before-server-create",
		"server-created", "server-recorded", "inject-connected", "inject-wrote-temp", "inject-done"}
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	ids := make([]int64, len(points))
	for i, p := range points {
		ids[i] = b.newSubscription(t)
		require.NoError(t, b.svc.Provision(ctx, ids[i], admin))
		// One worker process per kill point, one subscription at a time in it.
		cmd, lines := b.startWorkerProcess(t, p)
		waitLine(t, lines, "HOOK "+p)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_, _ = cmd.Process.Wait()
	}
	// A fresh worker finishes them all.
	_, lines := b.startWorkerProcess(t, "")
	waitLine(t, lines, "STARTED")
	for i, id := range ids {
		sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
		require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "killed at %s: %s; events %v", points[i], deref(sub.ProvisioningError), b.events(t, id))
	}
	b.assertOnly(t, ids...)
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(testkit.HangGuard(t)) // a real VPS's boot and cloud-init take long on a busy machine
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("worker process ended before %q", want)
			}
			if strings.TrimSpace(l) == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q from the worker process", want)
		}
	}
}
