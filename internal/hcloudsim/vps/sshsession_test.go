package vps

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestSSHSessionRules: commands run in the login user's home, no port forwarding
// or environment, stdin bounded; each command recorded with what it read.
func TestSSHSessionRules(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := b.login(t)

	// Relative paths are the login user's home, as sshd starts commands there.
	r := run(t, c, "install -m 0600 /dev/stdin note.txt", []byte("hello"))
	require.Equal(t, 0, r.status, r.stderr)
	f, ok := b.m.File("/home/" + loginUser + "/note.txt")
	require.True(t, ok)
	require.Equal(t, "hello", string(f.Content))

	// Port forwarding is refused (only session channels are served).
	_, err := c.Dial("tcp", "127.0.0.1:80")
	require.Error(t, err)
	var oce *ssh.OpenChannelError
	require.ErrorAs(t, err, &oce)
	require.Equal(t, ssh.Prohibited, oce.Reason)

	s, err := c.NewSession()
	require.NoError(t, err)
	require.Error(t, s.Setenv("LANG", "C"), "env requests are refused")
	var out bytes.Buffer
	s.Stdout = &out
	require.NoError(t, s.Start("echo first"))
	require.NoError(t, s.Wait())
	require.Equal(t, "first\n", out.String())

	// More stdin than the simulator keeps fails the command, not the machine.
	big := bytes.Repeat([]byte("x"), maxStdin+1)
	r = run(t, c, "install -m 0600 /dev/stdin big.bin", big)
	require.Equal(t, 1, r.status)
	require.Contains(t, r.stderr, "File too large")
	_, ok = b.m.File("/home/" + loginUser + "/big.bin")
	require.False(t, ok)

	var sshCmds []Command
	for _, cmd := range b.m.Commands() {
		if cmd.Source == "ssh" {
			sshCmds = append(sshCmds, cmd)
		}
	}
	require.GreaterOrEqual(t, len(sshCmds), 3)
	require.Equal(t, "install -m 0600 /dev/stdin note.txt", sshCmds[0].Line)
	require.Equal(t, 5, sshCmds[0].StdinBytes)
	require.Equal(t, loginUser, sshCmds[0].User)
	last := sshCmds[len(sshCmds)-1]
	require.True(t, strings.HasSuffix(last.Line, "big.bin"))
	require.Equal(t, 1, last.ExitStatus)
	require.Greater(t, last.StdinBytes, maxStdin, "what it read is counted, not kept")
}
