// Package pgcluster starts a private PostgreSQL server from the system's binaries, for `make run`
// and for tests when no database URL is given.
package pgcluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options says where the cluster lives.
type Options struct {
	// Dir holds the data directory (Dir/data) and the socket. It is created when missing and kept.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one (remembered in Dir/port for the next start).
	Port int
	// Fast turns off durability (fsync, full page writes): for throwaway test clusters only.
	Fast bool
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
	err  error         // the server's exit status, set before done is closed
	// silent overrides silentLimit (tests).
	silent time.Duration
}

// BinDir finds the PostgreSQL server binaries (initdb, postgres), newest version first.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	if len(matches) == 0 {
		return "", errors.New("no PostgreSQL server binaries found (initdb): install them with " +
			"`apt-get install postgresql` (Debian) or set DATABASE_URL to an existing database")
	}
	return filepath.Dir(matches[0]), nil
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// Start initialises the cluster when its data directory is new and starts the server. The server
// is a child of this process and is told to stop when this process dies.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		// The server refuses to run as root; it runs as postgres and must own its directory.
		if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
			"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w: %s", data, err, out)
		}
	}
	// A server left over from a killed run would hold the port and the lock file.
	_ = os.Remove(filepath.Join(data, "postmaster.pid"))

	port := opts.Port
	if port != 0 && !portFree(port) {
		return nil, fmt.Errorf("start postgres: port %d on 127.0.0.1 is in use", port)
	}
	if port == 0 {
		if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil {
			port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if port == 0 || !portFree(port) {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		_ = os.WriteFile(filepath.Join(dir, "port"), []byte(strconv.Itoa(port)), 0o600)
	}

	args := []string{"-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", dir,
		"-c", "max_connections=300", "-c", "shared_buffers=128MB"}
	if opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if opts.Log != nil {
		cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	c := &Cluster{dir: dir, port: port, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// URL is a connection URL for database name (postgres when empty).
func (c *Cluster) URL(name string) string {
	if name == "" {
		name = "postgres"
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Stop shuts the server down (fast shutdown) and waits for it.
func (c *Cluster) Stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("postgres did not stop within 30s; killed")
	}
}

// Done is closed when the server has exited, whoever stopped it; [Cluster.Err] then says how.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Err is the server's exit status once [Cluster.Done] is closed (nil before).
func (c *Cluster) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// silentLimit is how long a starting server may neither accept a connection nor say it is
// starting up before the start is given up. A server recovering for longer (a large WAL after a
// kill, a loaded machine) says so to every attempt and is waited for as long as ctx allows.
const silentLimit = 60 * time.Second

func (c *Cluster) waitReady(ctx context.Context) error {
	var last error
	heard := time.Now() // when the server last answered, if only "starting up"
	for {
		// An attempt ends when the server exits: whatever else answers on the port (a listener
		// that took it first) must not hold the start until the deadline.
		attempt, stop := context.WithCancel(ctx)
		go func() {
			select {
			case <-c.done:
				stop()
			case <-attempt.Done():
			}
		}()
		conn, err := pgx.Connect(attempt, c.URL(""))
		stop()
		if err == nil {
			return conn.Close(ctx)
		}
		last = err
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "57P03" { // cannot_connect_now: starting up or recovering
			heard = time.Now()
		}
		if limit := cmp.Or(c.silent, silentLimit); time.Since(heard) > limit {
			return fmt.Errorf("postgres not ready after %s without a word: %w (see its log in %s)", limit, last, c.dir)
		}
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited while starting: %v (see its log in %s)", c.err, c.dir)
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serverUser is the identity to run the server as: postgres when we are root, ourselves otherwise.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, but there is no postgres user to run PostgreSQL as: " +
			"install the server with `apt-get install postgresql` (it creates the user)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(dir string, uid, gid int) error {
	// The parent directories must be searchable by the server's user.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(p, st.Mode().Perm()|0o001)
		}
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// CreateDatabase creates an empty database name in the cluster (the bench's one per phase). An
// identifier cannot be a query parameter, so this is cluster administration, not a query of
// queries/: the name is quoted as an identifier.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
