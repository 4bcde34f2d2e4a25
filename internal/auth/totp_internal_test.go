package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTOTPRFC6238Vectors checks the code computation against RFC 6238, Appendix B (8 digits,
// T0 = 0, X = 30, the three hashes with their seeds).
func TestTOTPRFC6238Vectors(t *testing.T) {
	t.Parallel()
	seeds := map[string]struct {
		key []byte
		h   func() hash.Hash
	}{
		"SHA1":   {[]byte("12345678901234567890"), sha1.New},
		"SHA256": {[]byte("12345678901234567890123456789012"), sha256.New},
		"SHA512": {[]byte("1234567890123456789012345678901234567890123456789012345678901234"), sha512.New},
	}
	for _, v := range []struct {
		unix int64
		mode string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	} {
		s := seeds[v.mode]
		require.Equal(t, v.want, hotp(s.key, totpStep(time.Unix(v.unix, 0)), 8, s.h), "%s at %d", v.mode, v.unix)
	}
	// The 6-digit codes apps show are the last six digits of the same value.
	code, err := TOTPCode(b32.EncodeToString([]byte("12345678901234567890")), time.Unix(59, 0))
	require.NoError(t, err)
	require.Equal(t, "287082", code)
}

func TestTOTPMatchWindow(t *testing.T) {
	t.Parallel()
	secret := newTOTPSecret()
	key, err := decodeTOTPSecret(secret)
	require.NoError(t, err)
	now := time.Unix(1_700_000_000, 0)
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		code, err := TOTPCode(secret, now.Add(d))
		require.NoError(t, err)
		step, ok := matchTOTP(key, code, now)
		require.True(t, ok, d)
		require.Equal(t, totpStep(now.Add(d)), step)
	}
	code, _ := TOTPCode(secret, now.Add(-90*time.Second))
	_, ok := matchTOTP(key, code, now)
	require.False(t, ok, "outside the window")
	_, ok = matchTOTP(key, "12345", now)
	require.False(t, ok)
	require.Contains(t, TOTPURI("Rachel Cloud", "ops@example.com", secret), "otpauth://totp/Rachel%20Cloud:ops@example.com?")
}
