package vps

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

// The expectations below are GNU coreutils 9.1's on Debian 12 (checked against the real
// programs, as root and as an unprivileged user): exit statuses, the strerror text, and
// the resulting mode and ownership.

// fileIs asserts a regular file's content, mode and ownership.
func fileIs(t *testing.T, m *Machine, path, content string, mode fs.FileMode, owner, group string) {
	t.Helper()
	f, ok := m.File(path)
	require.True(t, ok, "%s exists", path)
	require.Equal(t, content, string(f.Content), path)
	require.Equal(t, mode, f.Mode, path)
	require.Equal(t, owner+":"+group, f.Owner+":"+f.Group, path)
}

func noFile(t *testing.T, m *Machine, path string) {
	t.Helper()
	_, ok := m.File(path)
	require.False(t, ok, "%s must not exist", path)
	_, ok = m.Dir(path)
	require.False(t, ok, "%s must not exist", path)
}

func TestInstallLikeGNUInstall(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		{line: "install -m 0640 -o svc -g svc /dev/stdin /etc/demo/a", stdin: "A"},
		// Without -m, install's mode is 0755; without -o/-g, the caller's.
		{line: "install /dev/stdin /etc/demo/b", stdin: "B"},
		{line: "install -m 0600 - /etc/demo/dash", stdin: "D"},
		// A second install replaces content, mode and owner.
		{line: "install -m 0644 /dev/stdin /etc/demo/a", stdin: "A2"},
		// Into a directory: the source's base name.
		{line: "install -m 0644 /etc/demo/readme /srv"},
		{line: "install -D -m 0600 /etc/demo/readme /srv/deep/er/copy"},
		{line: "install -d -m 0700 -o svc -g svc /var/lib/demo/state"},
		{line: "install -d /var/lib/demo/state"}, // exists: fine, attributes reset to 0755 root
		{user: "bob", line: "install -m 0600 /dev/stdin /home/bob/notes", stdin: "mine"},
		// Errors.
		{line: "install /etc/demo/nope /srv/x", status: 1, stderr: "install: cannot stat '/etc/demo/nope': No such file or directory"},
		{line: "install -o nosuch /dev/stdin /srv/y", status: 1, stderr: "install: invalid user 'nosuch'"},
		{line: "install -g nosuch /dev/stdin /srv/y", status: 1, stderr: "install: invalid group 'nosuch'"},
		{line: "install -m 0999 /dev/stdin /srv/y", status: 1, stderr: "invalid mode '0999'"},
		{line: "install -m u+x /dev/stdin /srv/y", status: 1, stderr: "invalid mode 'u+x'"},
		{line: "install /dev/stdin", status: 1, stderr: "install: missing destination file operand after '/dev/stdin'"},
		{line: "install -d", status: 1, stderr: "install: missing file operand"},
		{line: "install /etc/demo/readme /etc/hostname /etc/demo/a", status: 1, stderr: "install: target '/etc/demo/a' is not a directory"},
		{line: "install --bogus x y", status: 1, stderr: "install: unrecognized option '--bogus'"},
		{user: "bob", line: "install /dev/stdin /etc/evil", status: 1, stderr: "install: cannot create regular file '/etc/evil': Permission denied"},
		{user: "bob", line: "install -d /etc/evil.d", status: 1, stderr: "install: cannot create directory '/etc/evil.d': Permission denied"},
		{user: "bob", line: "install -o root /dev/stdin /tmp/given", status: 1, stderr: "Operation not permitted"},
	} {
		tc.check(t, m)
	}
	fileIs(t, m, "/etc/demo/a", "A2", 0o644, "root", "root")
	fileIs(t, m, "/etc/demo/b", "B", 0o755, "root", "root")
	fileIs(t, m, "/etc/demo/dash", "D", 0o600, "root", "root")
	fileIs(t, m, "/srv/readme", "hello", 0o644, "root", "root")
	fileIs(t, m, "/srv/deep/er/copy", "hello", 0o600, "root", "root")
	d, ok := m.Dir("/srv/deep/er")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o755, d.Mode, "-D makes parents 0755")
	d, ok = m.Dir("/var/lib/demo/state")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o755, d.Mode)
	require.Equal(t, "root", d.Owner)
	d, ok = m.Dir("/var/lib/demo")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o755, d.Mode)
	fileIs(t, m, "/home/bob/notes", "mine", 0o600, "bob", "bob")
	noFile(t, m, "/etc/evil")
	noFile(t, m, "/etc/evil.d")
	noFile(t, m, "/srv/y")
	// install creates the file as the caller before the chown that fails; it stays behind.
	fileIs(t, m, "/tmp/given", "", 0o600, "bob", "bob")
}

