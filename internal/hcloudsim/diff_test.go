package hcloudsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps/realvpstest"
	"github.com/rachelcloud/admin/internal/sshkey"
	"github.com/rachelcloud/admin/internal/testkit"
)

// diffRoots are where the user data and the injection write; files outside them (logs, caches,
// systemd's own state) are the machine's business, not the project's.
var diffRoots = []string{"/etc/rachel", "/etc/sudoers.d", "/etc/ssh", "/etc/systemd/system/" + cloudinit.UnitName,
	"/home", "/var/lib/rachel", "/etc/hostname"}

// observed is what the differential test compares of one VPS.
type observed struct {
	files     map[string]string // path -> "f mode owner:group sha256" or "d mode owner:group"
	contents  map[string]string // small non-secret files, to show what differs
	users     map[string]string // name -> "home shell groups"
	hostKeys  []string          // fingerprints sshd presents
	callback  map[string]string // phone_home form fields
	session   []string          // "command -> exit status" of the injection session
	sudo      map[string]bool   // probe -> allowed (exit 0)
	unitState string
}

// diffSide is one VPS under test: where to reach sshd and how to read its state.
type diffSide struct {
	name     string
	b        *testBundle
	serverID int64
	sshAddr  string
}

// TestEmulationMatchesRealVPS holds the emulated VPS (package vps) to a real Debian 12 one: the
// same user data, built by internal/cloudinit as the service builds it, and the same injection
// session (the sudo commands of cloudinit.SudoCommands, with the same stdin) run against both;
// then files written (path, mode, owner, sha256), users and groups, authorized keys, host-key
// fingerprints, what the sudo rule allows and refuses, the unit's state after injection and the
// callback's fields are compared. Differences that do not matter are listed in knownDifferences
// (and in internal/hcloudsim/README.md, with why); any other fails the test.
func TestEmulationMatchesRealVPS(t *testing.T) {
	realvpstest.Require(t, "internal/hcloudsim")
	t.Parallel()
	ctx := context.Background()

	login, err := sshkey.GenerateHostKey() // an Ed25519 pair serves as the provisioner's login key
	require.NoError(t, err)
	loginSigner, err := ssh.ParsePrivateKey([]byte(login.PrivateOpenSSH))
	require.NoError(t, err)
	host, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	f := newE2EFixtureOn(t, net.JoinHostPort(realvps.GatewayIP.String(), "0"))
	emu := setup(t, nil)
	real := setup(t, func(c *Config) { c.VPS = VPSReal })
	// sshd listens where the user data says, on both: the emulated VPS's loopback address
	// cannot take port 22 (the host's sshd may hold it), a real VPS's own namespace can take any.
	sshPort := emu.sim.cfg.SSHPort
	ud, err := cloudinit.Build(cloudinit.Config{Hostname: "rachel-diff", AuthorizedKeys: []string{login.Public},
		HostKeyPrivate: host.PrivateOpenSSH, HostKeyPublic: host.Public,
		CallbackURL: f.sinkURL + "/callback/difftoken", SSHPort: sshPort,
		AssistantArtifactURL: f.sinkURL + assistantfixture.Path, AssistantArtifactSHA256: assistantfixture.SHA256})
	require.NoError(t, err)

	sides := []*diffSide{{name: "emulated", b: emu}, {name: "real", b: real}}
	for _, s := range sides {
		key, _, err := s.b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-ops", PublicKey: login.Public})
		require.NoError(t, err)
		res := s.b.createServer(t, hcloud.ServerCreateOpts{Name: "rachel-diff", SSHKeys: []*hcloud.SSHKey{key}, UserData: string(ud)})
		require.NoError(t, s.b.client.Action.WaitFor(ctx, res.Action, res.NextActions[0]))
		s.serverID = res.Server.ID
		s.sshAddr = net.JoinHostPort(res.Server.PublicNet.IPv4.IP.String(), strconv.Itoa(sshPort))
	}
	require.Equal(t, sides[0].serverID, sides[1].serverID, "both servers have the same ID, so the same metadata")

	// Both call back; the callbacks arrive in either order.
	callbacks := map[string]map[string]string{}
	for range sides {
		select {
		case cb := <-f.callbacks:
			form := map[string]string{}
			for k := range cb.form {
				form[k] = cb.form.Get(k)
			}
			// The emulated VPS calls from a loopback address, the real one through its veth.
			callbacks[cb.remote] = form
		case <-time.After(5 * time.Minute):
			t.Fatal("a VPS did not call back")
		}
	}

	obs := make([]observed, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Go(func() { obs[i] = s.observe(t, loginSigner, host.PublicKey()) })
	}
	wg.Wait()
	// The real VPS calls from its own address; the emulated one runs in this process.
	realIP, _, _ := net.SplitHostPort(sides[1].sshAddr)
	for remote, form := range callbacks {
		if remote == realIP {
			obs[1].callback = form
		} else {
			obs[0].callback = form
		}
	}
	require.NotNil(t, obs[0].callback, "the emulated VPS called back")
	require.NotNil(t, obs[1].callback, "the real VPS called back from %s", realIP)

	var diffs []string
	diffMaps(&diffs, "file", obs[0].files, obs[1].files)
	diffMaps(&diffs, "user", obs[0].users, obs[1].users)
	diffMaps(&diffs, "callback field", obs[0].callback, obs[1].callback)
	diffMaps(&diffs, "sudo", boolMap(obs[0].sudo), boolMap(obs[1].sudo))
	if !slices.Equal(obs[0].hostKeys, obs[1].hostKeys) {
		diffs = append(diffs, fmt.Sprintf("host keys: emulated %v, real %v", obs[0].hostKeys, obs[1].hostKeys))
	}
	if !slices.Equal(obs[0].session, obs[1].session) {
		diffs = append(diffs, fmt.Sprintf("session: emulated %v, real %v", obs[0].session, obs[1].session))
	}
	if obs[0].unitState != obs[1].unitState {
		diffs = append(diffs, fmt.Sprintf("unit: emulated %s, real %s", obs[0].unitState, obs[1].unitState))
	}
	for p, e := range obs[0].contents {
		if r, ok := obs[1].contents[p]; ok && r != e {
			t.Logf("%s differs:\n--- emulated\n%s--- real\n%s", p, e, r)
		}
	}
	for p, r := range obs[1].contents {
		if _, ok := obs[0].contents[p]; !ok && strings.HasPrefix(p, "/etc/") {
			t.Logf("%s only on the real VPS:\n%s", p, r)
		}
	}
	var unexplained []string
	for _, d := range diffs {
		if !knownDifference(d) {
			unexplained = append(unexplained, d)
		}
	}
	t.Logf("differences (%d, %d unexplained):\n%s", len(diffs), len(unexplained), strings.Join(diffs, "\n"))
	require.Empty(t, unexplained, "differences between the emulated and the real VPS that internal/hcloudsim/README.md does not explain")
}

