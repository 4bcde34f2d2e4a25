package faultsuite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rachelcloud/admin/internal/testkit"
)

// proc is one rachel-admin subprocess. Its output goes to a file, shown when the test fails.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, valid after done
}

// startProc starts `rachel-admin args...` with exactly env (plus PATH and HOME); it is killed
// when the test ends.
func startProc(t testing.TB, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	p, err := spawn(binary(t), logDir(t), name, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

// spawn starts a process whose output goes to a new file in dir.
func spawn(bin, dir, name string, env map[string]string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = f, f
	// Die with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

func envList(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// pid is the process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process and waits for it.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop asks the process to shut down (SIGTERM), as a supervisor does, and kills it if it does
// not within the timeout. It reports whether it stopped by itself.
func (p *proc) stop(timeout time.Duration) bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.kill()
		return false
	}
}

// output is everything the process wrote so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// tail is the last n lines of the process's output.
func (p *proc) tail(n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(p.output())))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var logDirs sync.Map // test name → directory

// logDir is where the test's process logs go; on failure their tails are printed.
func logDir(t testing.TB) string {
	if d, ok := logDirs.Load(t.Name()); ok {
		return d.(string)
	}
	d := t.TempDir()
	logDirs.Store(t.Name(), d)
	t.Cleanup(func() {
		logDirs.Delete(t.Name())
		if !t.Failed() {
			return
		}
		// The last run of each process (file names are name-starttime.log, sorted by ReadDir).
		entries, _ := os.ReadDir(d)
		latest := map[string]os.DirEntry{}
		for _, e := range entries {
			name, _, _ := strings.Cut(e.Name(), "-")
			latest[name] = e
		}
		for _, e := range latest {
			b, _ := os.ReadFile(filepath.Join(d, e.Name()))
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("--- last lines of %s ---\n%s", e.Name(), strings.Join(lines, "\n"))
		}
	})
	return d
}

// freePort returns a TCP port nobody listens on at the moment.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until it answers 200; a process that exits meanwhile fails the test at once.
func waitHTTP(t testing.TB, p *proc, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	testkit.Eventually(t, url+" to answer 200", func() error {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if p != nil && p.exited() {
			t.Fatalf("%s exited while starting (%v):\n%s", p.name, p.err, p.tail(30))
		}
		return err
	})
}

// run runs `rachel-admin args...` to completion with env and stdin. There is no deadline but the
// hang guard: a loaded machine may take long, and a process that should exit but serves on is
// still caught.
func run(t testing.TB, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	guard := testkit.HangGuard(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = envList(env)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("rachel-admin %s did not finish (hung for %s)", strings.Join(args, " "), guard)
	}
	return string(out), err
}
