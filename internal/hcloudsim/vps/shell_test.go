package vps

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// shellUserData declares the accounts the shell tests act as: alice may run two exact commands
// as root through sudo, bob has no sudo rule, svc is a system account owning the service's
// files, and demo.service is a unit whose program exists.
const shellUserData = `#cloud-config
hostname: box
ssh_genkeytypes: [ed25519]
groups: [svc]
users:
  - name: alice
    groups: [adm]
    sudo: ["ALL=(root) NOPASSWD: /usr/bin/systemctl restart demo.service, /usr/bin/install -m 0600 -o svc -g svc /dev/stdin /etc/demo/secret"]
  - name: bob
  - name: svc
    system: true
    no_create_home: true
write_files:
  - path: /etc/systemd/system/demo.service
    content: |
      [Service]
      User=svc
      ExecStart=/usr/bin/sleep infinity
  - path: /etc/demo/readme
    permissions: '0644'
    content: hello
`

// bootShell starts a machine from shellUserData plus extra (appended YAML) whose final stage
// does not run during the test, so only the commands the test sends change its state.
func bootShell(t *testing.T, extra string) *Machine {
	t.Helper()
	m, err := Start(t.Context(), Config{
		InstanceID:     42,
		Hostname:       "srv-42",
		UserData:       shellUserData + extra,
		IP:             net.IPv4(127, 0, 0, 1),
		CloudInitDelay: time.Hour,
	})
	require.NoError(t, err)
	require.Empty(t, m.State().BootError)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return m
}

// shellCase is one command line run as a user, and what a Debian 12 machine answers.
type shellCase struct {
	user   string
	line   string
	stdin  string
	stdout string // exact, when not empty
	stderr string // a part of stderr, when not empty
	status int
}

func (tc shellCase) check(t *testing.T, m *Machine) {
	t.Helper()
	user := tc.user
	if user == "" {
		user = "root"
	}
	out, errOut, status := m.RunAs(user, tc.line, []byte(tc.stdin))
	require.Equal(t, tc.status, status, "%s: %s\nstderr: %s", user, tc.line, errOut)
	if tc.stdout != "" {
		require.Equal(t, tc.stdout, out, "%s: %s", user, tc.line)
	}
	if tc.stderr != "" {
		require.Contains(t, errOut, tc.stderr, "%s: %s", user, tc.line)
	} else if tc.status == 0 {
		require.Empty(t, errOut, "%s: %s", user, tc.line)
	}
}

func TestShellWordsAndListsAsSh(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		// Quoting: single quotes keep everything, double quotes honour \" \\ \$, a backslash
		// escapes one character, and adjacent pieces form one word.
		{line: `echo 'a  b' "c  d" e\ f`, stdout: "a  b c  d e f\n"},
		{line: `echo "a\"b" 'c\d' "e\\f" "g\h"`, stdout: `a"b c\d e\f g\h` + "\n"},
		{line: `echo 'it'\''s'`, stdout: "it's\n"},
		{line: `echo ''`, stdout: "\n"},
		{line: `echo -n no newline`, stdout: "no newline"},
		{line: `echo a # a comment`, stdout: "a\n"},
		{line: `echo a#b`, stdout: "a#b\n"},
		{line: "echo one\necho two", stdout: "one\ntwo\n"},
		// Lists: the status is the last command's; && and || skip by the previous status.
		{line: `true; false`, status: 1},
		{line: `false; true`},
		{line: `false && echo skipped`, status: 1, stdout: ""},
		{line: `false || echo ran`, stdout: "ran\n"},
		{line: `true || echo skipped; echo after`, stdout: "after\n"},
		{line: `true && false || echo rescued`, stdout: "rescued\n"},
		{line: `echo "a;b" 'c&&d'`, stdout: "a;b c&&d\n"},
		{line: `echo trailing;`, stdout: "trailing\n"},
		// Programs: PATH lookup, merged /usr, and bash's 127 for what is not there.
		{line: `/bin/echo merged`, stdout: "merged\n"},
		{line: `/usr/sbin/true`},
		{line: `nosuch --help`, status: 127, stderr: "bash: nosuch: command not found"},
		{line: `/opt/tool/run`, status: 127, stderr: "bash: /opt/tool/run: No such file or directory"},
		{line: `false`, status: 1},
		{line: `sh -c 'false; true'`},
		{line: `sh -e -c 'false; echo not reached'`, status: 1, stdout: ""},
		{line: `bash -c 'echo "in bash"'`, stdout: "in bash\n"},
		// What a real shell would expand or redirect is refused rather than run differently.
		{line: `echo 'unterminated`, status: 2, stderr: "unterminated quoted string"},
		{line: `echo "unterminated`, status: 2, stderr: "unterminated quoted string"},
		{line: `echo $HOME`, status: 2, stderr: "shell syntax is not simulated"},
		{line: `echo "$HOME"`, status: 2, stderr: "shell syntax is not simulated"},
		{line: "echo `id`", status: 2, stderr: "shell syntax is not simulated"},
		{line: `cat /etc/demo/readme | cat`, status: 2, stderr: "shell syntax is not simulated"},
		{line: `echo x > /tmp/x`, status: 2, stderr: "shell syntax is not simulated"},
		{line: `ls /etc/*`, status: 2, stderr: "shell syntax is not simulated"},
		{line: `cat ~/x`, status: 2, stderr: "shell syntax is not simulated"},
		{line: `true &&`, status: 2, stderr: "without a command"},
		{line: `sleep 1 &`, status: 2, stderr: "shell syntax is not simulated"},
	} {
		tc.check(t, m)
	}
	_, exists := m.File("/tmp/x")
	require.False(t, exists, "a refused redirection writes nothing")
}

