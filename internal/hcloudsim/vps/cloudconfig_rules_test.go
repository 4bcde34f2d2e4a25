package vps

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io/fs"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestCloudConfigShapesCloudInitRejects: shapes cloud-init's schema refuses (or that would
// leave the machine unreachable) are boot errors naming the key and the problem.
func TestCloudConfigShapesCloudInitRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{"hostname: [a, b]", "cloud-config hostname: want a string, got a list"},
		{"users: [[a]]", "cloud-config users: [0]: want a name or a mapping, got a list"},
		{"users: [{groups: adm}]", "cloud-config users: [0]: user without a name"},
		{"users: [{name: a, sudo: true}]", "true is not a sudo rule"},
		{"users: [{name: a, lock_passwd: maybe}]", `lock_passwd: want a boolean, got "maybe"`},
		{"users: [{name: a, ssh_authorized_keys: {k: v}}]", "ssh_authorized_keys: want a list of strings, got a mapping"},
		{"groups: [[x]]", "cloud-config groups: [0]: want a name or a mapping, got a list"},
		{"ssh_keys: [a]", "cloud-config ssh_keys: want a mapping, got a list"},
		{"ssh_keys: {ed25519_public: 'ssh-ed25519 AAAA'}", "ed25519_public given without ed25519_private"},
		{"ssh_deletekeys: sometimes", "cloud-config ssh_deletekeys: want a boolean"},
		{"write_files: {path: /x}", "cloud-config write_files: want a list, got a mapping"},
		{"write_files: [a]", `write_files: [0]: want a mapping, got the scalar "a"`},
		{"write_files: [{path: etc/x}]", `path "etc/x" is not absolute`},
		{"write_files: [{path: /x, source: {uri: 'http://h/x'}}]", "source (download) is not simulated"},
		{"write_files: [{path: /x, encoding: rot13, content: a}]", `unknown encoding "rot13"`},
		{"write_files: [{path: /x, encoding: gzip, content: plain}]", "content is not gzip"},
		{"write_files: [{path: /x, permissions: '0999'}]", `invalid permissions "0999"`},
		{"write_files: [{path: /x, permissions: [1]}]", "permissions: want a scalar, got a list"},
		{"write_files: [{path: /x, append: sure}]", "append: want a boolean"},
		{"packages: curl", "cloud-config packages: want a list"},
		{"packages: [{a: b}]", "packages: [0]: want a package name, got a mapping"},
		{"packages: [[]]", "packages: [0]: want [name, version]"},
		{"runcmd: echo hi", "cloud-config runcmd: want a list"},
		{"runcmd: [{a: b}]", "runcmd: [0]: want a string or a list, got a mapping"},
		{"bootcmd: [[echo, [x]]]", "bootcmd: [0]: [1]: want a string, got a list"},
		{"phone_home: http://x", "cloud-config phone_home: want a mapping"},
		{"phone_home: {url: 'http://x', post: some}", `post: want "all" or a list`},
		{"phone_home: {url: [a]}", "url: want a string, got a list"},
	} {
		_, err := parseUserData("#cloud-config\n" + tc.body + "\n")
		require.ErrorContains(t, err, tc.want, tc.body)
	}
	// Those that parse but are refused when the machine is set up are boot errors too.
	m, err := Start(t.Context(), Config{UserData: "#cloud-config\nssh_genkeytypes: [dsa]\n", IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	require.Contains(t, m.State().BootError, `key type "dsa" is not supported`)
}

func TestCloudConfigHeaderAndEncodings(t *testing.T) {
	t.Parallel()
	_, err := parseUserData("#cloud-config   \r\nhostname: a\n")
	require.NoError(t, err, "trailing blanks after the header are fine")
	_, err = parseUserData("#cloud-config\n")
	require.ErrorContains(t, err, "cloud-config is empty")
	_, err = parseUserData("#cloud-configX\n")
	require.ErrorContains(t, err, `first line "#cloud-configX"`)
	_, err = parseUserData("\x1f\x8bnot really gzip")
	require.ErrorContains(t, err, "user data: gzip")
	_, err = parseUserData("#!" + strings.Repeat("x", 100))
	require.ErrorContains(t, err, "…", "a long first line is cut in the message")

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("payload"))
	require.NoError(t, zw.Close())
	for _, tc := range []struct{ content, encoding, want string }{
		{"plain", "", "plain"},
		{"plain", "text/plain", "plain"},
		{base64.StdEncoding.EncodeToString([]byte("b64")), "b64", "b64"},
		{base64.StdEncoding.EncodeToString([]byte("b64")), "BASE64", "b64"},
		// cloud-init joins lines of base64 content (YAML block scalars break them).
		{"cGF5\nbG9h\nZA==\n", "base64", "payload"},
		{gz.String(), "gzip", "payload"},
		{gz.String(), "gz", "payload"},
		{base64.StdEncoding.EncodeToString(gz.Bytes()), "gz+b64", "payload"},
		{base64.StdEncoding.EncodeToString(gz.Bytes()), "gzip+base64", "payload"},
	} {
		got, err := decodeContent(tc.content, tc.encoding)
		require.NoError(t, err, tc.encoding)
		require.Equal(t, tc.want, string(got), tc.encoding)
	}
	_, err = decodeContent("!!", "gz+b64")
	require.ErrorContains(t, err, "not valid base64")
}

