// Package vps simulates the machine behind a simulated Hetzner server: it boots from the
// server's user data as cloud-init would, serves SSH on its own loopback address with the
// seeded host key, runs the few commands a provisioner sends, records what was written, and
// phones home like cloud-init's phone_home module.
package vps

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config describes one simulated machine and the faults it shows.
type Config struct {
	InstanceID int64  // the Hetzner server ID, cloud-init's instance-id
	Hostname   string // the server name, cloud-init's local-hostname
	UserData   string // cloud-config as given to the server
	IP         net.IP // loopback address sshd listens on (127.x.y.z); nil means 127.0.0.1
	// SSHPort is sshd's port when the user data's sshd_config drop-ins name none (a real sshd
	// would use 22, which needs privileges); 0 picks a free port. A `Port` line wins.
	SSHPort int

	CloudInitDelay time.Duration // from Start until cloud-init's final stage runs and phones home
	SSHDelay       time.Duration // from Start until sshd accepts connections (fault "late sshd")
	SwapHostKey    bool          // fault: sshd presents a fresh host key instead of the seeded one
	LoseCallback   bool          // fault: the phone_home request is never sent

	// CallbackRetryInterval is the pause between phone_home tries; cloud-init waits 3 s.
	// Zero means 3 s (already time-scaled callers pass their own).
	CallbackRetryInterval time.Duration
	HTTPClient            *http.Client // for phone_home; nil means a client with a 10 s timeout
	Logger                *slog.Logger // nil discards
}

// State is what an observer can see of the machine's boot.
type State struct {
	InstanceID int64
	Hostname   string
	StartedAt  time.Time

	BootError string   // why cloud-init rejected the user data; the machine is then dark
	Warnings  []string // what cloud-init would log as warnings (ignored keys, failed runcmd lines, …)
	Packages  []string // packages cloud-init installed

	SSHReady   bool // sshd accepts connections
	SSHReadyAt time.Time
	SSHError   string // sshd could not listen after a delay

	CloudInitDone   bool // the final stage ran (what `cloud-init status` reports as done)
	CloudInitDoneAt time.Time
	// CloudInitErrors are the module errors cloud-init records in status.json (then `cloud-init
	// status` says error), in its words: ('scripts-user', RuntimeError('Runparts: …')).
	CloudInitErrors []string

	CallbackURL       string     // phone_home URL after $INSTANCE_ID substitution
	CallbackForm      url.Values // the form fields posted
	CallbackAttempts  int
	CallbackSentAt    time.Time // when the last attempt was sent
	CallbackStatus    int       // HTTP status of the last attempt, 0 if none or no response
	CallbackError     string    // why the last attempt failed, "" after success
	CallbackDelivered bool      // a try got a 2xx answer
}

// Command is one command the machine ran: over SSH, or from cloud-config's bootcmd/runcmd.
type Command struct {
	Source     string // "ssh", "bootcmd", "runcmd" or "runuser" (Machine.RunAs)
	User       string // the login user (for sudo, the user who ran sudo)
	Line       string // the command line as received
	ExitStatus int
	Stderr     string
	StdinBytes int // how much stdin the command consumed (the bytes themselves are not kept)
	At         time.Time
}

// Machine is one running simulated VPS.
type Machine struct {
	cfg       Config
	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopOnce  sync.Once
	finalDone chan struct{}
	sshAddr   string
	hostname  string // the system hostname (cloud-config `hostname` wins over the server name)

	serverConfig *ssh.ServerConfig
	hostSigners  []ssh.Signer
	presented    []ssh.PublicKey

	mu         sync.Mutex
	state      State
	fs         *fsys
	users      map[string]*account
	groups     map[string]int
	units      map[string]*unitRun
	enabled    map[string]bool
	unitStarts map[string]int
	commands   []Command
	pubKeys    map[string]string // phone_home field -> the .pub file's content
	listener   net.Listener
	conns      map[net.Conn]struct{}
	cc         *cloudConfig
}

type account struct {
	name   string
	uid    int
	groups []string // primary first
	home   string
	shell  string
	keys   []ssh.PublicKey
	sudo   []sudoRule
}

func (a *account) cred() cred { return cred{user: a.name, groups: slices.Clone(a.groups)} }

const sshUnit = "ssh.service"