func TestMvLikeGNUMv(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		{line: "install -m 0640 -o svc -g svc /dev/stdin /srv/a", stdin: "A"},
		{line: "install -d /srv/dir /srv/empty /srv/full"},
		{line: "install /dev/stdin /srv/full/x", stdin: "x"},
		// A rename keeps mode and owner and replaces the target.
		{line: "mv /srv/a /srv/b"},
		{line: "install /dev/stdin /srv/c", stdin: "C"},
		{line: "mv -f /srv/c /srv/b"},
		// Into a directory, unless -T.
		{line: "mv /srv/b /srv/dir"},
		{line: "mv -T /srv/empty /srv/moved"},
		// Errors.
		{line: "mv /srv/nope /srv/x", status: 1, stderr: "mv: cannot stat '/srv/nope': No such file or directory"},
		{line: "mv /srv/dir/b /srv/dir/b", status: 1, stderr: "mv: '/srv/dir/b' and '/srv/dir/b' are the same file"},
		{line: "mv /srv/dir/b", status: 1, stderr: "mv:"},
		{line: "install -d /srv/other", status: 0},
		{line: "mv -T /srv/other /srv/full", status: 1, stderr: "Directory not empty"},
		{line: "mv -T /srv/dir/b /srv/moved", status: 1, stderr: "Is a directory"},
		{line: "mv -T /srv/moved /srv/dir/b", status: 1, stderr: "Not a directory"},
		{line: "mv /srv/full /srv/full/inside", status: 1, stderr: "Invalid argument"},
		{user: "bob", line: "mv /srv/dir/b /home/bob/b", status: 1, stderr: "Permission denied"},
		{user: "bob", line: "mv --interactive /srv/dir/b x", status: 1, stderr: "mv: unrecognized option '--interactive'"},
	} {
		tc.check(t, m)
	}
	fileIs(t, m, "/srv/dir/b", "C", 0o755, "root", "root")
	noFile(t, m, "/srv/a")
	noFile(t, m, "/srv/c")
	noFile(t, m, "/srv/empty")
	_, ok := m.Dir("/srv/moved")
	require.True(t, ok)
	fileIs(t, m, "/srv/full/x", "x", 0o755, "root", "root")
	noFile(t, m, "/home/bob/b")

	// A directory moves with everything in it.
	require.Equal(t, 0, runOK(t, m, "root", "mv /srv/full /srv/renamed"))
	fileIs(t, m, "/srv/renamed/x", "x", 0o755, "root", "root")
	noFile(t, m, "/srv/full/x")

	ev := m.FileEvents()
	last := ev[len(ev)-1]
	require.Equal(t, "rename", last.Op)
	require.Equal(t, "/srv/renamed", last.Path)
	require.Equal(t, "/srv/full", last.From)
	require.Equal(t, "root", last.By)
}

func TestStickyTmpProtectsOtherUsersFiles(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	require.Equal(t, 0, runOK(t, m, "alice", "install -m 0666 /dev/stdin /tmp/alices"))
	for _, tc := range []shellCase{
		// In a sticky directory only the file's owner (or the directory's, or root) may unlink
		// or rename it: the kernel answers EPERM, even though the file is world-writable.
		{user: "bob", line: "rm /tmp/alices", status: 1, stderr: "rm: cannot remove '/tmp/alices': Operation not permitted"},
		{user: "bob", line: "rm -f /tmp/alices", status: 1, stderr: "Operation not permitted"},
		{user: "bob", line: "mv /tmp/alices /tmp/bobs", status: 1, stderr: "Operation not permitted"},
		{user: "bob", line: "install -m 0644 /dev/stdin /tmp/bobs", stdin: "b"},
		{user: "bob", line: "mv -f /tmp/bobs /tmp/alices", status: 1, stderr: "Operation not permitted"},
		{user: "bob", line: "cat /tmp/alices"},
		// Bob may remove his own file; alice hers.
		{user: "bob", line: "rm /tmp/bobs"},
		{user: "alice", line: "mv /tmp/alices /tmp/alices2"},
		{line: "rm /tmp/alices2"},
	} {
		tc.check(t, m)
	}
	noFile(t, m, "/tmp/alices")
	noFile(t, m, "/tmp/alices2")
	noFile(t, m, "/tmp/bobs")
}

