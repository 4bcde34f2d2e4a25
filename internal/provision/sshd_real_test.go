package provision

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/sshkey"
	"github.com/rachelcloud/admin/internal/testkit"
)

// realSSHD is OpenSSH's sshd on a loopback port with a throwaway configuration, logging in root
// by key (the VPS's own users and sudo rule cannot exist on the test machine).
type realSSHD struct {
	addr   string
	host   *sshkey.HostKey
	signer ssh.Signer
}

func startRealSSHD(t *testing.T) *realSSHD {
	t.Helper()
	sshd := testkit.Require(t, "sshd")
	testkit.RequireRoot(t, "it starts OpenSSH's sshd, which logs in root by key")
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege-separation directory

	dir := t.TempDir()
	host, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	client, err := sshkey.Generate(sshkey.Ed25519, "rachel-provisioner")
	require.NoError(t, err)
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	require.NoError(t, os.WriteFile(hostKeyFile, []byte(host.PrivateOpenSSH), 0o600))
	authKeys := filepath.Join(dir, "authorized_keys")
	require.NoError(t, os.WriteFile(authKeys, []byte(client.PublicKey+"\n"), 0o600))

	port := freeTCPPort(t)
	conf := filepath.Join(dir, "sshd_config")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join([]string{
		fmt.Sprintf("ListenAddress 127.0.0.1:%d", port),
		"HostKey " + hostKeyFile,
		"AuthorizedKeysFile " + authKeys,
		"PidFile none", "UsePAM no", "StrictModes no",
		"PermitRootLogin prohibit-password", "AllowUsers root",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"LogLevel VERBOSE",
	}, "\n")+"\n"), 0o600))
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "Server listening") {
				once = true
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("sshd did not start listening")
	}
	signer, err := sshkey.ParsePrivateKey(client.PrivateKeyPEM)
	require.NoError(t, err)
	return &realSSHD{addr: fmt.Sprintf("127.0.0.1:%d", port), host: host, signer: signer}
}

func (r *realSSHD) dial(pinned ssh.PublicKey) (*vpsConn, error) {
	return dialVPS(context.Background(), r.addr, &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(r.signer)},
		HostKeyCallback: sshkey.FixedHostKeyCallback(pinned), HostKeyAlgorithms: []string{pinned.Type()},
		Timeout: 5 * time.Second,
	}, DefaultTimings().sshLimits())
}

