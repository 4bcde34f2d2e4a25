package secrets

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Ciphertext layout:
//
//	[0]      format byte (formatV1)
//	[1:5]    key version, big-endian uint32
//	[5:17]   GCM nonce (12 random bytes)
//	[17:]    GCM sealed data (ciphertext || 16-byte tag)
//
// The header and the [AD] are authenticated as GCM associated data, so neither the version nor
// the row a ciphertext belongs to can be changed without decryption failing.
const (
	formatV1   byte = 1
	headerSize      = 1 + 4
	nonceSize       = 12
	tagSize         = 16
	// Overhead is how many bytes a ciphertext is longer than its plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

// ErrDecrypt is returned (wrapped) when a ciphertext fails authentication: wrong key, wrong
// [AD] (copied to another row or column), or tampered bytes. GCM cannot tell these apart.
var ErrDecrypt = errors.New("ciphertext failed authentication (wrong key, wrong row/column, or tampered)")

// AD names where a ciphertext lives; it is bound as GCM associated data so a ciphertext copied to
// another table, column or row fails to decrypt.
type AD struct {
	Table  string
	Column string
	RowID  int64
}

// String names the location, for error messages.
func (a AD) String() string { return fmt.Sprintf("%s.%s row %d", a.Table, a.Column, a.RowID) }

// bytes encodes the AD unambiguously (length-prefixed strings) after the ciphertext header.
func (a AD) bytes(header []byte) []byte {
	b := make([]byte, 0, len(header)+4+len(a.Table)+4+len(a.Column)+8)
	b = append(b, header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Table)))
	b = append(b, a.Table...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Column)))
	b = append(b, a.Column...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.RowID))
	return b
}

// Encrypt seals plaintext under the primary key, bound to ad.
func (k *Keyring) Encrypt(plaintext []byte, ad AD) ([]byte, error) {
	return k.encryptWith(k.primary, plaintext, ad)
}

func (k *Keyring) encryptWith(version uint32, plaintext []byte, ad AD) ([]byte, error) {
	aead, ok := k.aeads[version]
	if !ok {
		return nil, fmt.Errorf("encrypt %s: no key version %d in keyring", ad, version)
	}
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:headerSize], version)
	if _, err := io.ReadFull(rand.Reader, out[headerSize:]); err != nil {
		return nil, fmt.Errorf("encrypt %s: read nonce: %w", ad, err)
	}
	nonce := out[headerSize : headerSize+nonceSize]
	return aead.Seal(out, nonce, plaintext, ad.bytes(out[:headerSize])), nil
}

// Decrypt opens a ciphertext with the key version it names, checking it was sealed for ad.
func (k *Keyring) Decrypt(ciphertext []byte, ad AD) ([]byte, error) {
	version, err := Version(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", ad, err)
	}
	aead, ok := k.aeads[version]
	if !ok {
		return nil, fmt.Errorf("decrypt %s: ciphertext uses key version %d, which is not in the keyring (versions %v)",
			ad, version, k.versions)
	}
	nonce := ciphertext[headerSize : headerSize+nonceSize]
	sealed := ciphertext[headerSize+nonceSize:]
	plain, err := aead.Open(make([]byte, 0, len(sealed)-tagSize), nonce, sealed, ad.bytes(ciphertext[:headerSize]))
	if err != nil {
		return nil, fmt.Errorf("decrypt %s with key version %d: %w", ad, version, ErrDecrypt)
	}
	return plain, nil
}

// Version reports the key version a ciphertext was sealed with, checking only its header.
func Version(ciphertext []byte) (uint32, error) {
	if len(ciphertext) < Overhead {
		return 0, fmt.Errorf("ciphertext is %d bytes, shorter than the minimum %d", len(ciphertext), Overhead)
	}
	if ciphertext[0] != formatV1 {
		return 0, fmt.Errorf("unknown ciphertext format byte 0x%02x (want 0x%02x)", ciphertext[0], formatV1)
	}
	return binary.BigEndian.Uint32(ciphertext[1:headerSize]), nil
}

// Version reports the key version a ciphertext was sealed with; see [Version].
func (k *Keyring) Version(ciphertext []byte) (uint32, error) { return Version(ciphertext) }

// NeedsRotation reports whether a ciphertext is not sealed under the primary key (including when
// its header is unreadable), so a rotation job knows what to re-encrypt.
func (k *Keyring) NeedsRotation(ciphertext []byte) bool {
	v, err := Version(ciphertext)
	return err != nil || v != k.primary
}

// Reencrypt decrypts a ciphertext with whichever key sealed it and seals it again under the
// primary, for the same ad. A ciphertext already under the primary is returned unchanged.
func (k *Keyring) Reencrypt(ciphertext []byte, ad AD) ([]byte, error) {
	plain, err := k.Decrypt(ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("re-encrypt: %w", err)
	}
	defer clear(plain)
	if !k.NeedsRotation(ciphertext) {
		return ciphertext, nil
	}
	out, err := k.Encrypt(plain, ad)
	if err != nil {
		return nil, fmt.Errorf("re-encrypt: %w", err)
	}
	return out, nil
}