func TestRmMkdirCatTestLikeCoreutils(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		{line: "mkdir /srv/d"},
		{line: "mkdir -m 0700 /srv/private"},
		{line: "mkdir -p /srv/p/q/r"},
		{line: "mkdir -p /srv/p/q"},
		{line: "mkdir /srv/d", status: 1, stderr: "mkdir: cannot create directory '/srv/d': File exists"},
		{line: "mkdir /srv/missing/child", status: 1, stderr: "No such file or directory"},
		{line: "mkdir -p /etc/demo/readme/sub", status: 1, stderr: "Not a directory"},
		{line: "mkdir -m 8 /srv/bad", status: 1, stderr: "invalid mode '8'"},
		{user: "bob", line: "mkdir /srv/bobs", status: 1, stderr: "mkdir: cannot create directory '/srv/bobs': Permission denied"},
		{user: "bob", line: "mkdir -p /home/bob/work/a"},

		{line: "cat /etc/demo/readme /etc/hostname", stdout: "hellobox\n"},
		{line: "cat /srv/d", status: 1, stderr: "cat: /srv/d: Is a directory"},
		{line: "cat /nope /etc/demo/readme", status: 1, stdout: "hello", stderr: "cat: /nope: No such file or directory"},
		{user: "bob", line: "cat /etc/sudoers.d/90-cloud-init-users", status: 1, stderr: "Permission denied"},
		{user: "bob", line: "cat /srv/private/x", status: 1, stderr: "Permission denied"},

		{line: "test -e /etc/demo/readme"},
		{line: "test -f /etc/demo/readme"},
		{line: "test -s /etc/demo/readme"},
		{line: "test -d /etc/demo"},
		{line: "test -f /etc/demo", status: 1},
		{line: "test -d /etc/demo/readme", status: 1},
		{line: "test -e /nope", status: 1},
		{line: "install -m 0644 /dev/stdin /srv/empty"},
		{line: "test -s /srv/empty", status: 1},
		{line: "ln -s /etc/demo/readme /srv/link"},
		{line: "test -L /srv/link"},
		{line: "test -h /srv/link"},
		{line: "test -L /etc/demo/readme", status: 1},
		{line: "test -x /etc/demo/readme", status: 2, stderr: "unary operator not simulated"},
		{line: "test a = a", status: 2},
		// bob cannot look into root's home: the test is false, not an error.
		{user: "bob", line: "test -e /root/.bashrc", status: 1},

		{line: "rm /srv/d", status: 1, stderr: "rm: cannot remove '/srv/d': Is a directory"},
		{line: "rm /srv/nope", status: 1, stderr: "rm: cannot remove '/srv/nope': No such file or directory"},
		{line: "rm -f /srv/nope"},
		{line: "rm -r /srv/p"},
		{line: "rm /srv/link"},
		{user: "bob", line: "rm /etc/demo/readme", status: 1, stderr: "Permission denied"},
		{user: "bob", line: "rm -rf /home/bob/work"},
		{line: "rm -i /srv/empty", status: 1, stderr: "rm: invalid option -- 'i'"},
	} {
		tc.check(t, m)
	}
	d, ok := m.Dir("/srv/private")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o700, d.Mode)
	noFile(t, m, "/srv/p/q/r")
	noFile(t, m, "/srv/p")
	noFile(t, m, "/home/bob/work")
	_, ok = m.Link("/srv/link")
	require.False(t, ok, "rm removes the link")
	fileIs(t, m, "/etc/demo/readme", "hello", 0o644, "root", "root")
}