// TestWriteFilesPermissionsAsDecodePerms follows cloud-init's decode_perms: strings are octal,
// integers are what YAML 1.1 made of them (an unquoted 0644 is octal).
func TestWriteFilesPermissionsAsDecodePerms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want fs.FileMode
		err  bool
	}{
		{"'0644'", 0o644, false},
		{"'644'", 0o644, false},
		{"'0o600'", 0o600, false},
		{"'0'", 0, false},
		{"0o640", 0o640, false},
		{"0640", 0o640, false},
		{"420", 0o644, false}, // decimal 420 is 0644
		{"'4755'", fs.ModeSetuid | 0o755, false},
		{"'rw-r--r--'", 0, true},
		{"'08'", 0, true},
		{"070000", 0, true},
	} {
		var doc yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte("p: "+tc.yaml), &doc))
		got, err := parsePermissions(doc.Content[0].Content[1])
		if tc.err {
			require.Error(t, err, tc.yaml)
			continue
		}
		require.NoError(t, err, tc.yaml)
		require.Equal(t, tc.want, got, tc.yaml)
	}
}

func TestPhoneHomeOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want *phoneHome
	}{
		{"phone_home: ~", nil},
		{"phone_home: {url: 'http://h/$INSTANCE_ID'}", &phoneHome{url: "http://h/$INSTANCE_ID", post: postListAll, tries: 10}},
		{"phone_home: {url: u, post: all, tries: 3}", &phoneHome{url: "u", post: postListAll, tries: 3}},
		{"phone_home: {url: u, post: [instance_id, hostname]}", &phoneHome{url: "u", post: []string{"instance_id", "hostname"}, tries: 10}},
		// cloud-init falls back to 10 when tries is no integer, and tries at least once.
		{"phone_home: {url: u, tries: lots}", &phoneHome{url: "u", post: postListAll, tries: 10}},
		{"phone_home: {url: u, tries: 0}", &phoneHome{url: "u", post: postListAll, tries: 1}},
	} {
		cc, err := parseUserData("#cloud-config\n" + tc.body + "\n")
		require.NoError(t, err, tc.body)
		require.Equal(t, tc.want, cc.phoneHome, tc.body)
	}
}

func TestUsersAndGroupsAsCloudInitMakesThem(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	m, err := Start(t.Context(), Config{IP: net.IPv4(127, 0, 0, 1), CloudInitDelay: time.Hour, Hostname: "srv",
		UserData: `#cloud-config
fqdn: web.example.com
ssh_genkeytypes: [ed25519]
ssh_pwauth: false
groups:
  - ops: [carol]
  - extra
users:
  - default
  - carol
  - dave
  - name: erin
    primary_group: staff
    groups: ops, users
    shell: /bin/bash
    homedir: /srv/erin
    ssh_authorized_keys:
      - ` + k.clientPub + `
      - not a key
  - name: svc
    system: true
  - root
timezone: Europe/Berlin
made_up_key: 1
`})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	st := m.State()
	require.Empty(t, st.BootError)

	users := map[string]User{}
	for _, u := range m.Users() {
		users[u.Name] = u
	}
	require.Equal(t, []string{"carol", "dave", "erin", "root", "svc"}, slices.Sorted(func(yield func(string) bool) {
		for n := range users {
			if !yield(n) {
				return
			}
		}
	}))
	require.Equal(t, User{Name: "erin", UID: users["erin"].UID, Groups: []string{"staff", "ops", "users"}, Home: "/srv/erin", Shell: "/bin/bash"}, users["erin"])
	require.Equal(t, []string{"carol"}, users["carol"].Groups, "a plain name gets its own group")
	require.Equal(t, "/home/carol", users["carol"].Home, "a plain name gets useradd's defaults")
	require.Equal(t, "/bin/sh", users["carol"].Shell)
	home, ok := m.Dir("/home/carol")
	require.True(t, ok)
	require.Equal(t, "carol:carol", home.Owner+":"+home.Group)
	require.Equal(t, 0, users["root"].UID)
	uids := []int{users["carol"].UID, users["dave"].UID, users["erin"].UID}
	require.True(t, slices.IsSorted(uids) && uids[0] >= 1000 && !slices.Contains(uids[1:], uids[0]), "uids from 1000 on, in order: %v", uids)
	groups := m.Groups()
	require.Equal(t, 100, groups["users"])
	require.Contains(t, groups, "extra")
	require.Contains(t, groups, "staff")

	// useradd -m: homes 0755, .ssh 0700, authorized_keys 0600, all the user's.
	home, ok = m.Dir("/srv/erin")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o755, home.Mode)
	require.Equal(t, "erin:staff", home.Owner+":"+home.Group)
	sshDir, ok := m.Dir("/srv/erin/.ssh")
	require.True(t, ok)
	require.Equal(t, fs.ModeDir|0o700, sshDir.Mode)
	fileIs(t, m, "/srv/erin/.ssh/authorized_keys", k.clientPub+"\nnot a key\n", 0o600, "erin", "staff")
	_, ok = m.Dir("/home/svc")
	require.False(t, ok, "system users get no home")
	_, ok = m.File("/etc/sudoers.d/90-cloud-init-users")
	require.False(t, ok, "no sudo rule, no sudoers file")

	// The hostname is the fqdn's first label; password logins are switched off in a drop-in.
	fileIs(t, m, "/etc/hostname", "web\n", 0o644, "root", "root")
	fileIs(t, m, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n", 0o600, "root", "root")

	warnings := strings.Join(st.Warnings, "\n")
	require.Contains(t, warnings, `cloud-config key "made_up_key" is not simulated`)
	require.NotContains(t, warnings, "timezone", "known keys are not warned about")
	require.Contains(t, warnings, "the distro default user is not simulated")
	require.Contains(t, warnings, "root is not reconfigured")
	require.Contains(t, warnings, "erin: ssh_authorized_keys[1] does not parse")
}

