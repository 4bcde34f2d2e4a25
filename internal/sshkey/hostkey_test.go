package sshkey

import (
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestGenerateHostKey(t *testing.T) {
	t.Parallel()
	hk, err := GenerateHostKey()
	require.NoError(t, err)

	require.True(t, strings.HasPrefix(hk.PrivateOpenSSH, "-----BEGIN OPENSSH PRIVATE KEY-----\n"), hk.PrivateOpenSSH)
	require.True(t, strings.HasSuffix(hk.PrivateOpenSSH, "-----END OPENSSH PRIVATE KEY-----\n"))
	require.True(t, strings.HasPrefix(hk.Public, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), hk.Public)
	require.Len(t, strings.Fields(hk.Public), 2)

	// sshd would load the private key: x/crypto/ssh reads the same format.
	signer, err := ssh.ParsePrivateKey([]byte(hk.PrivateOpenSSH))
	require.NoError(t, err)
	require.Equal(t, hk.PublicKey().Marshal(), signer.PublicKey().Marshal())

	pinned, err := ParseAuthorizedKey(hk.Public)
	require.NoError(t, err)
	require.Equal(t, pinned.Marshal(), hk.PublicKey().Marshal())
	require.Equal(t, ssh.FingerprintSHA256(pinned), hk.FingerprintSHA256())

	data := []byte("exchange hash")
	sig, err := signer.Sign(rand.Reader, data)
	require.NoError(t, err)
	require.NoError(t, hk.PublicKey().Verify(data, sig))

	other, err := GenerateHostKey()
	require.NoError(t, err)
	require.NotEqual(t, hk.Public, other.Public)

	body := strings.Split(hk.PrivateOpenSSH, "\n")[1]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, fmt.Sprintf(verb, hk), body, verb)
	}
}

func TestParseHostKey(t *testing.T) {
	t.Parallel()
	hk, err := GenerateHostKey()
	require.NoError(t, err)
	other, err := GenerateHostKey()
	require.NoError(t, err)

	got, err := ParseHostKey(hk.PrivateOpenSSH, hk.Public)
	require.NoError(t, err)
	require.Equal(t, hk.PublicKey().Marshal(), got.PublicKey().Marshal())

	_, err = ParseHostKey(hk.PrivateOpenSSH, other.Public)
	require.ErrorContains(t, err, "does not match")
	_, err = ParseHostKey("junk", hk.Public)
	require.ErrorContains(t, err, "parse private key")
	_, err = ParseHostKey(hk.PrivateOpenSSH, "junk")
	require.Error(t, err)

	rsaKP := rsaPair(t)
	_, err = ParseHostKey(string(rsaKP.PrivateKeyPEM), hk.Public)
	require.ErrorContains(t, err, "want Ed25519")
	_, err = ParseHostKey(hk.PrivateOpenSSH, rsaKP.PublicKey)
	require.ErrorContains(t, err, "want ssh-ed25519")
}

func TestFixedHostKeyCallback(t *testing.T) {
	t.Parallel()
	hk, err := GenerateHostKey()
	require.NoError(t, err)
	other, err := GenerateHostKey()
	require.NoError(t, err)

	cb := FixedHostKeyCallback(hk.PublicKey())
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	require.NoError(t, cb("vps:22", addr, hk.PublicKey()))
	err = cb("vps:22", addr, other.PublicKey())
	require.ErrorContains(t, err, "host key mismatch for vps:22")
	require.ErrorContains(t, err, other.FingerprintSHA256())
	require.ErrorContains(t, err, hk.FingerprintSHA256())
}

// TestHostKeyOverSSH runs a real SSH handshake: a server presenting the host key and accepting
// an access key, and a client that pins the host key — the path injecting_secrets takes.
func TestHostKeyOverSSH(t *testing.T) {
	t.Parallel()
	hk, err := GenerateHostKey()
	require.NoError(t, err)
	access, err := Generate(Ed25519, "provisioner")
	require.NoError(t, err)
	wrongHost, err := GenerateHostKey()
	require.NoError(t, err)

	hostSigner, err := ssh.ParsePrivateKey([]byte(hk.PrivateOpenSSH))
	require.NoError(t, err)
	authorized, err := ParseAuthorizedKey(access.PublicKey)
	require.NoError(t, err)
	srvCfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	srvCfg.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, srvCfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					_ = nc.Reject(ssh.Prohibited, "no channels")
				}
			}()
		}
	}()

	clientSigner, err := ParsePrivateKey(access.PrivateKeyPEM)
	require.NoError(t, err)
	dial := func(pinned ssh.PublicKey) error {
		c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
			User:            "rachel-ops",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(clientSigner)},
			HostKeyCallback: FixedHostKeyCallback(pinned),
		})
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	require.NoError(t, dial(hk.PublicKey()))
	require.ErrorContains(t, dial(wrongHost.PublicKey()), "host key mismatch")
}
