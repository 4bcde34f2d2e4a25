// Package secrets encrypts secrets at rest with AES-256-GCM under a versioned keyring and keeps
// secrets in memory in a type that refuses to print itself.
//
// A ciphertext names the key version that sealed it, so keys can be rotated: put a new key first
// in RACHEL_KEYRING (it becomes the primary and encrypts), keep the old ones after it (they still
// decrypt), re-encrypt what [Keyring.NeedsRotation] reports, then drop the old keys.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
)

// KeySize is the length in bytes of every keyring key (AES-256).
const KeySize = 32

// Keyring holds the encryption keys by version; the primary encrypts, every key decrypts.
//
// It never prints its keys: String, GoString, Format and LogValue show only the versions.
type Keyring struct {
	primary  uint32
	versions []uint32 // in the order given, primary first
	aeads    map[uint32]cipher.AEAD
}

// ParseKeyring parses the RACHEL_KEYRING format: "3:BASE64KEY,2:BASE64KEY" — comma-separated
// version:key entries, 32-byte keys in standard base64, the first entry the primary.
//
// Errors name the entry (by position) and what is wrong with it, never the key material.
func ParseKeyring(s string) (*Keyring, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("keyring is empty: want VERSION:BASE64KEY[,VERSION:BASE64KEY...]")
	}
	kr := &Keyring{aeads: make(map[uint32]cipher.AEAD)}
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("keyring entry %d is empty (stray comma?)", n)
		}
		verText, keyText, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("keyring entry %d has no version: want VERSION:BASE64KEY", n)
		}
		version, err := parseVersion(strings.TrimSpace(verText))
		if err != nil {
			return nil, fmt.Errorf("keyring entry %d: %w", n, err)
		}
		if _, dup := kr.aeads[version]; dup {
			return nil, fmt.Errorf("keyring entry %d: duplicate version %d", n, version)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyText))
		if err != nil {
			// The decoder's error quotes an offset, not the input; still, keep it out.
			return nil, fmt.Errorf("keyring entry %d (version %d): key is not valid standard base64", n, version)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("keyring entry %d (version %d): key is %d bytes, want %d", n, version, len(key), KeySize)
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, fmt.Errorf("keyring entry %d (version %d): %w", n, version, err)
		}
		if i == 0 {
			kr.primary = version
		}
		kr.versions = append(kr.versions, version)
		kr.aeads[version] = aead
	}
	return kr, nil
}

func parseVersion(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("version is empty: want a decimal number from 1 to 4294967295")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || v > math.MaxUint32 {
		return 0, errors.New("version is not a decimal number from 1 to 4294967295")
	}
	return uint32(v), nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create GCM: %w", err)
	}
	return aead, nil
}

// GenerateKey returns a new random 32-byte key in standard base64, ready for a keyring entry.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// GenerateKeyring returns a fresh one-entry keyring value ("1:BASE64KEY"), as `make run` needs
// for its development key.
func GenerateKeyring() (string, error) {
	key, err := GenerateKey()
	if err != nil {
		return "", err
	}
	return "1:" + key, nil
}

// Primary is the version of the key that encrypts.
func (k *Keyring) Primary() uint32 { return k.primary }

// Versions lists the key versions in keyring order, primary first.
func (k *Keyring) Versions() []uint32 { return slices.Clone(k.versions) }

// String describes the keyring without its keys.
func (k *Keyring) String() string {
	parts := make([]string, len(k.versions))
	for i, v := range k.versions {
		parts[i] = strconv.FormatUint(uint64(v), 10)
	}
	return fmt.Sprintf("Keyring{primary: %d, versions: [%s]}", k.primary, strings.Join(parts, " "))
}

// GoString keeps %#v from dumping the ciphers.
func (k *Keyring) GoString() string { return "secrets." + k.String() }

// Format makes every fmt verb print the key-free description.
func (k *Keyring) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, k.GoString())
		return
	}
	_, _ = io.WriteString(f, k.String())
}

// LogValue implements [slog.LogValuer] with the versions only.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("primary", k.primary), slog.Any("versions", k.Versions()))
}
