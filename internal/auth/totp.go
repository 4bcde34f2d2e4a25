package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 with its defaults, which every authenticator app supports): HMAC-SHA1,
// 30-second steps from the Unix epoch, 6 digits, a 160-bit secret.
const (
	TOTPPeriod     = 30
	TOTPDigits     = 6
	totpSecretSize = 20
	// totpSkew is how many steps before and after the current one a code is accepted for, for
	// clocks that drift and codes typed at the end of their step.
	totpSkew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a random secret, base32 encoded as authenticator apps expect it.
func newTOTPSecret() string {
	b := make([]byte, totpSecretSize)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return b32.EncodeToString(b)
}

// decodeTOTPSecret reads a base32 secret as apps show it (any case, spaces allowed).
func decodeTOTPSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimRight(s, "="), " ", ""))
	k, err := b32.DecodeString(s)
	if err != nil || len(k) == 0 {
		return nil, fmt.Errorf("TOTP secret is not base32")
	}
	return k, nil
}

// hotp is RFC 4226's HOTP value of counter with digits digits, over the given HMAC hash (RFC 6238
// section 1.2 allows SHA-256 and SHA-512 besides SHA-1).
func hotp(key []byte, counter uint64, digits int, h func() hash.Hash) string {
	mac := hmac.New(h, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// totpStep is the RFC 6238 time step T of t.
func totpStep(t time.Time) uint64 { return uint64(t.Unix()) / TOTPPeriod }

// TOTPCode returns the 6-digit code of a base32 secret at time t, as an authenticator app shows
// it. Tests use it to sign in; the server uses the same computation to check codes.
func TOTPCode(secret string, t time.Time) (string, error) {
	k, err := decodeTOTPSecret(secret)
	if err != nil {
		return "", err
	}
	return hotp(k, totpStep(t), TOTPDigits, sha1.New), nil
}

// matchTOTP returns the step within the skew of now whose code is code (0, false: none).
func matchTOTP(key []byte, code string, now time.Time) (uint64, bool) {
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := totpStep(now)
	found, step := false, uint64(0)
	for d := -totpSkew; d <= totpSkew; d++ {
		s := uint64(int64(cur) + int64(d))
		// Compare every candidate in constant time and keep going: the time taken does not say
		// which step matched.
		if hmac.Equal([]byte(hotp(key, s, TOTPDigits, sha1.New)), []byte(code)) && !found {
			found, step = true, s
		}
	}
	return step, found
}

// TOTPURI is the otpauth:// URI of Google Authenticator's key URI format, which the QR code holds.
func TOTPURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(TOTPDigits))
	v.Set("period", fmt.Sprint(TOTPPeriod))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}