// knownDifferences are the differences internal/hcloudsim/README.md lists as not mattering, as
// substrings of the difference lines.
var knownDifferences = []string{
	// useradd -m copies /etc/skel; the emulation does not model shell startup files.
	"file /home/rachel-ops/.bash_logout: only on the real VPS",
	"file /home/rachel-ops/.bashrc: only on the real VPS",
	"file /home/rachel-ops/.profile: only on the real VPS",
	// systemd creates the unit's StateDirectory when it starts the unit.
	"file /var/lib/rachel: only on the real VPS (d 0700 rachel:rachel)",
	// The emulation does not execute the assistant; the real fixture records that it started.
	"file /var/lib/rachel/assistant-status: only on the real VPS",
}

func knownDifference(d string) bool {
	for _, k := range knownDifferences {
		if strings.Contains(d, k) {
			return true
		}
	}
	return false
}

func boolMap(m map[string]bool) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = strconv.FormatBool(v)
	}
	return out
}

func diffMaps(diffs *[]string, what string, emu, real map[string]string) {
	keys := map[string]bool{}
	for k := range emu {
		keys[k] = true
	}
	for k := range real {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		e, eok := emu[k]
		r, rok := real[k]
		switch {
		case !eok:
			*diffs = append(*diffs, fmt.Sprintf("%s %s: only on the real VPS (%s)", what, k, r))
		case !rok:
			*diffs = append(*diffs, fmt.Sprintf("%s %s: only on the emulated VPS (%s)", what, k, e))
		case e != r:
			*diffs = append(*diffs, fmt.Sprintf("%s %s: emulated %q, real %q", what, k, e, r))
		}
	}
}

