package vps

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/rachelcloud/admin/internal/testkit"
)

const (
	loginUser   = "rachel-ops"
	serviceUser = "rachel"
	unit        = "rachel-assistant.service"
)

// injectionCommands are the exact commands of docs/contracts.md, in order.
var injectionCommands = []string{
	"sudo /usr/bin/install -T -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/.staging/claude-credentials.json",
	"sudo /usr/bin/mv -fT /etc/rachel/.staging/claude-credentials.json /etc/rachel/claude-credentials.json",
	"sudo /usr/bin/install -T -m 0640 -o root -g rachel /dev/stdin /etc/rachel/.staging/telegram.env",
	"sudo /usr/bin/mv -fT /etc/rachel/.staging/telegram.env /etc/rachel/telegram.env",
	"sudo /usr/bin/systemctl restart rachel-assistant.service",
	"sudo /usr/bin/systemctl show --property=ActiveState --property=SubState --property=Result --property=ExecMainStatus --property=NRestarts --property=ActiveEnterTimestampMonotonic rachel-assistant.service",
}

// isActive needs no sudo: systemd answers anyone.
const isActive = "systemctl is-active " + unit

// fakeAssistant is an executable at the unit's ExecStart (the simulator does not run it).
const fakeAssistant = "#!/bin/sh\nexec sleep infinity\n"

// sudoRule is the narrow rule of contracts.md: exactly the injection commands.
func contractSudoRule() string {
	cmds := make([]string, len(injectionCommands))
	for i, c := range injectionCommands {
		cmds[i] = strings.TrimPrefix(c, "sudo ")
	}
	return "ALL=(root) NOPASSWD: " + strings.Join(cmds, ", ")
}

type keys struct {
	hostSigner   ssh.Signer
	hostPrivPEM  string
	hostPubLine  string
	clientSigner ssh.Signer
	clientPub    string
}

func newKeys(t *testing.T) keys {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	require.NoError(t, err)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	clientSigner, err := ssh.NewSignerFromKey(clientPriv)
	require.NoError(t, err)
	return keys{
		hostSigner:   hostSigner,
		hostPrivPEM:  string(pem.EncodeToMemory(block)),
		hostPubLine:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))) + " root@rachel-sub-1",
		clientSigner: clientSigner,
		clientPub:    strings.TrimSpace(string(ssh.MarshalAuthorizedKey(clientSigner.PublicKey()))) + " rachel-cloud",
	}
}

const unitFile = `[Unit]
Description=Rachel assistant
After=network-online.target

[Service]
User=rachel
EnvironmentFile=/etc/rachel/telegram.env
ExecStart=/usr/local/bin/rachel-assistant
Restart=on-failure

[Install]
WantedBy=multi-user.target
`

// contractConfig is a cloud-config shaped like the one internal/cloudinit builds per contracts.md.
func contractConfig(k keys, callbackURL string) map[string]any {
	return map[string]any{
		"users": []any{
			map[string]any{
				"name":                loginUser,
				"shell":               "/bin/bash",
				"lock_passwd":         true,
				"ssh_authorized_keys": []string{k.clientPub},
				"sudo":                contractSudoRule(),
			},
			map[string]any{"name": serviceUser, "system": true, "shell": "/usr/sbin/nologin"},
		},
		"ssh_keys": map[string]any{
			"ed25519_private": k.hostPrivPEM,
			"ed25519_public":  k.hostPubLine,
		},
		"ssh_deletekeys":  true,
		"ssh_genkeytypes": []string{},
		"disable_root":    true,
		"ssh_pwauth":      false,
		"write_files": []any{
			map[string]any{"path": "/etc/systemd/system/" + unit, "permissions": "0644", "owner": "root:root", "content": unitFile},
			map[string]any{"path": "/usr/local/bin/rachel-assistant", "permissions": "0755", "owner": "root:root", "content": fakeAssistant},
		},
		"packages": []string{"ca-certificates", "nodejs"},
		"runcmd": []any{
			"set -e",
			[]string{"install", "-d", "-m", "0750", "-o", "root", "-g", serviceUser, "/etc/rachel"},
			[]string{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", "/etc/rachel/.staging"},
			"systemctl daemon-reload",
			"systemctl enable " + unit,
		},
		"phone_home": map[string]any{
			"url":   callbackURL,
			"post":  []string{"pub_key_ed25519", "instance_id", "hostname", "fqdn"},
			"tries": 10,
		},
	}
}

func render(t *testing.T, cfg map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return "#cloud-config\n" + string(b)
}

// callbackSink is an httptest server that records phone_home requests and can fail the first
// few.
type callbackSink struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []capturedRequest
	failures int
	got      chan struct{}
}

