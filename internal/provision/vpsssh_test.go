package provision

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// hostileSSHD is an SSH server that behaves like a broken or malicious VPS.
type hostileSSHD struct {
	addr       string
	hostKey    ssh.PublicKey
	clientAuth ssh.Signer
}

type hostileMode int

const (
	stallCommand    hostileMode = iota // accepts the exec, then never answers
	floodOutput                        // prints without end
	ignoreKeepalive                    // never answers global requests; commands stall too
	stallHandshake                     // accepts TCP and never speaks SSH
	answerNormally                     // prints "ok" and exits 0
)

func startHostileSSHD(t *testing.T, mode hostileMode) *hostileSSHD {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	clientSigner, err := ssh.NewSignerFromKey(clientPriv)
	require.NoError(t, err)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveHostile(c, cfg, mode, done) })
		}
	})
	return &hostileSSHD{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), clientAuth: clientSigner}
}

func serveHostile(c net.Conn, cfg *ssh.ServerConfig, mode hostileMode, done <-chan struct{}) {
	defer c.Close()
	if mode == stallHandshake {
		<-done
		return
	}
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	if mode == ignoreKeepalive {
		go func() {
			var held []*ssh.Request
			for r := range reqs {
				held = append(held, r) // read, never answered
			}
			_ = held
		}()
	} else {
		go ssh.DiscardRequests(reqs)
	}
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			for r := range creqs {
				if r.Type != "exec" {
					_ = r.Reply(false, nil)
					continue
				}
				_ = r.Reply(true, nil)
				switch mode {
				case floodOutput:
					buf := make([]byte, 32<<10)
					for {
						if _, err := ch.Write(buf); err != nil {
							return
						}
					}
				case answerNormally:
					_, _ = ch.Write([]byte("ok\n"))
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					_ = ch.Close()
				default: // stall: never an exit status
				}
			}
		}()
	}
}

func (h *hostileSSHD) dial(ctx context.Context, l sshLimits) (*vpsConn, error) {
	return dialVPS(ctx, h.addr, &ssh.ClientConfig{
		User: "rachel-ops", Auth: []ssh.AuthMethod{ssh.PublicKeys(h.clientAuth)},
		HostKeyCallback: ssh.FixedHostKey(h.hostKey), Timeout: l.handshake,
	}, l)
}

// generous bounds the test's own wait for a result; the behaviour under test does not depend on it.
const generous = 2 * time.Minute

func limits() sshLimits {
	return sshLimits{handshake: generous, command: generous, keepalive: generous, output: maxCommandOutput}
}

// runAsync runs one command and returns its result on a channel, so the test can wait for it
// without a fixed deadline of its own.
func runAsync(ctx context.Context, c *vpsConn, cmd string) <-chan error {
	res := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, cmd, []byte("secret bytes on stdin"))
		res <- err
	}()
	return res
}

func wait(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(generous):
		t.Fatal("the command was not ended: the worker would hang")
		return nil
	}
}

func TestSSHCommandThatStallsIsEndedByItsDeadline(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, stallCommand)
	l := limits()
	l.command = 200 * time.Millisecond // the limit under test, not a wait of the test
	c, err := h.dial(context.Background(), l)
	require.NoError(t, err)
	defer c.Close()
	err = wait(t, runAsync(context.Background(), c, "sudo /usr/bin/systemctl restart x.service"))
	require.ErrorContains(t, err, "systemctl: did not finish within 200ms; connection closed")
	// The connection is gone: the next command fails at once instead of hanging.
	_, err = c.Run(context.Background(), "true", nil)
	require.ErrorContains(t, err, "did not finish within")
}

func TestSSHCommandEndsWithTheJobsContext(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, stallCommand)
	ctx, cancel := context.WithCancelCause(context.Background())
	c, err := h.dial(ctx, limits())
	require.NoError(t, err)
	defer c.Close()
	res := runAsync(ctx, c, "cloud-init status --wait --format json")
	cancel(errors.New("worker shutting down"))
	err = wait(t, res)
	require.ErrorContains(t, err, "worker shutting down")
}

func TestSSHOutputFloodIsCutOff(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, floodOutput)
	c, err := h.dial(context.Background(), limits())
	require.NoError(t, err)
	defer c.Close()
	res := make(chan struct {
		out []byte
		err error
	}, 1)
	go func() {
		out, err := c.Run(context.Background(), "cat /dev/zero", nil)
		res <- struct {
			out []byte
			err error
		}{out, err}
	}()
	select {
	case r := <-res:
		require.ErrorIs(t, r.err, errOutputLimit)
		require.Nil(t, r.out)
	case <-time.After(generous):
		t.Fatal("a flooding VPS was never cut off")
	}
}

func TestSSHKeepaliveUnansweredClosesTheConnection(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, ignoreKeepalive)
	l := limits()
	l.keepalive = 100 * time.Millisecond // the limit under test
	c, err := h.dial(context.Background(), l)
	require.NoError(t, err)
	defer c.Close()
	err = wait(t, runAsync(context.Background(), c, "sudo /usr/bin/install -m 0600 /dev/stdin /x"))
	require.ErrorContains(t, err, "the VPS left a keepalive unanswered for 100ms")
}

func TestSSHHandshakeThatStallsIsBounded(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, stallHandshake)
	l := limits()
	l.handshake = 200 * time.Millisecond
	res := make(chan error, 1)
	go func() {
		_, err := h.dial(context.Background(), l)
		res <- err
	}()
	require.Error(t, wait(t, res))

	// And a job cancelled mid-handshake ends it too.
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		_, err := h.dial(ctx, limits())
		res <- err
	}()
	cancel(errors.New("job cancelled"))
	require.ErrorContains(t, wait(t, res), "job cancelled")
}

func TestSSHWellBehavedServerStillWorks(t *testing.T) {
	t.Parallel()
	h := startHostileSSHD(t, answerNormally)
	l := limits()
	l.keepalive = 50 * time.Millisecond // answered: never closes
	c, err := h.dial(context.Background(), l)
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		out, err := c.Run(context.Background(), "echo ok", nil)
		require.NoError(t, err)
		require.Equal(t, "ok\n", string(out))
	}
}

func TestSudoRefusedRecognisesSudosWords(t *testing.T) {
	t.Parallel()
	require.True(t, sudoRefused(errors.New("install: Process exited with status 1: Sorry, user rachel-ops is not allowed to execute '/usr/bin/install -T -m 0600' as root on x.")))
	require.True(t, sudoRefused(errors.New("install: Process exited with status 1: sudo: a password is required")))
	require.False(t, sudoRefused(errors.New("install: Process exited with status 1: install: cannot create regular file: Permission denied")))
}