// injectionSecrets are the stdin of the session's install commands, in order.
var injectionSecrets = [][]byte{
	[]byte(`{"claudeAiOauth":{"accessToken":"sk-ant-oat01-diff"}}` + "\n"),
	[]byte("TELEGRAM_BOT_TOKEN=123:diff\nTELEGRAM_OWNER_ID=42\n"),
}

// sudoProbes are commands the sudo rule must refuse (they are never the session's own).
var sudoProbes = []string{
	"/usr/bin/cat /etc/shadow",
	"/usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/sudoers.d/evil",
	"/usr/bin/systemctl restart ssh.service",
	"/usr/bin/systemctl restart " + cloudinit.UnitName + " extra",
	"-u rachel /usr/bin/systemctl restart " + cloudinit.UnitName,
	"systemctl restart " + cloudinit.UnitName,
	"/bin/sh -c id",
}

// observe waits for sshd with the seeded key, runs the injection session and the sudo probes,
// then reads the machine's state.
func (s *diffSide) observe(t *testing.T, login ssh.Signer, seeded ssh.PublicKey) observed {
	t.Helper()
	o := observed{sudo: map[string]bool{}}
	var presented ssh.PublicKey
	cfg := &ssh.ClientConfig{User: cloudinit.DefaultLoginUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(login)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			presented = k
			return sshkey.FixedHostKeyCallback(seeded)("", nil, k)
		}, Timeout: 5 * time.Second}
	var c *ssh.Client
	var err error
	testkit.Eventually(t, fmt.Sprintf("%s: sshd admits the login key", s.name), func() bool {
		c, err = ssh.Dial("tcp", s.sshAddr, cfg)
		return err == nil
	})
	defer c.Close()
	o.hostKeys = []string{ssh.FingerprintSHA256(presented)}

	// The real VPS's cloud-init may still run its final stage (runcmd creates /etc/rachel):
	// the service starts injecting after the callback, which comes last; so does this test.
	cmds := cloudinit.SudoCommands(cloudinit.DefaultServiceUser)
	run := func(cmd string, stdin []byte) int {
		sess, err := c.NewSession()
		require.NoError(t, err)
		defer sess.Close()
		sess.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		sess.Stderr = &stderr
		err = sess.Run(cmd)
		var ee *ssh.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			t.Logf("%s: %q exited %d: %s", s.name, cmd, ee.ExitStatus(), strings.TrimSpace(stderr.String()))
			return ee.ExitStatus()
		default:
			require.NoError(t, err)
			return -1
		}
	}
	for i := 0; i+1 < len(cmds)-2; i += 2 {
		st := run("sudo "+cmds[i], injectionSecrets[i/2])
		o.session = append(o.session, fmt.Sprintf("%s -> %d", cmds[i], st))
		st = run("sudo "+cmds[i+1], nil)
		o.session = append(o.session, fmt.Sprintf("%s -> %d", cmds[i+1], st))
	}
	for _, cmd := range cmds[len(cmds)-2:] {
		st := run("sudo "+cmd, nil)
		o.session = append(o.session, fmt.Sprintf("%s -> %d", cmd, st))
	}
	for _, p := range sudoProbes {
		o.sudo[p] = run("sudo -n "+p, nil) == 0
	}

	if s.b.sim.VPSMode() == VPSEmulated {
		s.observeEmulated(t, &o)
	} else {
		s.observeReal(t, &o)
	}
	return o
}

