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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/sshkey"
)

// TestInjectionTransportAgainstOpenSSH runs the injector's SSH transport (pinned host key, key
// authentication, one session per command, secret bytes on stdin only, atomic rename) against a
// real OpenSSH sshd, which the simulator's server only imitates. sshd runs as root on a loopback
// port with a throwaway configuration; the login user is root because the VPS's own users and
// sudo rule cannot exist on the test machine.
func TestInjectionTransportAgainstOpenSSH(t *testing.T) {
	t.Parallel()
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		if os.Getenv("SKIP_REAL_SSHD") == "1" {
			t.Skip("SKIP_REAL_SSHD=1 and no sshd")
		}
		t.Fatal("OpenSSH's sshd is not installed: apt-get install openssh-server (make test does this as root), or set SKIP_REAL_SSHD=1")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("SKIP_REAL_SSHD") == "1" {
			t.Skip("SKIP_REAL_SSHD=1 and not root")
		}
		t.Fatal("this test starts sshd and must run as root; set SKIP_REAL_SSHD=1 to skip it")
	}
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
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	w := &Worker{o: options{timings: DefaultTimings()}}
	dial := func(pinned ssh.PublicKey) (*vpsConn, error) {
		return dialVPS(context.Background(), addr, &ssh.ClientConfig{
			User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: sshkey.FixedHostKeyCallback(pinned), HostKeyAlgorithms: []string{pinned.Type()},
			Timeout: 5 * time.Second,
		}, w.sshLimits())
	}

	// A different pinned key: the handshake fails before anything is sent.
	other, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	_, err = dial(other.PublicKey())
	require.Error(t, err)
	require.Contains(t, err.Error(), "host key")

	c, err := dial(host.PublicKey())
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
