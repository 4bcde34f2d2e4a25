package pgcluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

// TestClusterLifeCycle: a private cluster is initialised once and kept: its data and its port
// survive a stop and a start; a port taken meanwhile is replaced (and remembered); database names
// are identifiers, quoted, never SQL.
func TestClusterLifeCycle(t *testing.T) {
	if _, err := BinDir(); err != nil {
		t.Fatalf("PostgreSQL's server binaries are needed (make test installs them): %v", err)
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")

	c, err := Start(ctx, Options{Dir: dir, Fast: true})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	require.Equal(t, c.URL("postgres"), c.URL(""), "an empty name is the postgres database")
	require.Contains(t, c.URL("x"), "127.0.0.1:"+strconv.Itoa(c.Port())+"/x")
	remembered, err := os.ReadFile(filepath.Join(dir, "port"))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(c.Port()), strings.TrimSpace(string(remembered)))
	if os.Geteuid() == 0 {
		st, err := os.Stat(filepath.Join(dir, "data"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "the data directory is private to the server's user")
	}

	// A name that would be SQL if pasted is one database with exactly that name.
	odd := `phase "1"; DROP DATABASE postgres; --`
	require.NoError(t, c.CreateDatabase(ctx, odd))
	err = c.CreateDatabase(ctx, odd)
	require.Error(t, err, "a second database of the same name")
	require.Contains(t, err.Error(), odd, "the error names the database")
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	var names []string
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname")
	require.NoError(t, err)
	names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{odd, "postgres"}, names)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across restarts')")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	// Stopped, the server is gone and Done says so.
	port := c.Port()
	require.NoError(t, c.Stop())
	stopped = true
	<-c.Done()
	<-c.Done() // closed, not a one-time value: every waiter sees it
	require.NoError(t, c.Err(), "a fast shutdown is a clean exit")
	_, err = pgx.Connect(ctx, c.URL(""))
	require.Error(t, err, "nothing answers after Stop")

	// Started again on the same directory: same port, same data, no initdb over it.
	c, err = Start(ctx, Options{Dir: dir, Fast: true})
	require.NoError(t, err)
	stopped = false
	require.Equal(t, port, c.Port(), "the remembered port is reused while free")
	var v string
	conn, err = pgx.Connect(ctx, c.URL(""))
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "across restarts", v)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, c.Stop())
	stopped = true

	// The remembered port taken by someone else: another free one, remembered for next time.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	defer l.Close()
	c, err = Start(ctx, Options{Dir: dir, Fast: true})
	require.NoError(t, err)
	stopped = false
	require.NotEqual(t, port, c.Port())
	remembered, err = os.ReadFile(filepath.Join(dir, "port"))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(c.Port()), strings.TrimSpace(string(remembered)))
	conn, err = pgx.Connect(ctx, c.URL(""))
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.NoError(t, conn.Close(ctx))
}

// TestFixedPortTaken: a port the caller fixes is used as given; taken, the start fails and says
// so instead of hanging or silently moving.
func TestFixedPortTaken(t *testing.T) {
	if _, err := BinDir(); err != nil {
		t.Fatalf("PostgreSQL's server binaries are needed (make test installs them): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "pg"), Port: port, Fast: true})
	require.ErrorContains(t, err, "port "+strconv.Itoa(port)+" on 127.0.0.1 is in use")
}

// TestExitWhileStarting: a server that exited while starting (say, its port taken between the
// check and its bind, by a listener that accepts and never answers) fails the start with its exit,
// not after the start deadline spent talking to the other listener.
func TestExitWhileStarting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	c := &Cluster{dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port, done: make(chan struct{}), err: errors.New("exit status 1")}
	close(c.done)
	require.Equal(t, c.err, c.Err())
	err = c.waitReady(context.Background())
	require.ErrorContains(t, err, "postgres exited while starting: exit status 1")
}

func TestVersionOrder(t *testing.T) {
	require.Equal(t, 15, version("/usr/lib/postgresql/15/bin/initdb"))
	require.Equal(t, 0, version("/usr/local/bin/initdb"), "a path without a version sorts last")
}

// startingUp answers every connection on l as a server in recovery does (FATAL 57P03, "the
// database system is starting up") while answering is true, and afterwards closes connections
// without a word. It counts the answers.
func startingUp(t *testing.T, l net.Listener, answering *atomic.Bool, answers *atomic.Int32) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			if !answering.Load() {
				return
			}
			be := pgproto3.NewBackend(conn, conn)
			if _, err := be.ReceiveStartupMessage(); err != nil {
				t.Errorf("startup message: %v", err)
				return
			}
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P03",
				Message: "the database system is starting up"})
			if err := be.Flush(); err == nil {
				answers.Add(1)
			}
		}()
	}
}

// TestStartWaitsForARecoveringServer: a server that answers "starting up" (a long recovery on a
// loaded machine) is waited for beyond the silent limit; one that stops answering is given up
// once the limit passes without a word.
func TestStartWaitsForARecoveringServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var answering atomic.Bool
	var answers atomic.Int32
	answering.Store(true)
	go startingUp(t, l, &answering, &answers)
	c := &Cluster{dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port, done: make(chan struct{}), silent: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- c.waitReady(context.Background()) }()
	// 120 answers take at least six seconds (an attempt every 50 ms): past the silent limit. The
	// limit is long beside the 50 ms between answers, so a loaded machine's pauses stay within it.
	testkit.Eventually(t, "the server was asked again and again", func() bool { return answers.Load() >= 120 || len(errc) > 0 })
	select {
	case err := <-errc:
		t.Fatalf("gave up on a server that answered: %v", err)
	default:
	}
	answering.Store(false)
	err = <-errc
	require.ErrorContains(t, err, "without a word")
}
