package secrets

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustKeyring(t *testing.T, s string) *Keyring {
	t.Helper()
	kr, err := ParseKeyring(s)
	require.NoError(t, err)
	return kr
}

var adKey = AD{Table: "subscriptions", Column: "ssh_private_key", RowID: 42}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()

	kr := mustKeyring(t, "2:"+testKey(2)+",1:"+testKey(1))
	for _, plain := range [][]byte{
		[]byte("-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"),
		{},
		bytes.Repeat([]byte{0xff}, 64<<10),
	} {
		ct, err := kr.Encrypt(plain, adKey)
		require.NoError(t, err)
		require.Len(t, ct, len(plain)+Overhead)
		require.Equal(t, byte(1), ct[0], "format byte")
		require.Equal(t, uint32(2), binary.BigEndian.Uint32(ct[1:5]), "version in header")
		if len(plain) > 0 {
			require.False(t, bytes.Contains(ct, plain), "plaintext visible in ciphertext")
		}

		got, err := kr.Decrypt(ct, adKey)
		require.NoError(t, err)
		require.Equal(t, plain, got)

		v, err := kr.Version(ct)
		require.NoError(t, err)
		require.Equal(t, uint32(2), v)
		require.False(t, kr.NeedsRotation(ct))
	}
}

func TestEncryptUsesFreshNonces(t *testing.T) {
	t.Parallel()

	kr := mustKeyring(t, "1:"+testKey(1))
	a, err := kr.Encrypt([]byte("same"), adKey)
	require.NoError(t, err)
	b, err := kr.Encrypt([]byte("same"), adKey)
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}

func TestDecryptWrongKey(t *testing.T) {
	t.Parallel()

	ct, err := mustKeyring(t, "1:"+testKey(1)).Encrypt([]byte("token"), adKey)
	require.NoError(t, err)

	// Same version number, different key.
	_, err = mustKeyring(t, "1:"+testKey(0xee)).Decrypt(ct, adKey)
	require.ErrorIs(t, err, ErrDecrypt)
	require.ErrorContains(t, err, "subscriptions.ssh_private_key row 42")
}

func TestDecryptADMismatch(t *testing.T) {
	t.Parallel()

	kr := mustKeyring(t, "1:"+testKey(1))
	ct, err := kr.Encrypt([]byte("token"), adKey)
	require.NoError(t, err)

	for _, other := range []AD{
		{Table: adKey.Table, Column: adKey.Column, RowID: 43},                    // another row
		{Table: adKey.Table, Column: "claude_refresh_token", RowID: adKey.RowID}, // another column
		{Table: "customer_secrets", Column: adKey.Column, RowID: adKey.RowID},    // another table
		{Table: "subscriptionsssh_", Column: "private_key", RowID: adKey.RowID},  // same concatenation
		{},
	} {
		_, err := kr.Decrypt(ct, other)
		require.ErrorIs(t, err, ErrDecrypt, "AD %+v", other)
	}
}

func TestDecryptTampered(t *testing.T) {
	t.Parallel()

	kr := mustKeyring(t, "1:"+testKey(1)+",2:"+testKey(2))
	ct, err := kr.Encrypt([]byte("a secret worth protecting"), adKey)
	require.NoError(t, err)

	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		_, err := kr.Decrypt(bad, adKey)
		require.Error(t, err, "flipping byte %d went unnoticed", i)
	}
	// Changing the version to another key in the ring must fail too (the header is authenticated).
	bad := bytes.Clone(ct)
	binary.BigEndian.PutUint32(bad[1:5], 2)
	_, err = kr.Decrypt(bad, adKey)
	require.ErrorIs(t, err, ErrDecrypt)

	_, err = kr.Decrypt(ct[:len(ct)-1], adKey)
	require.ErrorIs(t, err, ErrDecrypt)
}

func TestDecryptMalformed(t *testing.T) {
	t.Parallel()

	kr := mustKeyring(t, "1:"+testKey(1))
	_, err := kr.Decrypt(nil, adKey)
	require.ErrorContains(t, err, "shorter than the minimum")

	ct, err := kr.Encrypt([]byte("x"), adKey)
	require.NoError(t, err)
	ct[0] = 9
	_, err = kr.Decrypt(ct, adKey)
	require.ErrorContains(t, err, "unknown ciphertext format byte 0x09")
	require.True(t, kr.NeedsRotation(ct), "an unreadable ciphertext needs attention")
}

func TestDecryptUnknownVersion(t *testing.T) {
	t.Parallel()

	ct, err := mustKeyring(t, "7:"+testKey(7)).Encrypt([]byte("x"), adKey)
	require.NoError(t, err)
	_, err = mustKeyring(t, "1:"+testKey(1)+",2:"+testKey(2)).Decrypt(ct, adKey)
	require.ErrorContains(t, err, "key version 7, which is not in the keyring")
}

func TestRotation(t *testing.T) {
	t.Parallel()

	old := mustKeyring(t, "1:"+testKey(1))
	ct1, err := old.Encrypt([]byte("refresh-token"), adKey)
	require.NoError(t, err)

	// New key 2 goes first; key 1 stays so existing ciphertexts still decrypt.
	rotated := mustKeyring(t, "2:"+testKey(2)+",1:"+testKey(1))
	require.True(t, rotated.NeedsRotation(ct1))
	got, err := rotated.Decrypt(ct1, adKey)
	require.NoError(t, err)
	require.Equal(t, "refresh-token", string(got))

	ct2, err := rotated.Reencrypt(ct1, adKey)
	require.NoError(t, err)
	v, err := Version(ct2)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)
	require.False(t, rotated.NeedsRotation(ct2))

	// Already under the primary: returned unchanged.
	again, err := rotated.Reencrypt(ct2, adKey)
	require.NoError(t, err)
	require.Equal(t, ct2, again)

	// Re-encryption keeps the row binding.
	_, err = rotated.Decrypt(ct2, AD{Table: adKey.Table, Column: adKey.Column, RowID: 1})
	require.ErrorIs(t, err, ErrDecrypt)

	// Once key 1 is dropped, only re-encrypted data is readable.
	newOnly := mustKeyring(t, "2:"+testKey(2))
	got, err = newOnly.Decrypt(ct2, adKey)
	require.NoError(t, err)
	require.Equal(t, "refresh-token", string(got))
	_, err = newOnly.Decrypt(ct1, adKey)
	require.ErrorContains(t, err, "key version 1")

	// A wrong AD makes Reencrypt fail rather than silently re-bind.
	_, err = rotated.Reencrypt(ct1, AD{Table: "x", Column: "y", RowID: 1})
	require.ErrorIs(t, err, ErrDecrypt)
}

func TestADString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "customer_secrets.telegram_bot_token row 7",
		fmt.Sprint(AD{Table: "customer_secrets", Column: "telegram_bot_token", RowID: 7}))
}

func BenchmarkEncrypt(b *testing.B) {
	kr, err := ParseKeyring("1:" + testKey(1))
	require.NoError(b, err)
	plain := bytes.Repeat([]byte("x"), 3300) // about an RSA-4096 PKCS#8 PEM
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := kr.Encrypt(plain, adKey); err != nil {
			b.Fatal(err)
		}
	}
}
