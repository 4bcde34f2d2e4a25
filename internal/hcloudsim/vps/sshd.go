package vps

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// handshakeTimeout bounds how long a client may take to authenticate, like sshd's LoginGraceTime.
const handshakeTimeout = 20 * time.Second

func newECDSASigner() (ssh.Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ecdsa host key: %w", err)
	}
	return ssh.NewSignerFromKey(k)
}

func newRSASigner() (ssh.Signer, error) {
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return nil, fmt.Errorf("generate rsa host key: %w", err)
	}
	return ssh.NewSignerFromKey(k)
}

// configureSSHD builds sshd's configuration: public-key authentication only, for the users
// cloud-config declared, never root.
func (m *Machine) configureSSHD() error {
	signers := m.hostSigners
	if m.cfg.SwapHostKey {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("fault swap host key: %w", err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return fmt.Errorf("fault swap host key: %w", err)
		}
		signers = []ssh.Signer{s}
		m.log.Info("vps: fault: sshd presents a swapped host key")
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: m.authorize,
		MaxAuthTries:      6,
		ServerVersion:     "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
	}
	for _, s := range signers {
		cfg.AddHostKey(s)
		m.presented = append(m.presented, s.PublicKey())
	}
	m.serverConfig = cfg
	return nil
}

// authorize admits a declared, non-root user presenting one of its authorized keys.
func (m *Machine) authorize(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if meta.User() == "root" {
		return nil, fmt.Errorf("root login refused")
	}
	a, ok := m.users[meta.User()]
	if !ok {
		return nil, fmt.Errorf("invalid user %q", meta.User())
	}
	if allowed := m.sshdAllowUsers(); allowed != nil && !slices.Contains(allowed, meta.User()) {
		return nil, fmt.Errorf("user %q not in AllowUsers", meta.User())
	}
	for _, k := range a.keys {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return &ssh.Permissions{Extensions: map[string]string{"pubkey-fp": ssh.FingerprintSHA256(key)}}, nil
		}
	}
	return nil, fmt.Errorf("key %s not authorized for %s", ssh.FingerprintSHA256(key), meta.User())
}

// sshdAllowUsers reads AllowUsers from sshd_config drop-ins (nil: no restriction). Patterns
// with wildcards or user@host forms are taken literally.
func (m *Machine) sshdAllowUsers() []string {
	var allowed []string
	for p, n := range m.fs.nodes {
		if n.dir || !strings.HasPrefix(p, "/etc/ssh/sshd_config.d/") || !strings.HasSuffix(p, ".conf") {
			continue
		}
		for line := range strings.SplitSeq(string(n.content), "\n") {
			fields := strings.Fields(line)
			if len(fields) > 1 && strings.EqualFold(fields[0], "AllowUsers") {
				allowed = append(allowed, fields[1:]...)
			}
		}
	}
	return allowed
}

// sshdPorts reads Port lines from sshd_config and its drop-ins, in the order sshd reads them
// (Debian's sshd_config includes sshd_config.d/*.conf first, in lexical order); mu must be held.
func (m *Machine) sshdPorts() []int {
	var files []string
	for p, n := range m.fs.nodes {
		if !n.dir && strings.HasPrefix(p, "/etc/ssh/sshd_config.d/") && strings.HasSuffix(p, ".conf") {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	if n, ok := m.fs.nodes["/etc/ssh/sshd_config"]; ok && !n.dir {
		files = append(files, "/etc/ssh/sshd_config")
	}
	var ports []int
	for _, p := range files {
		for line := range strings.SplitSeq(string(m.fs.nodes[p].content), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 2 && strings.EqualFold(fields[0], "Port") {
				if n, err := strconv.Atoi(fields[1]); err == nil && n > 0 && n < 65536 {
					ports = append(ports, n)
				}
			}
		}
	}
	return ports
}

// lateSSHD brings sshd up after SSHDelay on the address reserved at Start.
func (m *Machine) lateSSHD() {
	if !sleepCtx(m.ctx, m.cfg.SSHDelay) {
		return
	}
	ln, err := net.Listen("tcp", m.sshAddr)
	if err != nil {
		m.mu.Lock()
		m.state.SSHError = fmt.Sprintf("sshd listen on %s: %v", m.sshAddr, err)
		m.mu.Unlock()
		m.log.Error("vps: late sshd cannot listen", "addr", m.sshAddr, "err", err)
		return
	}
	m.serve(ln)
}

// serve starts accepting on ln, unless the machine is already stopping.
func (m *Machine) serve(ln net.Listener) {
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		_ = ln.Close()
		return
	}
	m.listener = ln
	m.state.SSHReady = true
	m.state.SSHReadyAt = time.Now()
	m.mu.Unlock()
	m.log.Info("vps: sshd up", "addr", m.sshAddr)
	m.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			if m.ctx.Err() != nil {
				m.mu.Unlock()
				_ = c.Close()
				return
			}
			m.conns[c] = struct{}{}
			m.mu.Unlock()
			m.wg.Go(func() { m.handleConn(c) })
		}
	})
}

func (m *Machine) handleConn(c net.Conn) {
	defer func() {
		_ = c.Close()
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, m.serverConfig)
	if err != nil {
		m.log.Debug("vps: ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	user := sc.User()
	m.log.Debug("vps: ssh login", "user", user, "key", sc.Permissions.Extensions["pubkey-fp"])
	m.wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.Prohibited, "only session channels are simulated")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		m.wg.Go(func() { m.handleSession(user, ch, creqs) })
	}
}

// handleSession serves one session channel: exactly one exec request, nothing interactive.
func (m *Machine) handleSession(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	started := false
	for req := range reqs {
		if req.Type != "exec" || started {
			// pty-req, shell, subsystem, env, x11…: refused, the machine runs commands only.
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			continue
		}
		started = true
		_ = req.Reply(true, nil)
		m.wg.Go(func() { m.exec(user, payload.Command, ch) })
	}
}

// countingReader counts stdin bytes a command consumed, without keeping them.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (m *Machine) exec(user, line string, ch ssh.Channel) {
	defer ch.Close()
	m.mu.Lock()
	a := m.users[user]
	m.mu.Unlock()
	// Output is buffered and sent when the command ends, so no command writes to the network
	// while holding the machine's lock.
	var stdout, stderr bytes.Buffer
	stdin := &countingReader{r: ch}
	p := &proc{ctx: m.ctx, m: m, cred: a.cred(), cwd: a.home, stdin: stdin, stdout: &stdout, stderr: &stderr}
	status := p.runLine(line)
	m.mu.Lock()
	m.commands = append(m.commands, Command{
		Source: "ssh", User: user, Line: line, ExitStatus: status,
		Stderr: stderr.String(), StdinBytes: stdin.n, At: time.Now(),
	})
	m.mu.Unlock()
	m.log.Debug("vps: ssh exec", "user", user, "line", line, "exit_status", status)
	_, _ = ch.Write(stdout.Bytes())
	_, _ = ch.Stderr().Write(stderr.Bytes())
	_ = ch.CloseWrite()
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
}
