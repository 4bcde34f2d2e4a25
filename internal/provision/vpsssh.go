package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// maxCommandOutput bounds what one command on a VPS may print, per stream. Injection's commands
// print a few hundred bytes; a VPS that floods is cut off instead of filling the worker's memory.
const maxCommandOutput = 256 << 10

// errOutputLimit is returned when a command printed more than [maxCommandOutput].
var errOutputLimit = fmt.Errorf("printed more than %d bytes", maxCommandOutput)

// sshLimits bound one SSH connection to a VPS (issue 11, security 4): a VPS that stalls, floods
// or stops answering cannot hang or exhaust the worker.
type sshLimits struct {
	handshake time.Duration // dial and handshake
	command   time.Duration // one command, from session open to exit status
	keepalive time.Duration // keepalive interval, and how long an answer may take
	output    int           // bytes per stream and command
}

// sshLimits are the bounds these timings give an SSH connection to a VPS.
func (t Timings) sshLimits() sshLimits {
	return sshLimits{handshake: t.SSHTimeout, command: t.SSHCommand, keepalive: t.SSHKeepalive, output: maxCommandOutput}
}

// vpsConn is one SSH connection to a VPS. It is closed — ending every command on it — when the
// context it was dialled with ends, when a command outlives its deadline or prints too much,
// or when the VPS leaves a keepalive unanswered. Commands then fail with the reason.
type vpsConn struct {
	conn      net.Conn
	client    *ssh.Client
	limits    sshLimits
	stopCtx   func() bool
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	why       error // why the connection was closed from this side; nil while open
}

// dialVPS connects and authenticates within limits.handshake (and ctx), then keeps the
// connection bound to ctx.
func dialVPS(ctx context.Context, addr string, cc *ssh.ClientConfig, l sshLimits) (*vpsConn, error) {
	d := net.Dialer{Timeout: l.handshake}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, context.Cause(ctx))
		}
		return nil, err
	}
	deadline := time.Now().Add(l.handshake)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	// The deadline covers a VPS that stalls mid-handshake; this covers a job cancelled meanwhile.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cc)
	if !stop() {
		if err == nil {
			_ = c.Close()
		}
		_ = conn.Close()
		return nil, fmt.Errorf("ssh handshake: %w", context.Cause(ctx))
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	v := &vpsConn{conn: conn, client: ssh.NewClient(c, chans, reqs), limits: l, done: make(chan struct{})}
	v.stopCtx = context.AfterFunc(ctx, func() { v.closeWith(fmt.Errorf("connection closed: %w", context.Cause(ctx))) })
	go v.keepalive()
	return v, nil
}

// closeWith closes the connection, remembering why (the first reason wins).
func (v *vpsConn) closeWith(why error) {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.why = why
		v.mu.Unlock()
		close(v.done)
		_ = v.client.Close()
	})
}

func (v *vpsConn) closedBecause() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.why
}

// Close ends the connection.
func (v *vpsConn) Close() error {
	v.stopCtx()
	v.closeWith(errors.New("connection closed"))
	return nil
}

// keepalive sends OpenSSH's keepalive request every interval; a VPS that does not answer
// within the interval (any answer counts: OpenSSH answers "failure") is taken for dead.
func (v *vpsConn) keepalive() {
	t := time.NewTicker(v.limits.keepalive)
	defer t.Stop()
	for {
		select {
		case <-v.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := v.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(v.limits.keepalive)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				v.closeWith(fmt.Errorf("keepalive failed: %w", err))
				return
			}
		case <-timer.C:
			v.closeWith(fmt.Errorf("the VPS left a keepalive unanswered for %s", v.limits.keepalive))
			return
		case <-v.done:
			timer.Stop()
			return
		}
	}
}

// cappedBuffer keeps at most limit bytes and fails the write that goes beyond, which ends the
// copy from the channel; overflow is then called once.
type cappedBuffer struct {
	buf      bytes.Buffer
	limit    int
	overflow func()
	once     sync.Once
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		b.buf.Write(p[:b.limit-b.buf.Len()])
		b.once.Do(b.overflow)
		return 0, errOutputLimit
	}
	return b.buf.Write(p)
}

// Run runs one command in its own session, with stdin (secret bytes never go on a command
// line), and returns its stdout. It fails when the command exits non-zero (with its stderr),
// outlives limits.command or ctx, or prints more than limits.output on either stream; in those
// last cases the whole connection is closed, since a stalled session cannot be taken back.
func (v *vpsConn) Run(ctx context.Context, cmd string, stdin []byte) ([]byte, error) {
	if why := v.closedBecause(); why != nil {
		return nil, fmt.Errorf("%s: %w", program(cmd), why)
	}
	cctx, cancel := context.WithTimeout(ctx, v.limits.command)
	defer cancel()
	stop := context.AfterFunc(cctx, func() {
		if ctx.Err() != nil {
			v.closeWith(fmt.Errorf("connection closed: %w", context.Cause(ctx)))
			return
		}
		v.closeWith(fmt.Errorf("did not finish within %s; connection closed", v.limits.command))
	})
	defer stop()
	overflow := func() { v.closeWith(fmt.Errorf("%w; connection closed", errOutputLimit)) }
	stdout := &cappedBuffer{limit: v.limits.output, overflow: overflow}
	stderr := &cappedBuffer{limit: v.limits.output, overflow: overflow}

	s, err := v.client.NewSession()
	if err != nil {
		if why := v.closedBecause(); why != nil {
			err = why
		}
		return nil, fmt.Errorf("%s: open session: %w", program(cmd), err)
	}
	defer s.Close()
	s.Stdout, s.Stderr, s.Stdin = stdout, stderr, bytes.NewReader(stdin)
	err = s.Run(cmd)
	if why := v.closedBecause(); why != nil {
		return nil, fmt.Errorf("%s: %w", program(cmd), why)
	}
	if err != nil {
		return stdout.buf.Bytes(), fmt.Errorf("%s: %w: %s", program(cmd), err, strings.TrimSpace(stderr.buf.String()))
	}
	return stdout.buf.Bytes(), nil
}

// program names a command line's program for error messages (never its arguments).
func program(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 1 && f[0] == "sudo" {
		f = f[1:]
	}
	if len(f) == 0 {
		return "(empty command)"
	}
	return f[0]
}