func TestQuoteArgsRoundTripsThroughTheLexer(t *testing.T) {
	t.Parallel()
	for _, argv := range [][]string{
		{"echo", "plain", "a-b_c.d/e=f:g,h+i@j%k"},
		{"echo", "two words", ""},
		{"echo", "it's", `back\slash`, `"dq"`},
		{"echo", "$HOME", "*", "a;b", "x|y", "#c"},
	} {
		line := quoteArgs(argv)
		got, err := splitWords(line)
		require.NoError(t, err, line)
		require.Equal(t, argv, got, line)
	}
	require.Equal(t, "echo plain", quoteArgs([]string{"echo", "plain"}), "words that need no quotes stay bare")
}

func TestParseFlagsLikeGetoptLong(t *testing.T) {
	t.Parallel()
	valued := map[string]string{"-m": "mode", "--mode": "mode", "-o": "owner"}
	bools := map[string]string{"-d": "dir", "-T": "notdir", "--verbose": "verbose"}
	for _, tc := range []struct {
		args []string
		opts map[string]string
		rest []string
		err  string
	}{
		{args: []string{"-m", "0600", "a", "b"}, opts: map[string]string{"mode": "0600"}, rest: []string{"a", "b"}},
		{args: []string{"-m0600", "a"}, opts: map[string]string{"mode": "0600"}, rest: []string{"a"}},
		{args: []string{"--mode=0600", "a"}, opts: map[string]string{"mode": "0600"}, rest: []string{"a"}},
		{args: []string{"--mode", "0600", "a"}, opts: map[string]string{"mode": "0600"}, rest: []string{"a"}},
		{args: []string{"-dTm", "0700", "x"}, opts: map[string]string{"dir": "1", "notdir": "1", "mode": "0700"}, rest: []string{"x"}},
		{args: []string{"a", "-T", "b"}, opts: map[string]string{"notdir": "1"}, rest: []string{"a", "b"}},
		{args: []string{"--", "-m", "x"}, opts: map[string]string{}, rest: []string{"-m", "x"}},
		{args: []string{"-"}, opts: map[string]string{}, rest: []string{"-"}},
		{args: []string{"-x"}, err: "install: invalid option -- 'x'"},
		{args: []string{"--frob"}, err: "install: unrecognized option '--frob'"},
		{args: []string{"--verbose=yes"}, err: "install: unrecognized option '--verbose=yes'"},
		{args: []string{"-m"}, err: "install: option requires an argument -- 'm'"},
		{args: []string{"--mode"}, err: "install: option '--mode' requires an argument"},
	} {
		opts, rest, err := parseFlags("install", tc.args, valued, bools)
		if tc.err != "" {
			require.EqualError(t, err, tc.err, "%q", tc.args)
			continue
		}
		require.NoError(t, err, "%q", tc.args)
		require.Equal(t, tc.opts, opts, "%q", tc.args)
		require.Equal(t, tc.rest, rest, "%q", tc.args)
	}
}

