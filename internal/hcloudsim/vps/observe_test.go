package vps

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGlobMatchIsFnmatchWithoutPathname: sudoers matches arguments with fnmatch(3) and no
// FNM_PATHNAME, so `*` crosses slashes and spaces.
func TestGlobMatchIsFnmatchWithoutPathname(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "x", false},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"*", "", true},
		{"*", "a b/c", true},
		{"a*", "a", true},
		{"a**c", "abbc", true},
		{"/etc/*", "/etc/rachel/x y", true},
		{"/etc/*.tmp", "/etc/a.tmp/b", false},
		{"/etc/*.tmp", "/etc/a/b.tmp", true},
		{"?", "", false},
		{"?", "a", true},
		{"a?c", "a/c", true},
		{"[ab]x", "bx", true},
		{"[ab]x", "cx", false},
		{"[a-c]", "b", true},
		{"[!a]", "b", true},
		{"[!a]", "a", false},
		{"[ab", "a", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, `a\`, true},
		{"x*y*z", "x--y--z", true},
		{"x*y*z", "x--z--y", false},
	} {
		require.Equal(t, tc.want, globMatch(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

func TestSudoRuleShapes(t *testing.T) {
	t.Parallel()
	r, err := parseSudoRule(`web1, ALL = (root, rachel : adm) NOPASSWD: NOEXEC: /bin/systemctl restart x.service, PASSWD: !/usr/bin/cat, (:adm) /usr/bin/id`)
	require.NoError(t, err)
	require.Equal(t, []string{"web1", "ALL"}, r.hosts)
	require.Len(t, r.entries, 3)
	require.Equal(t, sudoEntry{runAs: []string{"root", "rachel"}, nopasswd: true, cmd: "/usr/bin/systemctl", args: "restart x.service"}, r.entries[0],
		"tags stack, /bin is /usr/bin")
	require.Equal(t, sudoEntry{runAs: []string{"root", "rachel"}, negate: true, cmd: "/usr/bin/cat", anyArgs: true}, r.entries[1],
		"the runas list and PASSWD carry over")
	require.Equal(t, sudoEntry{runAs: []string{""}, cmd: "/usr/bin/id", anyArgs: true}, r.entries[2], "(:group) runs as the invoking user only")

	_, err = parseSudoRule(" = ALL")
	require.ErrorContains(t, err, "empty host list")
	_, err = parseSudoRule("ALL=(root) NOPASSWD: !")
	require.ErrorContains(t, err, "empty command")

	require.Equal(t, []string{`a\,b`, "c", ""}, splitUnescaped(`a\,b,c,`, ','))
	require.Equal(t, `a,b:c=d\e f`, unescapeSudoers(`a\,b\:c\=d\\e\ f`))
	require.Equal(t, `\x`, unescapeSudoers(`\x`), "other escapes stay")
}

// TestSudoPasswordRules: over SSH there is no terminal, so a rule without NOPASSWD fails as
// sudo -n would, in sudo's words; NOPASSWD rules of the same user still run.
func TestSudoPasswordRules(t *testing.T) {
	t.Parallel()
	m := bootUsers(t, `users:
  - name: carol
    sudo: ["ALL=(ALL:ALL) ALL", "ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/whoami"]
  - name: dave
    sudo: false
`)
	for _, tc := range []shellCase{
		{user: "carol", line: "sudo -n cat /etc/hostname", status: 1, stderr: "sudo: a password is required"},
		{user: "carol", line: "sudo cat /etc/hostname", status: 1, stderr: "a terminal is required to read the password"},
		{user: "carol", line: "sudo id -un", stdout: "root\n"},
		{user: "carol", line: "sudo -u carol whoami", status: 1, stderr: "a password is required", stdout: ""},
		{user: "dave", line: "sudo id", status: 1, stderr: "dave is not in the sudoers file."},
	} {
		tc.check(t, m)
	}
	// cloud-init writes the rules, one line per rule, under a comment per user.
	f, ok := m.File("/etc/sudoers.d/90-cloud-init-users")
	require.True(t, ok)
	require.Equal(t, fs.FileMode(0o440), f.Mode)
	lines := strings.Split(strings.TrimRight(string(f.Content), "\n"), "\n")
	require.True(t, strings.HasPrefix(lines[0], "# Created by cloud-init v. 22.4.2 on "), lines[0])
	require.Equal(t, []string{"", "# User rules for carol", "carol ALL=(ALL:ALL) ALL", "carol ALL=(root) NOPASSWD: /usr/bin/id, /usr/bin/whoami"}, lines[1:])
}

// bootUsers starts a machine from a cloud-config with the given users section only.
func bootUsers(t *testing.T, users string) *Machine {
	t.Helper()
	m, err := Start(t.Context(), Config{UserData: "#cloud-config\nssh_genkeytypes: [ed25519]\n" + users, CloudInitDelay: 1 << 62})
	require.NoError(t, err)
	require.Empty(t, m.State().BootError)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return m
}

// TestObserversReturnCopies: what a test reads of the machine is a snapshot it may change
// without changing the machine.
func TestObserversReturnCopies(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	shellCase{line: "install -m 0600 /dev/stdin /srv/f", stdin: "v1"}.check(t, m)
	shellCase{line: "install -d /srv/d"}.check(t, m)
	shellCase{line: "ln -s /srv/f /srv/l"}.check(t, m)

	f, ok := m.File("/srv/f")
	require.True(t, ok)
	f.Content[0] = 'X'
	again, _ := m.File("/srv/f")
	require.Equal(t, "v1", string(again.Content))
	sum := sha256.Sum256([]byte("v1"))
	require.Equal(t, hex.EncodeToString(sum[:]), again.SHA256)
	require.Equal(t, 2, again.Size)

	_, ok = m.File("/srv/d")
	require.False(t, ok, "a directory is no file")
	_, ok = m.File("/srv/l")
	require.False(t, ok, "a link is no file")
	_, ok = m.Dir("/srv/f")
	require.False(t, ok, "a file is no directory")
	target, ok := m.Link("/srv/l")
	require.True(t, ok)
	require.Equal(t, "/srv/f", target)
	_, ok = m.Link("/srv/f")
	require.False(t, ok)

	st := m.State()
	st.Warnings = append(st.Warnings[:0], "changed")
	require.NotContains(t, m.State().Warnings, "changed")
	require.Equal(t, int64(42), st.InstanceID)
	require.True(t, st.SSHReady)
	require.False(t, st.CloudInitDone, "the final stage has not run")

	evs := m.FileEvents()
	var ops []string
	for _, e := range evs {
		if strings.HasPrefix(e.Path, "/srv/") {
			ops = append(ops, e.Op+" "+e.Path+" "+e.From)
		}
	}
	require.Equal(t, []string{"write /srv/f ", "mkdir /srv/d ", "symlink /srv/l /srv/f"}, ops, "no chmod when the mode is already right")
	files := m.Files()
	for i := 1; i < len(files); i++ {
		require.Less(t, files[i-1].Path, files[i].Path, "sorted by path")
	}
	services := m.Services()
	require.Equal(t, "active", services["ssh.service"])
	require.Equal(t, "inactive", services["demo.service"], "a unit file makes a unit, not started")
	require.Zero(t, m.ServiceStarts("demo"))
	require.NotEmpty(t, m.HostKeys())
}