// TestInjectionTransportAgainstOpenSSH runs the injector's SSH transport (pinned host key, key
// authentication, one session per command, secret bytes on stdin only, atomic rename) against a
// real OpenSSH sshd, which the simulator's server only imitates.
func TestInjectionTransportAgainstOpenSSH(t *testing.T) {
	t.Parallel()
	r := startRealSSHD(t)
	dir := t.TempDir()

	// A different pinned key: the handshake fails before anything is sent.
	other, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	_, err = r.dial(other.PublicKey())
	require.Error(t, err)
	require.Contains(t, err.Error(), "host key")

	c, err := r.dial(r.host.PublicKey())
	require.NoError(t, err)
	defer c.Close()

	target := filepath.Join(dir, "etc-rachel")
	require.NoError(t, os.Mkdir(target, 0o700))
	secret := []byte("TELEGRAM_BOT_TOKEN=123456789:AAEhBP0av28-real-sshd-secret\nTELEGRAM_OWNER_ID=42\n")
	tmp, final := filepath.Join(target, ".telegram.env.tmp"), filepath.Join(target, "telegram.env")
	require.NoError(t, os.WriteFile(final, []byte("old"), 0o600))
	ctx := context.Background()
	_, err = c.Run(ctx, "/usr/bin/install -m 0600 -o root -g root /dev/stdin "+tmp, secret)
	require.NoError(t, err)
	_, err = c.Run(ctx, "/usr/bin/mv -fT "+tmp+" "+final, nil)
	require.NoError(t, err)
	got, err := os.ReadFile(final)
	require.NoError(t, err)
	require.Equal(t, secret, got, "stdin arrives whole and ends: install returns")
	st, err := os.Stat(final)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, err = os.Stat(tmp)
	require.True(t, os.IsNotExist(err), "the temporary file was renamed away")

	out, err := c.Run(ctx, "echo active", nil)
	require.NoError(t, err)
	require.Equal(t, "active", strings.TrimSpace(string(out)))
	_, err = c.Run(ctx, "/usr/bin/false", nil)
	require.Error(t, err, "a failing command's exit status reaches the injector")
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// asNobody runs a shell line as the unprivileged user nobody (the role of a compromised
// assistant) and returns its combined output and error.
func asNobody(line string) (string, error) {
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// layout makes a stand-in for /etc/rachel (and a stand-in for cloud-init's per-boot scripts)
// under a directory nobody may traverse, and rewrites cmd's paths and service user to match.
type layout struct{ root, conf, perBoot string }

func newLayout(t *testing.T) layout {
	t.Helper()
	root := t.TempDir()
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	l := layout{root: root, conf: filepath.Join(root, "etc-rachel"), perBoot: filepath.Join(root, "per-boot")}
	require.NoError(t, os.Mkdir(l.perBoot, 0o755))
	return l
}

func (l layout) cmd(c string) string {
	c = strings.ReplaceAll(c, cloudinit.ConfigDir, l.conf)
	c = strings.ReplaceAll(c, "-o nobody -g nobody", "-o nobody -g nogroup")
	return strings.ReplaceAll(c, "-o root -g nobody", "-o root -g nogroup")
}

// TestSymlinkPlantedByTheAssistantWithRealCoreutils runs both injections through OpenSSH's sshd
// with real coreutils, the assistant played by nobody. The old one (temp file in a directory the
// assistant owns, `mv -f`) moves the assistant's own executable into the per-boot scripts; the
// contract's one leaves it nothing to plant, and replaces links instead of following them.
func TestSymlinkPlantedByTheAssistantWithRealCoreutils(t *testing.T) {
	t.Parallel()
	r := startRealSSHD(t)
	c, err := r.dial(r.host.PublicKey())
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	secret := []byte("TELEGRAM_BOT_TOKEN=123:real-coreutils\n")

	t.Run("old injection follows the link", func(t *testing.T) {
		l := newLayout(t)
		require.NoError(t, os.Mkdir(l.conf, 0o700))
		require.NoError(t, os.Chown(l.conf, 65534, 65534))
		tmp, final := l.conf+"/.telegram.env.tmp", l.conf+"/telegram.env"
		out, err := asNobody("ln -s " + l.perBoot + " " + final)
		require.NoError(t, err, out)
		_, err = c.Run(ctx, "/usr/bin/install -m 0600 -o nobody -g nogroup /dev/stdin "+tmp, secret)
		require.NoError(t, err)
		out, err = asNobody("printf '#!/bin/sh\\nid\\n' > " + tmp + " && chmod 0755 " + tmp)
		require.NoError(t, err, out)
		_, err = c.Run(ctx, "/usr/bin/mv -f "+tmp+" "+final, nil)
		require.NoError(t, err)
		st, err := os.Stat(filepath.Join(l.perBoot, ".telegram.env.tmp"))
		require.NoError(t, err, "root's mv put the assistant's file into the per-boot scripts")
		require.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	})

	t.Run("contract's injection does not", func(t *testing.T) {
		l := newLayout(t)
		require.NoError(t, os.Mkdir(l.conf, 0o750))
		require.NoError(t, os.Chown(l.conf, 0, 65534))
		require.NoError(t, os.Mkdir(l.conf+"/.staging", 0o700))
		files := cloudinit.SecretFiles("nobody")

		for _, line := range []string{
			"ln -s " + l.perBoot + " " + l.cmd(files[1].Path),
			"ln -s " + l.perBoot + " " + l.cmd(files[1].Staged),
			"touch " + l.conf + "/x",
		} {
			out, err := asNobody(line)
			require.Error(t, err, line)
			require.Contains(t, out, "Permission denied", line)
		}
		_, err := asNobody("ls " + l.conf)
		require.NoError(t, err, "the assistant still reads its directory")

		// Worst case: links already at the staged and the final name (root's mistake, say).
		for _, f := range files {
			require.NoError(t, os.Symlink(l.perBoot, l.cmd(f.Staged)))
			require.NoError(t, os.Symlink(l.perBoot, l.cmd(f.Path)))
		}
		for _, f := range files {
			_, err = c.Run(ctx, l.cmd(f.InstallCommand()), secret)
			require.NoError(t, err)
			_, err = c.Run(ctx, l.cmd(f.MoveCommand()), nil)
			require.NoError(t, err)
			st, err := os.Lstat(l.cmd(f.Path))
			require.NoError(t, err)
			require.True(t, st.Mode().IsRegular(), "%s is a regular file, not the link", f.Path)
			got, err := os.ReadFile(l.cmd(f.Path))
			require.NoError(t, err)
			require.Equal(t, secret, got)
			require.Equal(t, f.Mode, fmt.Sprintf("%04o", uint32(st.Mode().Perm())))
		}
		entries, err := os.ReadDir(l.perBoot)
		require.NoError(t, err)
		require.Empty(t, entries, "nothing reached the per-boot scripts")
		staged, err := os.ReadDir(l.conf + "/.staging")
		require.NoError(t, err)
		require.Empty(t, staged, "the staged files were renamed away")
		out, err := asNobody("cat " + l.cmd(files[1].Path))
		require.NoError(t, err, "the assistant reads telegram.env through its group: %s", out)
	})
}