// contentSum is the SHA-256 of a file's content without cloud-init's "# Created by cloud-init
// v. X on DATE" first line, which holds the boot's date.
func contentSum(b []byte) string {
	if rest, ok := bytes.CutPrefix(b, []byte("# Created by cloud-init v.")); ok {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			b = rest[i+1:]
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (o *observed) noteContent(p string, b []byte) {
	if o.contents == nil {
		o.contents = map[string]string{}
	}
	if len(b) < 4096 && !strings.HasSuffix(p, "_key") && !strings.HasPrefix(p, "/etc/rachel/") {
		o.contents[p] = string(b)
	}
}

func inDiffRoots(p string) bool {
	for _, r := range diffRoots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func (s *diffSide) observeEmulated(t *testing.T, o *observed) {
	m := s.b.sim.Machine(s.serverID)
	require.NotNil(t, m)
	o.files = map[string]string{}
	for _, f := range m.Files() {
		if inDiffRoots(f.Path) {
			o.files[f.Path] = fmt.Sprintf("f %04o %s:%s %s", f.Mode.Perm(), f.Owner, f.Group, contentSum(f.Content))
			o.noteContent(f.Path, f.Content)
		}
	}
	for _, d := range []string{"/etc/rachel", "/home/" + cloudinit.DefaultLoginUser, "/home/" + cloudinit.DefaultLoginUser + "/.ssh", "/var/lib/rachel"} {
		if f, ok := m.Dir(d); ok {
			o.files[d] = fmt.Sprintf("d %04o %s:%s", f.Mode.Perm(), f.Owner, f.Group)
		}
	}
	o.users = map[string]string{}
	for _, u := range m.Users() {
		if u.Name == cloudinit.DefaultLoginUser || u.Name == cloudinit.DefaultServiceUser {
			o.users[u.Name] = fmt.Sprintf("%s %s %s", u.Home, u.Shell, strings.Join(u.Groups, ","))
		}
	}
	o.unitState = m.Services()[cloudinit.UnitName]
}

func (s *diffSide) observeReal(t *testing.T, o *observed) {
	m := s.b.sim.RealMachine(s.serverID)
	require.NotNil(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exec := func(args ...string) string {
		out, err := m.Exec(ctx, args...)
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	// Names of owners as the VPS's own /etc/passwd and /etc/group say.
	owner := func(p string) string { return exec("stat", "-c", "%U:%G", p) }
	// The restart returns once the unit is started; a program that then fails shows as
	// activating (auto-restart) or failed. Wait for a settled state, and
	// for a running fixture to have written its status file (it writes a temporary file first and
	// renames it), so the files are read when the program is done writing them.
	testkit.Eventually(t, "the unit settles", func() bool {
		out, _ := m.Exec(ctx, "systemctl", "is-active", cloudinit.UnitName)
		o.unitState = strings.TrimSpace(string(out))
		return o.unitState != "activating" && o.unitState != "deactivating" && o.unitState != "reloading"
	})
	if o.unitState == "active" {
		status := filepath.Join(m.Root(), "/var/lib/rachel/assistant-status")
		testkit.Eventually(t, "the assistant fixture has written its status file", func() bool {
			_, err := os.Stat(status)
			_, errTmp := os.Stat(filepath.Join(m.Root(), "/var/lib/rachel/.assistant-status.tmp"))
			return err == nil && os.IsNotExist(errTmp)
		})
	}

	o.files = map[string]string{}
	upper := m.UpperDir()
	require.NoError(t, filepath.WalkDir(upper, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		p := "/" + strings.TrimPrefix(strings.TrimPrefix(hp, upper), "/")
		if !inDiffRoots(p) || !(d.Type().IsRegular() || d.IsDir()) {
			return nil
		}
		info, err := os.Lstat(filepath.Join(m.Root(), p)) // through the overlay: the file as the VPS sees it
		if err != nil {
			return nil // a whiteout's directory, or removed since
		}
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(filepath.Join(m.Root(), p))
			require.NoError(t, err)
			o.files[p] = fmt.Sprintf("f %04o %s %s", info.Mode().Perm(), owner(p), contentSum(b))
			o.noteContent(p, b)
		case info.IsDir() && slices.Contains([]string{"/etc/rachel", "/home/" + cloudinit.DefaultLoginUser,
			"/home/" + cloudinit.DefaultLoginUser + "/.ssh", "/var/lib/rachel"}, p):
			o.files[p] = fmt.Sprintf("d %04o %s", info.Mode().Perm(), owner(p))
		}
		return nil
	}))
	o.users = map[string]string{}
	for _, u := range []string{cloudinit.DefaultLoginUser, cloudinit.DefaultServiceUser} {
		pw := strings.Split(exec("getent", "passwd", u), ":")
		require.Len(t, pw, 7)
		groups := strings.Fields(exec("id", "-Gn", u))
		o.users[u] = fmt.Sprintf("%s %s %s", pw[5], pw[6], strings.Join(groups, ","))
	}
}
