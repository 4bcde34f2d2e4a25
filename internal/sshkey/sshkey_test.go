package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// RSA 4096 generation is slow under -race: generate one pair for the whole file.
var sharedRSA = sync.OnceValues(func() (*KeyPair, error) { return Generate(RSA4096, "rachel-sub-42") })

func rsaPair(t *testing.T) *KeyPair {
	t.Helper()
	kp, err := sharedRSA()
	require.NoError(t, err)
	return kp
}

var colonMD5 = regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`)

func TestGenerateRSA4096(t *testing.T) {
	t.Parallel()
	kp := rsaPair(t)

	require.True(t, strings.HasPrefix(kp.PublicKey, "ssh-rsa AAAAB3NzaC1yc2EA"), kp.PublicKey)
	require.True(t, strings.HasSuffix(kp.PublicKey, " rachel-sub-42"), kp.PublicKey)
	require.NotContains(t, kp.PublicKey, "\n")
	require.True(t, strings.HasPrefix(string(kp.PrivateKeyPEM), "-----BEGIN PRIVATE KEY-----\n"))
	require.True(t, strings.HasSuffix(string(kp.PrivateKeyPEM), "-----END PRIVATE KEY-----\n"))

	block, rest := pem.Decode(kp.PrivateKeyPEM)
	require.NotNil(t, block)
	require.Empty(t, rest)
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	priv, ok := raw.(*rsa.PrivateKey)
	require.True(t, ok, "PKCS#8 holds %T", raw)
	require.Equal(t, 4096, priv.N.BitLen())
	require.NoError(t, priv.Validate())

	pub := checkPair(t, kp)
	require.Equal(t, ssh.KeyAlgoRSA, pub.Type())
	require.Equal(t, 4096, pub.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey).N.BitLen())
}

func TestGenerateEd25519(t *testing.T) {
	t.Parallel()
	kp, err := Generate(Ed25519, "")
	require.NoError(t, err)

	require.True(t, strings.HasPrefix(kp.PublicKey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), kp.PublicKey)
	require.Len(t, strings.Fields(kp.PublicKey), 2, "no comment")
	require.True(t, strings.HasPrefix(string(kp.PrivateKeyPEM), "-----BEGIN PRIVATE KEY-----\n"))
	block, _ := pem.Decode(kp.PrivateKeyPEM)
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	require.IsType(t, ed25519.PrivateKey{}, raw)

	pub := checkPair(t, kp)
	require.Equal(t, ssh.KeyAlgoED25519, pub.Type())
}

// checkPair proves that x/crypto/ssh parses both halves, that the fingerprints describe the public
// key, and that a signature made with the private key verifies with the public key.
func checkPair(t *testing.T, kp *KeyPair) ssh.PublicKey {
	t.Helper()
	pub, err := ParseAuthorizedKey(kp.PublicKey)
	require.NoError(t, err)
	signer, err := ParsePrivateKey(kp.PrivateKeyPEM)
	require.NoError(t, err)
	require.Equal(t, pub.Marshal(), signer.PublicKey().Marshal())

	require.Regexp(t, colonMD5, kp.FingerprintMD5)
	require.Equal(t, ssh.FingerprintLegacyMD5(pub), kp.FingerprintMD5)
	require.True(t, strings.HasPrefix(kp.FingerprintSHA256, "SHA256:"))
	require.Equal(t, ssh.FingerprintSHA256(pub), kp.FingerprintSHA256)

	data := []byte("session id and more")
	sig, err := signer.Sign(rand.Reader, data)
	require.NoError(t, err)
	require.NoError(t, pub.Verify(data, sig))
	require.Error(t, pub.Verify([]byte("other data"), sig))

	// RSA keys must also sign with SHA-2, which modern sshd requires.
	if as, ok := signer.(ssh.AlgorithmSigner); ok && pub.Type() == ssh.KeyAlgoRSA {
		sig, err := as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
		require.NoError(t, err)
		require.NoError(t, pub.Verify(data, sig))
	}
	return pub
}

func TestGenerateRejects(t *testing.T) {
	t.Parallel()
	_, err := Generate("dsa", "")
	require.ErrorContains(t, err, `unknown algorithm "dsa"`)
	_, err = Generate(Ed25519, "a\nb")
	require.ErrorContains(t, err, "single line")
}

func TestParseAlgorithm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Algorithm{"": RSA4096, "rsa-4096": RSA4096, "RSA": RSA4096, " ed25519 ": Ed25519} {
		got, err := ParseAlgorithm(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseAlgorithm("ecdsa")
	require.ErrorContains(t, err, `unknown SSH key algorithm "ecdsa"`)
}

func TestWithComment(t *testing.T) {
	t.Parallel()
	kp, err := Generate(Ed25519, "pool")
	require.NoError(t, err)
	c, err := kp.WithComment("rachel-sub-7")
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(c.PublicKey, " rachel-sub-7"))
	require.Equal(t, strings.Fields(kp.PublicKey)[:2], strings.Fields(c.PublicKey)[:2])
	require.Equal(t, kp.PrivateKeyPEM, c.PrivateKeyPEM)
	require.Equal(t, kp.FingerprintMD5, c.FingerprintMD5)
	require.True(t, strings.HasSuffix(kp.PublicKey, " pool"), "original unchanged")

	_, err = kp.WithComment("x\ry")
	require.Error(t, err)
}

func TestKeyPairNeverPrintsPrivateKey(t *testing.T) {
	t.Parallel()
	kp, err := Generate(Ed25519, "c")
	require.NoError(t, err)
	body := strings.Split(string(kp.PrivateKeyPEM), "\n")[1]
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, kp)
		require.NotContains(t, out, body, verb)
		require.Contains(t, out, kp.FingerprintSHA256, verb)
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	t.Parallel()
	_, err := ParsePrivateKey([]byte("not a key"))
	require.ErrorContains(t, err, "parse SSH private key")
}

func TestParseAuthorizedKey(t *testing.T) {
	t.Parallel()
	kp, err := Generate(Ed25519, "me@host")
	require.NoError(t, err)

	pub, err := ParseAuthorizedKey(kp.PublicKey)
	require.NoError(t, err)
	require.Equal(t, ssh.KeyAlgoED25519, pub.Type())
	_, err = ParseAuthorizedKey(kp.PublicKey + "\n")
	require.NoError(t, err, "a trailing newline is fine")

	for name, in := range map[string]string{
		"empty":     "",
		"garbage":   "ssh-ed25519 !!!",
		"options":   `command="/bin/sh" ` + kp.PublicKey,
		"two lines": kp.PublicKey + "\n" + kp.PublicKey,
		"two keys":  kp.PublicKey + "\r\n" + kp.PublicKey,
	} {
		_, err := ParseAuthorizedKey(in)
		require.Error(t, err, name)
	}
}
