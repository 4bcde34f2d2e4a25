package vps

import (
	"io/fs"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func bootHostKeys(t *testing.T, cfg string) *Machine {
	t.Helper()
	m, err := Start(t.Context(), Config{IP: net.IPv4(127, 0, 0, 1), CloudInitDelay: time.Hour, UserData: "#cloud-config\n" + cfg})
	require.NoError(t, err)
	require.Empty(t, m.State().BootError)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	return m
}

func keyTypes(m *Machine) []string {
	var out []string
	for _, k := range m.HostKeys() {
		out = append(out, k.Type())
	}
	slices.Sort(out)
	return out
}

// TestHostKeysAsCCSSH: cloud-init 22.4's cc_ssh deletes the image's keys (unless
// ssh_deletekeys: false), writes seeded keys verbatim, generates ssh_genkeytypes only when no
// ssh_keys are given; every key file is 0600 root, and the .pub holds the presented key.
func TestHostKeysAsCCSSH(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	seeded := "ssh_keys:\n  ed25519_private: |\n" + indent(k.hostPrivPEM, "    ") + "\n  ed25519_public: " + k.hostPubLine + "\n"

	m := bootHostKeys(t, seeded)
	require.Equal(t, []string{ssh.KeyAlgoED25519}, keyTypes(m), "seeded keys only: no generation")
	require.Equal(t, k.hostSigner.PublicKey().Marshal(), m.HostKeys()[0].Marshal())
	fileIs(t, m, "/etc/ssh/ssh_host_ed25519_key", k.hostPrivPEM, 0o600, "root", "root")
	fileIs(t, m, "/etc/ssh/ssh_host_ed25519_key.pub", k.hostPubLine, 0o600, "root", "root")
	_, ok := m.File("/etc/ssh/ssh_host_rsa_key")
	require.False(t, ok, "the image's other keys are deleted")

	m = bootHostKeys(t, "ssh_genkeytypes: [ecdsa]\n")
	require.Equal(t, []string{ssh.KeyAlgoECDSA256}, keyTypes(m))
	pub, ok := m.File("/etc/ssh/ssh_host_ecdsa_key.pub")
	require.True(t, ok)
	require.Equal(t, fs.FileMode(0o600), pub.Mode)
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pub.Content)
	require.NoError(t, err)
	require.Equal(t, m.HostKeys()[0].Marshal(), pk.Marshal(), "the .pub is the key sshd presents")

	// Keeping the image's keys: its ed25519 key survives beside the generated ones, a key
	// nobody outside the machine knows.
	m = bootHostKeys(t, "ssh_deletekeys: false\nssh_genkeytypes: [ecdsa]\n")
	require.Equal(t, []string{ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519}, keyTypes(m))
	m = bootHostKeys(t, seeded+"ssh_deletekeys: false\n")
	require.Equal(t, []string{ssh.KeyAlgoED25519}, keyTypes(m), "a seeded ed25519 key replaces the image's")

	// ssh_pwauth writes cloud-init's own drop-in; "unchanged" leaves sshd's default alone.
	m = bootHostKeys(t, "ssh_genkeytypes: [ed25519]\nssh_pwauth: true\n")
	fileIs(t, m, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n", 0o600, "root", "root")
	m = bootHostKeys(t, "ssh_genkeytypes: [ed25519]\nssh_pwauth: unchanged\n")
	_, ok = m.File("/etc/ssh/sshd_config.d/50-cloud-init.conf")
	require.False(t, ok)

	// A seeded key of the wrong type for its slot is refused at boot, as ssh-keygen would.
	_, err = parseUserData("#cloud-config\nssh_keys:\n  rsa_private: |\n" + indent(k.hostPrivPEM, "    ") + "\n")
	require.ErrorContains(t, err, "rsa_private holds a ssh-ed25519 key")
	_, err = parseUserData("#cloud-config\nssh_keys:\n  ed25519_private: |\n" + indent(k.hostPrivPEM, "    ") + "\n  ed25519_public: not a key\n")
	require.ErrorContains(t, err, "ed25519_public does not parse")
	require.True(t, strings.HasPrefix(k.hostPubLine, "ssh-ed25519 "))
}