func TestSudoThroughTheShell(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	for _, tc := range []shellCase{
		// The exact commands of alice's rule run as root, with bare names found through PATH.
		{user: "alice", line: "sudo -n systemctl restart demo.service"},
		{user: "alice", line: "sudo /usr/bin/install -m 0600 -o svc -g svc /dev/stdin /etc/demo/secret", stdin: "s3cret"},
		{user: "alice", line: "sudo -- install -m 0600 -o svc -g svc /dev/stdin /etc/demo/secret", stdin: "s3cret"},
		// Anything else is refused in sudo's words, naming the resolved program.
		{user: "alice", line: "sudo systemctl stop demo.service", status: 1,
			stderr: "Sorry, user alice is not allowed to execute '/usr/bin/systemctl stop demo.service' as root on box."},
		{user: "alice", line: "sudo -u svc systemctl restart demo.service", status: 1,
			stderr: "Sorry, user alice is not allowed to execute '/usr/bin/systemctl restart demo.service' as svc on box."},
		{user: "alice", line: "sudo install -m 0644 -o svc -g svc /dev/stdin /etc/demo/secret", status: 1, stderr: "is not allowed to execute"},
		{user: "alice", line: "sudo cat /etc/demo/secret", status: 1, stderr: "is not allowed to execute '/usr/bin/cat /etc/demo/secret'"},
		{user: "bob", line: "sudo true", status: 1, stderr: "bob is not in the sudoers file."},
		{user: "alice", line: "sudo", status: 1, stderr: "usage: sudo"},
		{user: "alice", line: "sudo -u", status: 1, stderr: "option requires an argument -- 'u'"},
		{user: "alice", line: "sudo -u nosuch true", status: 1, stderr: "sudo: unknown user nosuch"},
		{user: "alice", line: "sudo nosuchtool", status: 1, stderr: "sudo: nosuchtool: command not found"},
		{user: "alice", line: "sudo -E true", status: 1, stderr: "option -E is not simulated"},
		// root needs no rule; -u runs as the target's credentials.
		{line: "sudo -u svc whoami", stdout: "svc\n"},
		{line: "sudo -u svc id -gn", stdout: "svc\n"},
		{line: "sudo cat /etc/demo/secret", stdout: "s3cret"},
	} {
		tc.check(t, m)
	}
	f, ok := m.File("/etc/demo/secret")
	require.True(t, ok)
	require.Equal(t, "svc", f.Owner)
	require.Equal(t, "svc", f.Group)
	require.EqualValues(t, 0o600, f.Mode)
	require.Equal(t, "active", m.Services()["demo.service"])
	// A refused sudo ran nothing: the unit was not stopped.
	out, _, _ := m.RunAs("alice", "systemctl is-active demo.service", nil)
	require.Equal(t, "active\n", out)
}

func TestIDWhoamiHostname(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	alice := userNamed(t, m, "alice")
	gids := m.Groups()
	for _, tc := range []shellCase{
		{user: "alice", line: "whoami", stdout: "alice\n"},
		{user: "alice", line: "id -un", stdout: "alice\n"},
		{user: "alice", line: "id -u", stdout: itoa(alice.UID) + "\n"},
		{user: "alice", line: "id -g", stdout: itoa(gids["alice"]) + "\n"},
		{user: "alice", line: "id -Gn", stdout: "alice adm\n"},
		{user: "alice", line: "id", stdout: "uid=" + itoa(alice.UID) + "(alice) gid=" + itoa(gids["alice"]) + "(alice) groups=" +
			itoa(gids["alice"]) + "(alice)," + itoa(gids["adm"]) + "(adm)\n"},
		{line: "id", stdout: "uid=0(root) gid=0(root) groups=0(root)\n"},
		{user: "alice", line: "id -Z", status: 1, stderr: "not simulated"},
		// cloud-config's hostname wins over the server's name.
		{line: "hostname", stdout: "box\n"},
		{line: "cat /etc/hostname", stdout: "box\n"},
	} {
		tc.check(t, m)
	}
	_, errOut, status := m.RunAs("nosuch", "true", nil)
	require.Equal(t, 1, status)
	require.Equal(t, "runuser: user nosuch does not exist\n", errOut)
}

func TestCommandsAreRecordedWithTheirOutcome(t *testing.T) {
	t.Parallel()
	m := bootShell(t, "")
	m.RunAs("bob", "cat /etc/sudoers.d/90-cloud-init-users", []byte("in"))
	cmds := m.Commands()
	require.NotEmpty(t, cmds)
	last := cmds[len(cmds)-1]
	require.Equal(t, "runuser", last.Source)
	require.Equal(t, "bob", last.User)
	require.Equal(t, "cat /etc/sudoers.d/90-cloud-init-users", last.Line)
	require.Equal(t, 1, last.ExitStatus)
	require.Contains(t, last.Stderr, "Permission denied")
	require.Equal(t, 2, last.StdinBytes)
}

// runOK runs line as user and fails the test on a non-zero status.
func runOK(t *testing.T, m *Machine, user, line string) int {
	t.Helper()
	_, errOut, status := m.RunAs(user, line, nil)
	require.Equal(t, 0, status, "%s: %s: %s", user, line, errOut)
	return status
}

func userNamed(t *testing.T, m *Machine, name string) User {
	t.Helper()
	for _, u := range m.Users() {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no user %s", name)
	return User{}
}

func itoa(n int) string { return strconv.Itoa(n) }