type capturedRequest struct {
	method, path, contentType, userAgent string
	form                                 url.Values
	rawBody                              string
}

func newSink(t *testing.T, failures int) *callbackSink {
	t.Helper()
	s := &callbackSink{failures: failures, got: make(chan struct{}, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		s.mu.Lock()
		s.reqs = append(s.reqs, capturedRequest{
			method: r.Method, path: r.URL.RequestURI(), contentType: r.Header.Get("Content-Type"),
			userAgent: r.Header.Get("User-Agent"), form: form, rawBody: string(body),
		})
		fail := len(s.reqs) <= s.failures
		s.mu.Unlock()
		if fail {
			http.Error(w, "try later", http.StatusServiceUnavailable)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		s.got <- struct{}{}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *callbackSink) requests() []capturedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]capturedRequest(nil), s.reqs...)
}

type bundle struct {
	keys keys
	sink *callbackSink
	m    *Machine
}

func setup(t *testing.T, mutate func(*Config, map[string]any)) bundle {
	t.Helper()
	k := newKeys(t)
	sink := newSink(t, 0)
	cc := contractConfig(k, sink.srv.URL+"/callback/tok123?server=$INSTANCE_ID")
	cfg := Config{
		InstanceID:            4711,
		Hostname:              "rachel-sub-1",
		IP:                    net.IPv4(127, 0, 0, 1),
		CloudInitDelay:        20 * time.Millisecond,
		CallbackRetryInterval: 10 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg, cc)
	}
	if cfg.UserData == "" {
		cfg.UserData = render(t, cc)
	}
	m, err := Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return bundle{keys: k, sink: sink, m: m}
}

func dial(addr, user string, signer ssh.Signer, hostKey ssh.PublicKey, extra ...ssh.AuthMethod) (*ssh.Client, error) {
	auth := extra
	if signer != nil {
		auth = append([]ssh.AuthMethod{ssh.PublicKeys(signer)}, extra...)
	}
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(hostKey),
		Timeout:         5 * time.Second,
	})
}

type result struct {
	stdout, stderr string
	status         int
}

func run(t *testing.T, c *ssh.Client, cmd string, stdin []byte) result {
	t.Helper()
	s, err := c.NewSession()
	require.NoError(t, err)
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	err = s.Run(cmd)
	status := 0
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		status = exitErr.ExitStatus()
	} else {
		require.NoError(t, err)
	}
	return result{stdout.String(), stderr.String(), status}
}

func (b bundle) login(t *testing.T) *ssh.Client {
	t.Helper()
	var c *ssh.Client
	testkit.Eventually(t, "an SSH login", func() error {
		var err error
		c, err = dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, b.keys.hostSigner.PublicKey())
		return err
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSSHAcceptsOnlyTheAuthorizedKeyOfADeclaredUser(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := b.login(t)
	require.Equal(t, result{stdout: loginUser + "\n"}, run(t, c, "id -un", nil))
	require.Equal(t, []ssh.PublicKey{b.keys.hostSigner.PublicKey()}, b.m.HostKeys())

	other := newKeys(t)
	host := b.keys.hostSigner.PublicKey()
	_, err := dial(b.m.SSHAddr(), loginUser, other.clientSigner, host)
	require.ErrorContains(t, err, "unable to authenticate", "a key that is not authorized")
	_, err = dial(b.m.SSHAddr(), serviceUser, b.keys.clientSigner, host)
	require.ErrorContains(t, err, "unable to authenticate", "the right key for another user")
	_, err = dial(b.m.SSHAddr(), "nobody", b.keys.clientSigner, host)
	require.ErrorContains(t, err, "unable to authenticate", "an undeclared user")
	_, err = dial(b.m.SSHAddr(), "root", b.keys.clientSigner, host)
	require.ErrorContains(t, err, "unable to authenticate", "root")
	_, err = dial(b.m.SSHAddr(), loginUser, nil, host,
		ssh.Password("hunter2"),
		ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil }))
	require.ErrorContains(t, err, "unable to authenticate", "password and keyboard-interactive")
}