// Start boots the machine. It fails only when sshd cannot listen; user data that cloud-init
// would reject leaves a dark machine whose State says why. ctx bounds the machine's life:
// cancelling it (or Stop) shuts everything down.
func Start(ctx context.Context, cfg Config) (*Machine, error) {
	if cfg.IP == nil {
		cfg.IP = net.IPv4(127, 0, 0, 1)
	}
	if cfg.CallbackRetryInterval <= 0 {
		cfg.CallbackRetryInterval = 3 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mctx, cancel := context.WithCancel(ctx)
	m := &Machine{
		cfg:        cfg,
		log:        cfg.Logger.With("instance_id", cfg.InstanceID, "hostname", cfg.Hostname),
		ctx:        mctx,
		cancel:     cancel,
		finalDone:  make(chan struct{}),
		hostname:   cfg.Hostname,
		users:      map[string]*account{},
		groups:     map[string]int{},
		units:      map[string]*unitRun{},
		enabled:    map[string]bool{},
		unitStarts: map[string]int{},
		pubKeys:    map[string]string{},
		conns:      map[net.Conn]struct{}{},
	}
	m.fs = newFS(time.Now)
	m.state = State{InstanceID: cfg.InstanceID, Hostname: cfg.Hostname, StartedAt: time.Now()}
	m.addBaseAccounts()

	cc, err := parseUserData(cfg.UserData)
	if err == nil {
		m.cc = cc
		err = m.initStage(cc)
	}
	if err != nil {
		m.mu.Lock()
		m.state.BootError = err.Error()
		m.mu.Unlock()
		m.log.Warn("vps: cloud-init rejected the user data; the machine stays dark", "err", err)
		// Nothing listens: clients see "connection refused" at the address sshd would have.
		if ln, lerr := net.Listen("tcp", net.JoinHostPort(cfg.IP.String(), strconv.Itoa(cfg.SSHPort))); lerr == nil {
			m.sshAddr = ln.Addr().String()
			_ = ln.Close()
		} else {
			m.sshAddr = net.JoinHostPort(cfg.IP.String(), strconv.Itoa(cfg.SSHPort))
		}
		m.watch()
		return m, nil
	}
	// sshd reads its port from the drop-ins cloud-init wrote (sshd's default 22 would need
	// privileges here, so Config.SSHPort stands in when none names one).
	port := cfg.SSHPort
	m.mu.Lock()
	if ports := m.sshdPorts(); len(ports) > 0 {
		port = ports[0]
		if len(ports) > 1 {
			m.warnf("sshd: Port is given %d times; the simulator listens on the first, %d, only", len(ports), port)
		}
	}
	m.mu.Unlock()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.IP.String(), strconv.Itoa(port)))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("vps %d: sshd listen: %w", cfg.InstanceID, err)
	}
	m.sshAddr = ln.Addr().String()
	if err := m.configureSSHD(); err != nil {
		_ = ln.Close()
		cancel()
		return nil, fmt.Errorf("vps %d: %w", cfg.InstanceID, err)
	}
	m.watch()
	if cfg.SSHDelay <= 0 {
		m.serve(ln)
	} else {
		// Closing now makes early clients see "connection refused", as with a real late sshd.
		_ = ln.Close()
		m.wg.Go(m.lateSSHD)
	}
	m.wg.Go(m.finalStage)
	return m, nil
}

// watch ends the machine when its context ends.
func (m *Machine) watch() {
	m.wg.Go(func() {
		<-m.ctx.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.listener != nil {
			_ = m.listener.Close()
		}
		for c := range m.conns {
			_ = c.Close()
		}
		m.state.SSHReady = false
	})
}

// Stop shuts the machine down and waits until all its goroutines have ended.
func (m *Machine) Stop() error {
	m.stopOnce.Do(m.cancel)
	m.wg.Wait()
	return nil
}

// State returns a snapshot of the boot state.
func (m *Machine) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state
	s.Warnings = slices.Clone(s.Warnings)
	s.CloudInitErrors = slices.Clone(s.CloudInitErrors)
	s.Packages = slices.Clone(s.Packages)
	if s.CallbackForm != nil {
		s.CallbackForm = maps.Clone(s.CallbackForm)
	}
	return s
}

// Files returns the machine's regular files, sorted by path.
func (m *Machine) Files() []File {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fs.files()
}

