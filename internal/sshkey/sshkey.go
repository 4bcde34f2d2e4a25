// Package sshkey generates the SSH key pairs the provisioner logs in to a VPS with, and the VPS
// host keys it seeds through cloud-init and pins.
//
// Access keys follow the seeds' generateSSHKeyPair: RSA 4096 by default, public key in OpenSSH
// authorized_keys form, private key PKCS#8 PEM. RSA 4096 generation costs up to a CPU-second, so
// [Pool] keeps keys ready in the background.
package sshkey

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Algorithm selects the type of an access key pair.
type Algorithm string

const (
	// RSA4096 is the default algorithm, as the seed documents require.
	RSA4096 Algorithm = "rsa-4096"
	// Ed25519 is the faster, smaller alternative.
	Ed25519 Algorithm = "ed25519"
)

// rsaBits is the modulus size of RSA4096 keys.
const rsaBits = 4096

// ParseAlgorithm reads an algorithm name from configuration; the empty string means [RSA4096].
func ParseAlgorithm(s string) (Algorithm, error) {
	switch Algorithm(strings.ToLower(strings.TrimSpace(s))) {
	case "", RSA4096, "rsa":
		return RSA4096, nil
	case Ed25519:
		return Ed25519, nil
	}
	return "", fmt.Errorf("unknown SSH key algorithm %q: want %q or %q", s, RSA4096, Ed25519)
}

// KeyPair is an access key pair in the forms Hetzner and SSH clients take.
type KeyPair struct {
	// PublicKey is the OpenSSH authorized_keys line, e.g. "ssh-rsa AAAAB3NzaC1yc2EA… comment".
	PublicKey string
	// PrivateKeyPEM is the PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"); store it encrypted.
	PrivateKeyPEM []byte
	// FingerprintMD5 is the colon-hex MD5 fingerprint Hetzner shows for SSH keys.
	FingerprintMD5 string
	// FingerprintSHA256 is OpenSSH's "SHA256:…" fingerprint.
	FingerprintSHA256 string
}

// String describes the key pair by its public fingerprint, never its private key.
func (k *KeyPair) String() string {
	return fmt.Sprintf("KeyPair{%s %s}", strings.SplitN(k.PublicKey, " ", 2)[0], k.FingerprintSHA256)
}

// GoString keeps %#v from dumping the private key.
func (k *KeyPair) GoString() string { return "sshkey." + k.String() }

// Format prints the same description as String for every verb.
func (k *KeyPair) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(k.GoString()))
		return
	}
	_, _ = f.Write([]byte(k.String()))
}

// Generate creates an access key pair; the zero Algorithm means [RSA4096]. The comment ends the
// public key line (it must be a single line without control characters).
func Generate(alg Algorithm, comment string) (*KeyPair, error) {
	if err := checkComment(comment); err != nil {
		return nil, err
	}
	var priv crypto.Signer
	switch alg {
	case "", RSA4096:
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA %d key: %w", rsaBits, err)
		}
		priv = k
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate Ed25519 key: %w", err)
		}
		priv = k
	default:
		return nil, fmt.Errorf("generate key: unknown algorithm %q", alg)
	}
	return fromSigner(priv, comment)
}

func fromSigner(priv crypto.Signer, comment string) (*KeyPair, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8 private key: %w", err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("convert public key to SSH form: %w", err)
	}
	return &KeyPair{
		PublicKey:         authorizedLine(pub, comment),
		PrivateKeyPEM:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		FingerprintMD5:    ssh.FingerprintLegacyMD5(pub),
		FingerprintSHA256: ssh.FingerprintSHA256(pub),
	}, nil
}

// WithComment returns a copy of the pair whose public key line ends with comment instead, for
// pooled keys generated before their VPS was known.
func (k *KeyPair) WithComment(comment string) (*KeyPair, error) {
	if err := checkComment(comment); err != nil {
		return nil, err
	}
	pub, err := ParseAuthorizedKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("re-comment key: %w", err)
	}
	c := *k
	c.PublicKey = authorizedLine(pub, comment)
	return &c, nil
}

// authorizedLine renders "type base64 [comment]" without the trailing newline.
func authorizedLine(pub ssh.PublicKey, comment string) string {
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	if comment != "" {
		line += " " + comment
	}
	return line
}

func checkComment(c string) error {
	for _, r := range c {
		if r < 0x20 || r == 0x7f {
			return errors.New("key comment must be a single line without control characters")
		}
	}
	return nil
}

// ParsePrivateKey parses a private key (PKCS#8 PEM as [Generate] makes, or any form x/crypto/ssh
// reads) into a signer for an SSH client.
func ParsePrivateKey(pemBytes []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		// x/crypto/ssh errors name the format problem, not key bytes.
		return nil, fmt.Errorf("parse SSH private key: %w", err)
	}
	return s, nil
}

// ParseAuthorizedKey parses one OpenSSH authorized_keys line ("ssh-ed25519 AAAA… comment") with
// no options and nothing after it, e.g. to pin a host key.
func ParseAuthorizedKey(line string) (ssh.PublicKey, error) {
	if strings.ContainsAny(strings.TrimSpace(line), "\r\n") {
		return nil, errors.New("parse SSH public key: more than one line")
	}
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("parse SSH public key: %w", err)
	}
	if len(options) > 0 {
		return nil, errors.New("parse SSH public key: options before the key type are not allowed")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("parse SSH public key: more than one key")
	}
	return pub, nil
}