func TestSSHRefusesShellAndPty(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := b.login(t)
	s, err := c.NewSession()
	require.NoError(t, err)
	defer s.Close()
	require.Error(t, s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}))
	require.Error(t, s.Shell())
}

func TestSwappedHostKeyFailsAClientPinningTheSeededKey(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config, _ map[string]any) { c.SwapHostKey = true })
	seeded := b.keys.hostSigner.PublicKey()
	testkit.Eventually(t, "sshd ready", func() bool { return b.m.State().SSHReady })
	_, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, seeded)
	require.ErrorContains(t, err, "host key mismatch")

	presented := b.m.HostKeys()
	require.Len(t, presented, 1)
	require.NotEqual(t, seeded.Marshal(), presented[0].Marshal())
	c, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, presented[0])
	require.NoError(t, err, "the swapped key itself is served")
	_ = c.Close()

	// The machine still reports the seeded key, so the callback passes and pinning must catch it.
	<-b.sink.got
	require.Equal(t, b.keys.hostPubLine, b.sink.requests()[0].form.Get("pub_key_ed25519"))
}

func TestLateSSHDRefusesUntilTheDelayHasPassed(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	start := time.Now()
	b := setup(t, func(c *Config, _ map[string]any) {
		c.SSHDelay = delay
		c.IP = net.IPv4(127, 0, 1, 7) // each machine has its own loopback address
	})
	require.True(t, strings.HasPrefix(b.m.SSHAddr(), "127.0.1.7:"))
	host := b.keys.hostSigner.PublicKey()
	_, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, host)
	require.Error(t, err)
	require.ErrorContains(t, err, "connection refused")
	require.False(t, b.m.State().SSHReady)

	var connectedAt time.Time
	testkit.Eventually(t, "sshd to accept a login once up", func() bool {
		c, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, host)
		if err != nil {
			return false
		}
		connectedAt = time.Now()
		_ = c.Close()
		return true
	})
	require.GreaterOrEqual(t, connectedAt.Sub(start), delay)
	st := b.m.State()
	require.True(t, st.SSHReady)
	require.GreaterOrEqual(t, st.SSHReadyAt.Sub(st.StartedAt), delay)
}