// File returns one file and whether it exists.
func (m *Machine) File(path string) (File, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.fs.nodes[path]
	if !ok || n.dir || n.link != "" {
		return File{}, false
	}
	return n.file(path), true
}

// Link returns a symbolic link's target and whether path is a link.
func (m *Machine) Link(path string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.fs.nodes[path]
	if !ok || n.link == "" {
		return "", false
	}
	return n.link, true
}

// RunAs runs a command line on the machine as user, as `runuser -u USER -- sh -c LINE` would
// on a real one (tests use it to act as the assistant's user, which has no SSH login). It is
// recorded with Source "runuser".
func (m *Machine) RunAs(user, line string, stdin []byte) (stdout, stderr string, status int) {
	m.mu.Lock()
	a, ok := m.users[user]
	m.mu.Unlock()
	if !ok {
		return "", "runuser: user " + user + " does not exist\n", 1
	}
	var out, errb strings.Builder
	p := &proc{ctx: m.ctx, m: m, cred: a.cred(), cwd: "/", stdin: bytes.NewReader(stdin), stdout: &out, stderr: &errb}
	status = p.runLine(line)
	m.mu.Lock()
	m.commands = append(m.commands, Command{Source: "runuser", User: user, Line: line, ExitStatus: status,
		Stderr: errb.String(), StdinBytes: len(stdin), At: time.Now()})
	m.mu.Unlock()
	return out.String(), errb.String(), status
}

// Dir returns a directory's mode (with fs.ModeDir) and ownership, for checks such as
// "/etc/rachel is 0700 rachel:rachel".
func (m *Machine) Dir(path string) (File, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.fs.nodes[path]
	if !ok || !n.dir || n.link != "" {
		return File{}, false
	}
	f := n.file(path)
	f.SHA256 = ""
	f.Mode |= fs.ModeDir
	return f, true
}

// FileEvents returns every change to the file tree in order (writes, renames, removals, …).
func (m *Machine) FileEvents() []FileEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.fs.history)
}

// Commands returns every command run so far, in order.
func (m *Machine) Commands() []Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.commands)
}

// SSHAddr is the host:port sshd listens on (or will, once it is up).
func (m *Machine) SSHAddr() string { return m.sshAddr }

// Services returns the state of every unit: "active", "inactive" or "failed".
func (m *Machine) Services() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{sshUnit: m.unitState(sshUnit)}
	for p, n := range m.fs.nodes {
		for _, d := range unitDirs {
			if rest, ok := strings.CutPrefix(p, d+"/"); ok && !n.dir && !strings.Contains(rest, "/") {
				out[rest] = m.unitState(rest)
			}
		}
	}
	for u := range m.units {
		out[u] = m.unitState(u)
	}
	return out
}

// ServiceStarts reports how often a unit was (re)started successfully.
func (m *Machine) ServiceStarts(unit string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unitStarts[unitName(unit)]
}

// HostKeys returns the public keys sshd presents (the seeded ones unless SwapHostKey is set).
func (m *Machine) HostKeys() []ssh.PublicKey { return slices.Clone(m.presented) }

// Done is closed when cloud-init's final stage has run.
func (m *Machine) Done() <-chan struct{} { return m.finalDone }

func (m *Machine) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.state.Warnings = append(m.state.Warnings, msg)
	m.log.Info("vps: cloud-init warning", "warning", msg)
}

func (m *Machine) addBaseAccounts() {
	for i, g := range []string{"root", "daemon", "bin", "sys", "adm", "tty", "disk", "sudo", "users", "systemd-journal", "ssh", "nogroup"} {
		gid := i
		switch g {
		case "users":
			gid = 100
		case "nogroup":
			gid = 65534
		}
		m.groups[g] = gid
	}
	m.users["root"] = &account{name: "root", uid: 0, groups: []string{"root"}, home: "/root", shell: "/bin/bash"}
}

// ids returns the numeric uid and gids of c, for id(1).
func (m *Machine) ids(c cred) (int, []int) {
	uid := 0
	if a := m.users[c.user]; a != nil {
		uid = a.uid
	}
	gids := make([]int, len(c.groups))
	for i, g := range c.groups {
		gids[i] = m.groups[g]
	}
	return uid, gids
}

