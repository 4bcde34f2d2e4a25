package vps

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseUserDataAcceptsCloudInitShapes(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("zipped\n"))
	require.NoError(t, zw.Close())

	cc, err := parseUserData(`#cloud-config
hostname: box
users:
  - default
  - name: ops
    groups: adm, users
    sudo: [ "ALL=(ALL) NOPASSWD:ALL" ]
    ssh_authorized_keys: ` + k.clientPub + `
  - name: svc
    sudo: false
    system: yes
ssh_keys:
  ed25519_private: |
` + indent(k.hostPrivPEM, "    ") + `
ssh_genkeytypes: ~
disable_root: off
write_files:
  - path: /etc/a
    permissions: 0640
  - path: /etc/b
    permissions: '600'
    encoding: gz+b64
    content: ` + base64.StdEncoding.EncodeToString(gz.Bytes()) + `
packages: [curl, [nodejs, "20.1"]]
runcmd:
  - [echo, "a b"]
  - echo hi
phone_home: {url: "http://x/$INSTANCE_ID", tries: many}
something_new: 1
`)
	require.NoError(t, err)
	require.Equal(t, "box", cc.hostname)
	require.True(t, cc.defaultUserSet)
	require.Len(t, cc.users, 2)
	require.Equal(t, []string{"adm", "users"}, cc.users[0].groups)
	require.Equal(t, []string{"ALL=(ALL) NOPASSWD:ALL"}, cc.users[0].sudo)
	require.Equal(t, []string{k.clientPub}, cc.users[0].keys)
	require.Nil(t, cc.users[1].sudo)
	require.True(t, cc.users[1].system)
	require.Len(t, cc.hostKeys, 1)
	require.Equal(t, k.hostSigner.PublicKey().Marshal(), cc.hostKeys[0].signer.PublicKey().Marshal())
	require.Contains(t, cc.hostKeys[0].publicLine, "ssh-ed25519 AAAA", "derived like ssh-keygen -y")
	require.Equal(t, []string{}, cc.genKeyTypes, "null means none, as get_cfg_option_list reads it")
	require.False(t, cc.disableRoot)
	require.Equal(t, fs.FileMode(0o640), cc.writeFiles[0].perm)
	require.Equal(t, fs.FileMode(0o600), cc.writeFiles[1].perm)
	require.Equal(t, "zipped\n", string(cc.writeFiles[1].content))
	require.Equal(t, []string{"curl", "nodejs=20.1"}, cc.packages)
	require.Equal(t, []shellCmd{{argv: []string{"echo", "a b"}, line: "echo 'a b'"}, {line: "echo hi"}}, cc.runCmd)
	require.Equal(t, &phoneHome{url: "http://x/$INSTANCE_ID", post: postListAll, tries: 10}, cc.phoneHome)
	require.Equal(t, []string{"something_new"}, cc.unknownKeys)
}

func TestGzippedUserData(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("#cloud-config\npackages: [jq]\n"))
	require.NoError(t, zw.Close())
	cc, err := parseUserData(gz.String())
	require.NoError(t, err)
	require.Equal(t, []string{"jq"}, cc.packages)
}

func TestGeneratedHostKeysWhenNoneSeeded(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	b := setup(t, func(_ *Config, cc map[string]any) {
		delete(cc, "ssh_keys")
		cc["ssh_genkeytypes"] = []string{"ed25519", "ecdsa"}
	})
	require.Empty(t, b.m.State().BootError)
	require.Len(t, b.m.HostKeys(), 2)
	_, err := dial(b.m.SSHAddr(), loginUser, b.keys.clientSigner, k.hostSigner.PublicKey())
	require.ErrorContains(t, err, "host key mismatch")
	<-b.sink.got
	form := b.sink.requests()[0].form
	require.Contains(t, form.Get("pub_key_ed25519"), "ssh-ed25519 ")
}

func indent(s, prefix string) string {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter([]byte(s), []byte("\n")) {
		if len(line) > 0 {
			out.WriteString(prefix)
			out.Write(line)
		}
	}
	return string(bytes.TrimRight(out.Bytes(), "\n"))
}