func TestSecretInjectionSequenceFromContracts(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	<-b.m.Done()
	c := b.login(t)
	m := b.m

	dir, ok := m.Dir("/etc/rachel")
	require.True(t, ok, "runcmd created /etc/rachel")
	require.Equal(t, File{Path: "/etc/rachel", Mode: fs.ModeDir | 0o750, Owner: "root", Group: serviceUser, WrittenAt: dir.WrittenAt}, dir)
	staging, ok := m.Dir("/etc/rachel/.staging")
	require.True(t, ok)
	require.Equal(t, File{Path: "/etc/rachel/.staging", Mode: fs.ModeDir | 0o700, Owner: "root", Group: "root", WrittenAt: staging.WrittenAt}, staging)
	require.Equal(t, map[string]string{unit: "inactive", sshUnit: "active"}, m.Services())

	// Restarting before the secrets exist fails the way systemd would (EnvironmentFile missing).
	r := run(t, c, injectionCommands[4], nil)
	require.Equal(t, 1, r.status)
	require.Contains(t, r.stderr, "Job for rachel-assistant.service failed")
	require.Equal(t, result{stdout: "failed\n", status: 3}, run(t, c, isActive, nil))

	creds := []byte(`{"accessToken":"sk-ant-oat01-x","refreshToken":"sk-ant-ort01-y","expiresAt":1767225600000}`)
	tg := []byte("TELEGRAM_BOT_TOKEN=123:abc\nTELEGRAM_OWNER_ID=42\n")
	// An old credentials file, replaced by the rename.
	require.Equal(t, 0, run(t, c, injectionCommands[0], []byte("old")).status)
	require.Equal(t, 0, run(t, c, injectionCommands[1], nil).status)

	for i, stdin := range [][]byte{creds, nil, tg, nil, nil} {
		r := run(t, c, injectionCommands[i], stdin)
		require.Equal(t, result{}, r, injectionCommands[i])
	}
	require.Equal(t, result{stdout: "active\n"}, run(t, c, isActive, nil))
	show := run(t, c, injectionCommands[5], nil)
	require.Equal(t, 0, show.status)
	require.Regexp(t, `^Result=success\nNRestarts=0\nExecMainStatus=0\nActiveState=active\nSubState=running\nActiveEnterTimestampMonotonic=\d+\n$`, show.stdout)
	require.Equal(t, "active", m.Services()[unit])
	require.Equal(t, 1, m.ServiceStarts(unit))

	for path, want := range map[string]File{
		"/etc/rachel/claude-credentials.json": {Mode: 0o600, Owner: serviceUser, Group: serviceUser, Content: creds},
		"/etc/rachel/telegram.env":            {Mode: 0o640, Owner: "root", Group: serviceUser, Content: tg},
	} {
		f, ok := m.File(path)
		require.True(t, ok, path)
		sum := sha256.Sum256(want.Content)
		want.Path, want.SHA256, want.Size, want.WrittenAt = path, hex.EncodeToString(sum[:]), len(want.Content), f.WrittenAt
		require.Equal(t, want, f)
	}
	for _, f := range m.Files() {
		require.NotContains(t, f.Path, ".staging/", "staged files are renamed away")
	}

	// The final rename replaced the old file in one step: no removal of the destination.
	var credEvents []string
	for _, ev := range m.FileEvents() {
		if strings.Contains(ev.Path, "claude-credentials") {
			credEvents = append(credEvents, ev.Op+" "+ev.From+" -> "+ev.Path)
		}
	}
	require.Equal(t, []string{
		"write  -> /etc/rachel/.staging/claude-credentials.json",
		"chown  -> /etc/rachel/.staging/claude-credentials.json",
		"rename /etc/rachel/.staging/claude-credentials.json -> /etc/rachel/claude-credentials.json",
		"write  -> /etc/rachel/.staging/claude-credentials.json",
		"chown  -> /etc/rachel/.staging/claude-credentials.json",
		"rename /etc/rachel/.staging/claude-credentials.json -> /etc/rachel/claude-credentials.json",
	}, credEvents)

	var sshCmds []Command
	for _, cmd := range m.Commands() {
		if cmd.Source == "ssh" {
			sshCmds = append(sshCmds, cmd)
		}
	}
	require.Len(t, sshCmds, 11)
	last := sshCmds[len(sshCmds)-7 : len(sshCmds)-2] // then is-active and show
	for i, cmd := range last {
		require.Equal(t, injectionCommands[i], cmd.Line)
		require.Equal(t, loginUser, cmd.User)
		require.Equal(t, 0, cmd.ExitStatus)
	}
	require.Equal(t, len(creds), last[0].StdinBytes)
	require.Equal(t, len(tg), last[2].StdinBytes)
}

func TestCommandsOutsideTheSudoRuleAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	<-b.m.Done()
	c := b.login(t)

	for _, tc := range []struct {
		cmd    string
		status int
		stderr string
	}{
		{"sudo /usr/bin/cat /etc/rachel/telegram.env", 1, "Sorry, user rachel-ops is not allowed to execute '/usr/bin/cat /etc/rachel/telegram.env' as root on rachel-sub-1."},
		{"sudo /usr/bin/install -m 0644 -o rachel -g rachel /dev/stdin /etc/rachel/telegram.env", 1, "is not allowed to execute"},
		{"sudo /usr/bin/systemctl restart ssh.service", 1, "is not allowed to execute"},
		{"sudo -u rachel " + strings.TrimPrefix(injectionCommands[5], "sudo "), 1, "is not allowed to execute"},
		{"sudo /usr/bin/systemctl is-active rachel-assistant.service", 1, "is not allowed to execute"},
		{"sudo nosuchtool", 1, "sudo: nosuchtool: command not found"},
		{"nosuchtool --flag", 127, "bash: nosuchtool: command not found"},
		{"install -m 0600 /dev/stdin /etc/evil", 1, "install: cannot create regular file '/etc/evil': Permission denied"},
		{"cat /etc/sudoers.d/90-cloud-init-users", 1, "Permission denied"},
		{"systemctl restart rachel-assistant.service", 1, "Interactive authentication required"},
		{"echo hi | sudo tee /etc/x", 2, "shell syntax is not simulated"},
	} {
		r := run(t, c, tc.cmd, []byte("payload"))
		require.Equal(t, tc.status, r.status, tc.cmd)
		require.Contains(t, r.stderr, tc.stderr, tc.cmd)
	}
	_, exists := b.m.File("/etc/evil")
	require.False(t, exists)

	// Bare names resolve through PATH to the paths the rule lists; arguments must match exactly.
	r := run(t, c, "sudo systemctl restart rachel-assistant.service", nil)
	require.Equal(t, 1, r.status, "allowed, and fails as systemd would without the environment file")
	require.Contains(t, r.stderr, "Job for rachel-assistant.service failed")
	r = run(t, c, "sudo systemctl restart rachel-assistant", nil)
	require.Equal(t, 1, r.status)
	require.Contains(t, r.stderr, "not allowed to execute '/usr/bin/systemctl restart rachel-assistant'")
	// Writing into the login user's home needs no sudo.
	require.Equal(t, result{}, run(t, c, "install -m 0640 /dev/stdin notes.txt", []byte("x")))
	f, ok := b.m.File("/home/rachel-ops/notes.txt")
	require.True(t, ok)
	require.Equal(t, fs.FileMode(0o640), f.Mode)
	require.Equal(t, loginUser, f.Owner)
}

func TestCallbackIsSentLikeCloudInitPhoneHome(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	<-b.sink.got
	reqs := b.sink.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, http.MethodPost, r.method)
	require.Equal(t, "/callback/tok123?server=4711", r.path)
	require.Equal(t, "application/x-www-form-urlencoded", r.contentType)
	require.True(t, strings.HasPrefix(r.userAgent, "Cloud-Init/"))
	require.Equal(t, url.Values{
		"pub_key_ed25519": {b.keys.hostPubLine},
		"instance_id":     {"4711"},
		"hostname":        {"rachel-sub-1"},
		"fqdn":            {"rachel-sub-1"},
	}, r.form)
	require.True(t, strings.HasPrefix(r.rawBody, "pub_key_ed25519=ssh-ed25519+AAAA"), "fields in post-list order")

	testkit.Eventually(t, "the callback delivered", func() bool { return b.m.State().CallbackDelivered })
	st := b.m.State()
	require.Equal(t, 1, st.CallbackAttempts)
	require.Equal(t, http.StatusNoContent, st.CallbackStatus)
	require.Empty(t, st.CallbackError)
	require.Equal(t, b.sink.srv.URL+"/callback/tok123?server=4711", st.CallbackURL)
	require.True(t, st.CloudInitDone)
	require.Equal(t, []string{"ca-certificates", "nodejs"}, st.Packages)
	require.Empty(t, st.BootError)
	require.Empty(t, st.Warnings)
}