// ownerGroup resolves install's -o/-g: defaults are the caller and its primary group.
func (m *Machine) ownerGroup(c cred, owner, group string) (string, string, string) {
	if owner == "" {
		owner = c.user
	} else if _, ok := m.users[owner]; !ok {
		return "", "", fmt.Sprintf("invalid user '%s'", owner)
	}
	if group == "" {
		group = c.groups[0]
	} else if _, ok := m.groups[group]; !ok {
		return "", "", fmt.Sprintf("invalid group '%s'", group)
	}
	return owner, group, ""
}

// setAttrs applies ownership, then mode, the order install(1) uses.
func (m *Machine) setAttrs(c cred, p string, mode fs.FileMode, owner, group string) error {
	n, err := m.fs.lookup(c, p)
	if err != nil {
		return err
	}
	if n.owner != owner || n.group != group {
		if err := m.fs.chown(c, p, owner, group); err != nil {
			return err
		}
	}
	if n.mode != mode {
		return m.fs.chmod(c, p, mode)
	}
	return nil
}

// initStage does what cloud-init's init stage does before sshd starts: bootcmd, write_files,
// hostname, groups, users with their keys and sudo rules, and the SSH host keys.
func (m *Machine) initStage(cc *cloudConfig) error {
	m.runCommands("bootcmd", cc.bootCmd)
	m.mu.Lock()
	defer m.mu.Unlock()
	root := m.users["root"].cred()
	for _, k := range cc.unknownKeys {
		m.warnf("cloud-config key %q is not simulated (cloud-init may not know it either)", k)
	}
	m.writeFiles(cc.writeFiles, false)

	if cc.hostname != "" {
		m.hostname = cc.hostname
	} else if cc.fqdn != "" {
		m.hostname, _, _ = strings.Cut(cc.fqdn, ".")
	}
	_ = m.fs.writeFile(root, "/etc/hostname", []byte(m.hostname+"\n"), 0o644, "root", "root", false)

	for _, g := range cc.groups {
		m.addGroup(g)
	}
	for _, u := range cc.users {
		if err := m.addUser(u); err != nil {
			return err
		}
	}
	if cc.defaultUserSet {
		m.warnf("users: the distro default user is not simulated")
	}
	if slices.ContainsFunc(cc.users, func(u userSpec) bool { return len(u.sudo) > 0 }) {
		if err := m.fs.writeFile(root, "/etc/sudoers.d/90-cloud-init-users", sudoersFile(cc.users), 0o440, "root", "root", false); err != nil {
			return fmt.Errorf("write sudoers: %w", err)
		}
	}
	if cc.passwordAuthSet {
		// cc_set_passwords on Debian 12's cloud-init writes its own sshd drop-in, 0600.
		v := "no"
		if cc.passwordAuth {
			v = "yes"
		}
		if err := m.fs.mkdirAll(root, "/etc/ssh/sshd_config.d", 0o755, "root", "root"); err != nil {
			m.warnf("set_passwords: %v", err)
		} else if err := m.fs.writeFile(root, "/etc/ssh/sshd_config.d/50-cloud-init.conf", []byte("PasswordAuthentication "+v+"\n"), 0o600, "root", "root", false); err != nil {
			m.warnf("set_passwords: %v", err)
		}
	}
	return m.setupHostKeys(cc)
}

func (m *Machine) addGroup(g string) {
	if _, ok := m.groups[g]; ok {
		return
	}
	gid := 1000
	for _, id := range m.groups {
		if id >= gid && id < 60000 {
			gid = id + 1
		}
	}
	m.groups[g] = gid
}