func TestChmodChownLikeCoreutils(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		{line: "install -m 0644 /dev/stdin /srv/f"},
		{line: "install -d /srv/tree/sub"},
		{line: "install /dev/stdin /srv/tree/sub/leaf"},
		{line: "chmod 0600 /srv/f"},
		{line: "chmod 4755 /srv/tree/sub/leaf"},
		{line: "chown svc /srv/f"},
		{line: "chown :adm /srv/f"},
		{line: "chown -R svc:svc /srv/tree"},
		{line: "chmod -R 0750 /srv/tree"},
		{line: "chmod 0600 /srv/nope", status: 1, stderr: "chmod: cannot access '/srv/nope': No such file or directory"},
		{line: "chmod u+x /srv/f", status: 1, stderr: "invalid mode 'u+x'"},
		{line: "chmod 0600", status: 1, stderr: "usage"},
		{line: "chown nosuch /srv/f", status: 1, stderr: "chown: invalid user: 'nosuch'"},
		{line: "chown root:nosuch /srv/f", status: 1, stderr: "chown: invalid group: 'root:nosuch'"},
		{line: "chown svc", status: 1, stderr: "usage"},
		// Only the owner changes a mode; only root gives a file away.
		{user: "bob", line: "chmod 0777 /srv/f", status: 1, stderr: "chmod: changing permissions of '/srv/f': Operation not permitted"},
		{user: "bob", line: "chown bob /srv/f", status: 1, stderr: "chown: changing ownership of '/srv/f': Operation not permitted"},
		{user: "bob", line: "install -m 0644 /dev/stdin /home/bob/mine"},
		{user: "bob", line: "chmod 0600 /home/bob/mine"},
		{user: "bob", line: "chown alice /home/bob/mine", status: 1, stderr: "Operation not permitted"},
		{user: "bob", line: "chown :adm /home/bob/mine", status: 1, stderr: "Operation not permitted"},
		{user: "alice", line: "install -m 0644 /dev/stdin /home/alice/mine"},
		// An owner may hand a file to a group they are in.
		{user: "alice", line: "chown :adm /home/alice/mine"},
		{user: "alice", line: "chown alice:adm /home/alice/mine"},
	} {
		tc.check(t, m)
	}
	fileIs(t, m, "/srv/f", "", 0o600, "svc", "adm")
	fileIs(t, m, "/srv/tree/sub/leaf", "", 0o750, "svc", "svc")
	d, ok := m.Dir("/srv/tree/sub")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o750, d.Mode)
	require.Equal(t, "svc", d.Owner)
	fileIs(t, m, "/home/bob/mine", "", 0o600, "bob", "bob")
	fileIs(t, m, "/home/alice/mine", "", 0o644, "alice", "adm")
}

func TestSetuidBitsSurviveInTheMode(t *testing.T) {
	t.Parallel()
	for bits, want := range map[uint32]fs.FileMode{
		0o644:  0o644,
		0o4755: fs.ModeSetuid | 0o755,
		0o2750: fs.ModeSetgid | 0o750,
		0o1777: fs.ModeSticky | 0o777,
		0o7000: fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky,
	} {
		require.Equal(t, want, fileMode(bits), "%o", bits)
	}
	_, err := parseOctalMode("17777")
	require.Error(t, err)
	mode, err := parseOctalMode("644")
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), mode)
}

func TestLnAndReadlink(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		{line: "ln -s /etc/demo/readme /srv/l"},
		{line: "readlink /srv/l", stdout: "/etc/demo/readme\n"},
		{line: "cat /srv/l", stdout: "hello"},
		{line: "ln -s /etc/hostname /srv/l", status: 1, stderr: "ln: failed to create symbolic link '/srv/l': File exists"},
		{line: "ln -sf /etc/hostname /srv/l"},
		{line: "readlink /srv/l", stdout: "/etc/hostname\n"},
		// A relative target is stored as given and resolved from the link's directory.
		{line: "ln -s ../etc/demo/readme /srv/rel"},
		{line: "readlink /srv/rel", stdout: "../etc/demo/readme\n"},
		{line: "cat /srv/rel", stdout: "hello"},
		// Into a directory, the target's base name.
		{line: "install -d /srv/links"},
		{line: "ln -s /etc/demo/readme /srv/links"},
		{line: "readlink /srv/links/readme", stdout: "/etc/demo/readme\n"},
		// A dangling link is made; reading through it fails.
		{line: "ln -s /nowhere /srv/dangling"},
		{line: "cat /srv/dangling", status: 1, stderr: "No such file or directory"},
		{line: "test -e /srv/dangling", status: 1},
		{line: "test -L /srv/dangling"},
		// A loop is ELOOP, as the kernel says after 40 links.
		{line: "ln -s /srv/loop2 /srv/loop1"},
		{line: "ln -s /srv/loop1 /srv/loop2"},
		{line: "cat /srv/loop1", status: 1, stderr: "Too many levels of symbolic links"},
		{line: "readlink /etc/demo/readme", status: 1},
		{line: "ln /etc/demo/readme /srv/hard", status: 1, stderr: "symbolic links only"},
		{user: "bob", line: "ln -s /etc/shadow /etc/evil", status: 1, stderr: "Permission denied"},
	} {
		tc.check(t, m)
	}
}