func TestWriteFilesOrderAppendAndAbort(t *testing.T) {
	t.Parallel()
	m, err := Start(t.Context(), Config{IP: net.IPv4(127, 0, 0, 1), CloudInitDelay: 0,
		UserData: `#cloud-config
ssh_genkeytypes: [ed25519]
users: [{name: app}]
bootcmd:
  - [install, -d, -m, "0700", /var/lib/boot]
write_files:
  - path: /etc/app/log
    content: "one\n"
  - path: /etc/app/log
    content: "two\n"
    append: true
  - path: /etc/app/conf
    permissions: '0640'
    owner: root:adm
    content: x
  - path: /home/app/later
    owner: app:app
    defer: true
    content: deferred
  - path: /etc/app/owned-too-early
    owner: app
    content: y
  - path: /etc/app/never
    content: z
runcmd:
  - cat /etc/app/log
  - [sh, -c, "test -d /var/lib/boot"]
`})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	<-m.Done()
	fileIs(t, m, "/etc/app/log", "one\ntwo\n", 0o644, "root", "root")
	fileIs(t, m, "/etc/app/conf", "x", 0o640, "root", "adm")
	fileIs(t, m, "/home/app/later", "deferred", 0o644, "app", "app")
	// The init stage runs before users exist: chown to app fails and aborts the module, so
	// later entries are never written; the file itself stays root's.
	fileIs(t, m, "/etc/app/owned-too-early", "y", 0o644, "root", "root")
	noFile(t, m, "/etc/app/never")
	d, ok := m.Dir("/var/lib/boot")
	require.True(t, ok, "bootcmd ran")
	require.Equal(t, fs.ModeDir|0o700, d.Mode)

	st := m.State()
	require.True(t, st.CloudInitDone)
	require.Empty(t, st.CloudInitErrors, "every runcmd line succeeded")
	require.Contains(t, strings.Join(st.Warnings, "\n"), `no user "app" yet`)
	var sources []string
	for _, c := range m.Commands() {
		sources = append(sources, c.Source+": "+c.Line)
		require.Equal(t, 0, c.ExitStatus, c.Line)
	}
	require.Equal(t, []string{"bootcmd: install -d -m 0700 /var/lib/boot", "runcmd: cat /etc/app/log", "runcmd: sh -c 'test -d /var/lib/boot'"}, sources)
}

func TestRuncmdFailureWithoutSetEGoesOn(t *testing.T) {
	t.Parallel()
	m, err := Start(t.Context(), Config{IP: net.IPv4(127, 0, 0, 1),
		UserData: "#cloud-config\nssh_genkeytypes: [ed25519]\nruncmd:\n  - false\n  - install -d /var/lib/after\n  - echo $UNSIMULATED\n"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	<-m.Done()
	_, ok := m.Dir("/var/lib/after")
	require.True(t, ok, "without set -e the script goes on after a failure")
	st := m.State()
	// The script's status is its last command's: the unsimulated line (2) makes it fail.
	require.Len(t, st.CloudInitErrors, 1)
	warnings := strings.Join(st.Warnings, "\n")
	require.Contains(t, warnings, `runcmd: "false" exited 1`)
	require.Contains(t, warnings, `runcmd: "echo $UNSIMULATED" exited 2`)
	out, _, status := m.RunAs("root", "cloud-init status", nil)
	require.Equal(t, 1, status)
	require.Equal(t, "status: error\n", out)
}