func (m *Machine) addUser(u userSpec) error {
	if u.name == "root" {
		m.warnf("users: root is not reconfigured by the simulator")
		return nil
	}
	if _, ok := m.users[u.name]; ok {
		return fmt.Errorf("users: %s is declared twice", u.name)
	}
	primary := u.primaryGroup
	if primary == "" {
		primary = u.name
	}
	m.addGroup(primary)
	groups := []string{primary}
	for _, g := range u.groups {
		m.addGroup(g)
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	uid := 1000
	for _, a := range m.users {
		if a.uid >= uid {
			uid = a.uid + 1
		}
	}
	a := &account{name: u.name, uid: uid, groups: groups, home: u.home, shell: u.shell}
	for i, line := range u.keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			m.warnf("users: %s: ssh_authorized_keys[%d] does not parse, sshd will ignore it: %v", u.name, i, err)
			continue
		}
		a.keys = append(a.keys, pk)
	}
	for _, raw := range u.sudo {
		rule, err := parseSudoRule(raw)
		if err != nil {
			return fmt.Errorf("users: %s: %w (sudo would reject the sudoers file)", u.name, err)
		}
		a.sudo = append(a.sudo, rule)
	}
	m.users[u.name] = a

	root := m.users["root"].cred()
	if u.system || u.noCreateHome {
		return nil
	}
	// useradd -m on Debian 12: HOME_MODE unset, UMASK 022, so 0755 (as a real VPS shows).
	if err := m.fs.mkdirAll(root, u.home, 0o755, u.name, primary); err != nil {
		return fmt.Errorf("users: %s: home %s: %w", u.name, u.home, err)
	}
	_ = m.fs.chown(root, u.home, u.name, primary)
	if len(u.keys) > 0 {
		sshDir := u.home + "/.ssh"
		if err := m.fs.mkdirAll(root, sshDir, 0o700, u.name, primary); err != nil {
			return fmt.Errorf("users: %s: %s: %w", u.name, sshDir, err)
		}
		content := strings.Join(u.keys, "\n") + "\n"
		if err := m.fs.writeFile(root, sshDir+"/authorized_keys", []byte(content), 0o600, u.name, primary, false); err != nil {
			return fmt.Errorf("users: %s: authorized_keys: %w", u.name, err)
		}
	}
	return nil
}

// setupHostKeys follows cloud-init's ssh module: delete the image's keys, then either write the
// seeded ones or generate ssh_genkeytypes.
func (m *Machine) setupHostKeys(cc *cloudConfig) error {
	root := m.users["root"].cred()
	seeded := map[string]bool{}
	var signers []ssh.Signer
	for _, seed := range cc.hostKeys {
		seeded[seed.keyType] = true
		signers = append(signers, seed.signer)
		m.pubKeys["pub_key_"+seed.keyType] = seed.publicLine
		base := "/etc/ssh/ssh_host_" + seed.keyType + "_key"
		// cloud-init 22.4's cc_ssh writes both halves 0600 (KEY_2_FILE), the private one verbatim.
		_ = m.fs.writeFile(root, base, []byte(seed.private), 0o600, "root", "root", false)
		_ = m.fs.writeFile(root, base+".pub", []byte(seed.publicLine), 0o600, "root", "root", false)
	}
	// cc_ssh generates host keys only when no ssh_keys are given; a surviving image key (no
	// ssh_deletekeys) is one nobody outside knows.
	var genTypes []string
	switch {
	case !cc.sshKeysGiven && cc.genKeyTypes == nil:
		genTypes = []string{"rsa", "ecdsa", "ed25519"}
	case !cc.sshKeysGiven:
		genTypes = cc.genKeyTypes
	}
	if !cc.deleteKeys && !seeded["ed25519"] && !slices.Contains(genTypes, "ed25519") {
		genTypes = append(genTypes, "ed25519")
	}
	for _, kt := range genTypes {
		if seeded[kt] {
			continue
		}
		s, err := generateHostKey(kt)
		if err != nil {
			return fmt.Errorf("ssh_genkeytypes: %w", err)
		}
		signers = append(signers, s)
		line := string(ssh.MarshalAuthorizedKey(s.PublicKey()))
		m.pubKeys["pub_key_"+kt] = line
		base := "/etc/ssh/ssh_host_" + kt + "_key"
		_ = m.fs.writeFile(root, base, []byte("(generated private key)\n"), 0o600, "root", "root", false)
		_ = m.fs.writeFile(root, base+".pub", []byte(line), 0o600, "root", "root", false)
	}
	if len(signers) == 0 {
		return errors.New("ssh: no host key seeded or generated, sshd cannot start")
	}
	m.hostSigners = signers
	return nil
}

func generateHostKey(kt string) (ssh.Signer, error) {
	switch kt {
	case "ed25519":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 host key: %w", err)
		}
		return ssh.NewSignerFromKey(priv)
	case "ecdsa":
		return newECDSASigner()
	case "rsa":
		return newRSASigner()
	default:
		return nil, fmt.Errorf("key type %q is not supported", kt)
	}
}