func TestCallbackRetriesUntilTries(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	sink := newSink(t, 2)
	cc := contractConfig(k, sink.srv.URL+"/cb/$INSTANCE_ID")
	cc["phone_home"] = map[string]any{"url": sink.srv.URL + "/cb/${INSTANCE_ID}", "post": "all", "tries": 3}
	m, err := Start(t.Context(), Config{InstanceID: 9, Hostname: "vm9.example.org", UserData: render(t, cc), CallbackRetryInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	testkit.Eventually(t, "the callback delivered", func() bool { return m.State().CallbackDelivered })
	require.NoError(t, m.Stop())

	reqs := sink.requests()
	require.Len(t, reqs, 3)
	require.Equal(t, "/cb/9", reqs[2].path)
	require.Equal(t, url.Values{
		"pub_key_rsa":     {"N/A"},
		"pub_key_ecdsa":   {"N/A"},
		"pub_key_ed25519": {k.hostPubLine},
		"instance_id":     {"9"},
		"hostname":        {"vm9"},
		"fqdn":            {"vm9.example.org"},
	}, reqs[2].form)
	require.Equal(t, 3, m.State().CallbackAttempts)

	// With every try failing, the machine gives up after tries and says so.
	failing := newSink(t, 100)
	cc["phone_home"] = map[string]any{"url": failing.srv.URL + "/cb", "tries": 2}
	m, err = Start(t.Context(), Config{InstanceID: 10, Hostname: "vm10", UserData: render(t, cc), CallbackRetryInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	testkit.Eventually(t, "a warning", func() bool { return len(m.State().Warnings) > 0 })
	require.NoError(t, m.Stop())
	st := m.State()
	require.Len(t, failing.requests(), 2)
	require.False(t, st.CallbackDelivered)
	require.Equal(t, http.StatusServiceUnavailable, st.CallbackStatus)
	require.Contains(t, st.CallbackError, "503")
	require.Contains(t, st.Warnings[0], "failed to post")
	require.NotContains(t, st.Warnings[0], "/cb", "the token-bearing path stays out of warnings")
}

func TestLostCallbackNeverArrives(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config, _ map[string]any) { c.LoseCallback = true })
	<-b.m.Done()
	require.NoError(t, b.m.Stop()) // waits for the goroutine that would have posted
	require.Empty(t, b.sink.requests())
	st := b.m.State()
	require.True(t, st.CloudInitDone)
	require.Zero(t, st.CallbackAttempts)
	require.True(t, st.CallbackSentAt.IsZero())
}

func TestMalformedUserDataLeavesTheMachineDark(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		mutate func(map[string]any)
		raw    func(string) string
		want   string
	}{
		"missing header":   {raw: func(s string) string { return strings.TrimPrefix(s, "#cloud-config\n") }, want: "does not start with #cloud-config"},
		"shell script":     {raw: func(string) string { return "#!/bin/sh\necho hi\n" }, want: "does not start with #cloud-config"},
		"empty":            {raw: func(string) string { return "\n" }, want: "user data is empty"},
		"bad yaml":         {raw: func(s string) string { return s + "\nusers: [unclosed\n" }, want: "not valid YAML"},
		"not a mapping":    {raw: func(string) string { return "#cloud-config\n- a\n- b\n" }, want: "top level must be a mapping"},
		"users not a list": {mutate: func(c map[string]any) { c["users"] = map[string]any{"name": "x"} }, want: "users: want a list"},
		"bad host key": {mutate: func(c map[string]any) {
			c["ssh_keys"] = map[string]any{"ed25519_private": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"}
		}, want: "ed25519_private does not parse"},
		"public key of another private key": {mutate: func(c map[string]any) {
			c["ssh_keys"].(map[string]any)["ed25519_public"] = newKeys(t).hostPubLine
		}, want: "ed25519_public does not belong to ed25519_private"},
		"no host key at all": {mutate: func(c map[string]any) { delete(c, "ssh_keys") }, want: "no host key"},
		"bad base64": {mutate: func(c map[string]any) {
			c["write_files"] = []any{map[string]any{"path": "/etc/x", "encoding": "b64", "content": "!!!"}}
		}, want: "not valid base64"},
		"bad sudo rule": {mutate: func(c map[string]any) {
			c["users"].([]any)[0].(map[string]any)["sudo"] = "NOPASSWD ALL"
		}, want: "missing \"HOSTS=\""},
		"bad permissions": {mutate: func(c map[string]any) {
			c["write_files"] = []any{map[string]any{"path": "/etc/x", "permissions": "rw-r--r--"}}
		}, want: "invalid permissions"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *Config, cc map[string]any) {
				if tc.mutate != nil {
					tc.mutate(cc)
				}
				if tc.raw != nil {
					c.UserData = tc.raw(render(t, cc))
				}
			})
			st := b.m.State()
			require.Contains(t, st.BootError, tc.want)
			require.False(t, st.SSHReady)
			_, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, b.keys.hostSigner.PublicKey())
			require.ErrorContains(t, err, "connection refused")
			require.NoError(t, b.m.Stop())
			require.Empty(t, b.sink.requests())
			select {
			case <-b.m.Done():
				t.Fatal("cloud-init must not finish on a machine that did not boot")
			default:
			}
		})
	}
}

func TestStopEndsSessionsAndContextCancellationStopsTheMachine(t *testing.T) {
	t.Parallel()
	// A session blocked in `cloud-init status --wait` ends when the machine stops.
	b := setup(t, func(c *Config, _ map[string]any) { c.CloudInitDelay = time.Hour })
	c := b.login(t)
	s, err := c.NewSession()
	require.NoError(t, err)
	require.NoError(t, s.Start("cloud-init status --wait"))
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	stopped := make(chan error, 1)
	go func() { stopped <- b.m.Stop() }()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	require.Error(t, <-waited)

	ctx, cancel := context.WithCancel(t.Context())
	k := newKeys(t)
	m, err := Start(ctx, Config{InstanceID: 1, Hostname: "h", UserData: render(t, contractConfig(k, "http://127.0.0.1:1/cb"))})
	require.NoError(t, err)
	require.True(t, m.State().SSHReady)
	cancel()
	testkit.Eventually(t, "sshd to stop listening", func() bool {
		_, err := net.DialTimeout("tcp", m.SSHAddr(), time.Second)
		return err != nil
	})
	require.NoError(t, m.Stop())
	require.False(t, m.State().SSHReady)
}

func TestCloudInitStatusAndFilesFromBoot(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config, _ map[string]any) { c.CloudInitDelay = 100 * time.Millisecond })
	c := b.login(t)
	// On a busy machine the login may outlast the delay: "running" before the final stage,
	// "done" only once the machine says cloud-init finished.
	if got := run(t, c, "cloud-init status", nil); got.stdout != "status: running\n" {
		require.Equal(t, result{stdout: "status: done\n"}, got)
		require.True(t, isClosed(b.m.Done()), "status done before cloud-init's final stage ran")
	}
	require.Equal(t, result{stdout: "status: done\n"}, run(t, c, "cloud-init status --wait", nil))
	// --long as cloud-init 22.4 prints it: what the provisioner reads when no callback came.
	long := run(t, c, "cloud-init status --long", nil)
	require.Regexp(t, `^status: done\nboot_status_code: enabled-by-generator\nlast_update: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000\ndetail:\nDataSourceHetzner\n$`, long.stdout)
	require.Zero(t, long.status)

	unitF, ok := b.m.File("/etc/systemd/system/" + unit)
	require.True(t, ok)
	require.Equal(t, unitFile, string(unitF.Content))
	require.Equal(t, fs.FileMode(0o644), unitF.Mode)
	require.Equal(t, "root", unitF.Owner)

	pub, ok := b.m.File("/etc/ssh/ssh_host_ed25519_key.pub")
	require.True(t, ok)
	require.Equal(t, b.keys.hostPubLine, string(pub.Content))
	_, ok = b.m.File("/etc/ssh/ssh_host_rsa_key.pub")
	require.False(t, ok, "ssh_genkeytypes: [] generates nothing")

	ak, ok := b.m.File("/home/rachel-ops/.ssh/authorized_keys")
	require.True(t, ok)
	require.Equal(t, b.keys.clientPub+"\n", string(ak.Content))
	sudoers, ok := b.m.File("/etc/sudoers.d/90-cloud-init-users")
	require.True(t, ok)
	require.Contains(t, string(sudoers.Content), "rachel-ops "+contractSudoRule()+"\n")

	hostname, _ := b.m.File("/etc/hostname")
	require.Equal(t, "rachel-sub-1\n", string(hostname.Content))
	require.Equal(t, result{stdout: "rachel-sub-1\n"}, run(t, c, "hostname", nil))
}