// writeFiles runs write_files entries of one phase the way cloud-init does: a failing chown
// aborts the module, leaving later entries unwritten.
func (m *Machine) writeFiles(files []writeFile, deferred bool) {
	root := m.users["root"].cred()
	module := "write_files"
	if deferred {
		module = "write_files_deferred"
	}
	for _, wf := range files {
		if wf.deferred != deferred {
			continue
		}
		if err := m.fs.mkdirAll(root, dirOf(wf.path), 0o755, "root", "root"); err != nil {
			m.warnf("%s: %s: %v", module, wf.path, err)
			return
		}
		if err := m.fs.writeFile(root, wf.path, wf.content, wf.perm, "root", "root", wf.appends); err != nil {
			m.warnf("%s: %s: %v", module, wf.path, err)
			return
		}
		if _, ok := m.users[wf.owner]; !ok {
			m.warnf("%s: %s: chown: no user %q yet (files owned by users that cloud-init creates need defer: true); module aborted", module, wf.path, wf.owner)
			return
		}
		if _, ok := m.groups[wf.group]; !ok {
			m.warnf("%s: %s: chown: no group %q yet; module aborted", module, wf.path, wf.group)
			return
		}
		if err := m.fs.chown(root, wf.path, wf.owner, wf.group); err != nil {
			m.warnf("%s: %s: %v", module, wf.path, err)
			return
		}
	}
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// runCommands runs bootcmd/runcmd entries as root, as the one sh script cloud-init makes of
// them. Lines that need a real shell or programs the simulator lacks are recorded and reported
// as warnings: a real machine would run them. A `set -e` line makes the first failing command
// end the script; the script's exit status is returned (the last command's, as sh's).
func (m *Machine) runCommands(source string, cmds []shellCmd) int {
	root := m.rootCred()
	errexit, status := false, 0
	for _, c := range cmds {
		if line := strings.TrimSpace(c.line); line == "set -e" || slices.Equal(c.argv, []string{"set", "-e"}) {
			errexit = true
			continue
		}
		var stderr strings.Builder
		p := &proc{ctx: m.ctx, m: m, cred: root, cwd: "/", stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}
		if c.argv != nil {
			status = p.run(c.argv)
		} else {
			status = p.runLine(c.line)
		}
		m.mu.Lock()
		m.commands = append(m.commands, Command{Source: source, User: "root", Line: c.line, ExitStatus: status, Stderr: stderr.String(), At: time.Now()})
		if status != 0 {
			m.warnf("%s: %q exited %d: %s", source, c.line, status, strings.TrimSpace(stderr.String()))
		}
		m.mu.Unlock()
		if status != 0 && errexit {
			break
		}
	}
	return status
}

func (m *Machine) rootCred() cred {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.users["root"].cred()
}

// finalStage waits for CloudInitDelay, then does cloud-init's final stage: packages, deferred
// write_files, runcmd, and phone_home.
func (m *Machine) finalStage() {
	if !sleepCtx(m.ctx, m.cfg.CloudInitDelay) {
		return
	}
	cc := m.cc
	m.mu.Lock()
	m.state.Packages = append(m.state.Packages, cc.packages...)
	m.writeFiles(cc.writeFiles, true)
	m.mu.Unlock()
	// cc_scripts_user runs the runcmd script with runparts; a non-zero exit is the module's
	// error, in cloud-init 22.4's words.
	failed := m.runCommands("runcmd", cc.runCmd) != 0
	m.mu.Lock()
	if failed {
		m.state.CloudInitErrors = append(m.state.CloudInitErrors,
			"('scripts-user', RuntimeError('Runparts: 1 failures (runcmd) in 1 attempted commands'))")
	}
	m.state.CloudInitDone = true
	m.state.CloudInitDoneAt = time.Now()
	m.mu.Unlock()
	close(m.finalDone)
	m.log.Info("vps: cloud-init final stage done")
	if cc.phoneHome == nil {
		return
	}
	if cc.phoneHome.url == "" {
		m.mu.Lock()
		m.warnf("phone_home: no url, module skipped")
		m.mu.Unlock()
		return
	}
	if m.cfg.LoseCallback {
		m.log.Info("vps: fault: phone_home callback lost")
		return
	}
	m.phoneHome(cc.phoneHome)
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