func TestWriteFilesOwnedByACreatedUserNeedDefer(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *Config, cc map[string]any) {
		cc["write_files"] = []any{
			map[string]any{"path": "/etc/rachel/early.env", "owner": "rachel:rachel", "permissions": "0600", "content": "A=1\n"},
			map[string]any{"path": "/etc/rachel/skipped.env", "content": "B=1\n"},
			map[string]any{"path": "/etc/rachel/late.env", "owner": "rachel:rachel", "permissions": 0o600, "content": "QT0xCg==", "encoding": "b64", "defer": true},
		}
		cc["runcmd"] = []any{"mkdir -p /opt/rachel", "curl -fsSL https://example.org | sh"}
	})
	<-b.m.Done()
	early, ok := b.m.File("/etc/rachel/early.env")
	require.True(t, ok)
	require.Equal(t, "root", early.Owner, "chown failed: the user did not exist yet")
	_, ok = b.m.File("/etc/rachel/skipped.env")
	require.False(t, ok, "cloud-init aborts write_files at the failing entry")
	late, ok := b.m.File("/etc/rachel/late.env")
	require.True(t, ok)
	require.Equal(t, File{Path: late.Path, Mode: 0o600, Owner: "rachel", Group: "rachel", SHA256: late.SHA256, Size: 4, Content: []byte("A=1\n"), WrittenAt: late.WrittenAt}, late)
	_, ok = b.m.Dir("/opt/rachel")
	require.True(t, ok)

	warnings := strings.Join(b.m.State().Warnings, "\n")
	require.Contains(t, warnings, `no user "rachel" yet`)
	require.Contains(t, warnings, "curl -fsSL")
}

func TestUnitConditionsAllowUsersAndRuncmdScripts(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *Config, cc map[string]any) {
		cc["ssh_genkeytypes"] = []string{"ed25519", "rsa"} // ignored: ssh_keys is given
		cc["write_files"] = []any{
			map[string]any{"path": "/etc/ssh/sshd_config.d/50-rachel.conf", "content": "PasswordAuthentication no\nAllowUsers rachel-ops\n"},
			map[string]any{"path": "/etc/systemd/system/" + unit, "content": "[Unit]\nConditionPathExists=/etc/rachel/telegram.env\n[Service]\nUser=rachel\n"},
		}
		users := cc["users"].([]any)
		cc["users"] = append(users, map[string]any{"name": "intruder", "ssh_authorized_keys": users[0].(map[string]any)["ssh_authorized_keys"]})
		cc["runcmd"] = []any{
			"install -d -m 0750 -o root -g rachel /etc/rachel; false && echo never; install -d -m 0700 /etc/rachel/.staging",
			[]string{"sh", "-c", "mkdir -p /var/lib/rachel && chown -R rachel:rachel /var/lib/rachel || echo failed"},
		}
	})
	<-b.m.Done()
	require.Empty(t, b.m.State().Warnings)
	require.Len(t, b.m.HostKeys(), 1, "no key generated next to the seeded one")
	lib, ok := b.m.Dir("/var/lib/rachel")
	require.True(t, ok)
	require.Equal(t, "rachel", lib.Owner)

	_, err := dial(b.m.SSHAddr(), "intruder", b.keys.clientSigner, b.keys.hostSigner.PublicKey())
	require.ErrorContains(t, err, "unable to authenticate", "AllowUsers in the sshd drop-in")

	c := b.login(t)
	// The condition skips the start: restart succeeds, the unit stays inactive.
	require.Equal(t, result{}, run(t, c, injectionCommands[4], nil))
	require.Equal(t, result{stdout: "inactive\n", status: 3}, run(t, c, isActive, nil))
	require.Equal(t, 0, b.m.ServiceStarts(unit))
	require.Equal(t, 0, run(t, c, injectionCommands[2], []byte("T=1\n")).status)
	require.Equal(t, 0, run(t, c, injectionCommands[3], nil).status)
	require.Equal(t, result{}, run(t, c, injectionCommands[4], nil))
	require.Equal(t, result{stdout: "active\n"}, run(t, c, isActive, nil))
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
