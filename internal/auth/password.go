// Package auth signs admins in: argon2id password hashes, server-side sessions in PostgreSQL,
// CSRF tokens bound to the session, and login throttling per account and per address.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// MinPasswordLength is the shortest admin password accepted.
const MinPasswordLength = 12

// HashPassword returns the PHC-format argon2id hash of password.
func HashPassword(password string) (string, error) {
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := idKey(context.Background(), []byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// ValidatePassword says what is wrong with a new password, if anything.
func ValidatePassword(password string) error {
	if len(password) < MinPasswordLength {
		return fmt.Errorf("password must be at least %d characters", MinPasswordLength)
	}
	if len(password) > 1024 {
		return errors.New("password must be at most 1024 characters")
	}
	return nil
}

// MaxConcurrentHashes bounds how many argon2id hashes run at once in the process (each takes
// argonMemory, 19 MiB): a burst of sign-ins queues for a slot instead of exhausting memory. More
// than the cores would not finish sooner anyway.
var MaxConcurrentHashes = min(max(runtime.GOMAXPROCS(0), 2), 4)

var (
	hashSlots   = make(chan struct{}, MaxConcurrentHashes)
	hashRunning atomic.Int64
	hashPeak    atomic.Int64 // most hashes seen running at once (tests)
)

// idKey is argon2.IDKey run in one of the MaxConcurrentHashes slots; it waits for a slot until
// ctx ends.
func idKey(ctx context.Context, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to hash a password: %w", ctx.Err())
	}
	defer func() { <-hashSlots }()
	n := hashRunning.Add(1)
	defer hashRunning.Add(-1)
	for p := hashPeak.Load(); n > p && !hashPeak.CompareAndSwap(p, n); p = hashPeak.Load() {
	}
	return argon2.IDKey(password, salt, time, memory, threads, keyLen), nil
}

// CheckPassword reports whether password matches the encoded hash, in constant time.
func CheckPassword(encoded, password string) bool {
	ok, _ := checkPassword(context.Background(), encoded, password)
	return ok
}

// checkPassword is CheckPassword waiting for a hashing slot no longer than ctx allows.
func checkPassword(ctx context.Context, encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, nil
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, nil
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<21 {
		return false, nil
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, nil
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, nil
	}
	got, err := idKey(ctx, []byte(password), salt, t, m, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when the account does not exist, so that a sign-in for an
// unknown email takes as long as one for a known email.
var dummyHash, _ = HashPassword("not-a-real-password-for-timing")

// RandomToken returns n random bytes, base64url encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// GeneratePassword returns a random password for a new admin.
func GeneratePassword() string { return RandomToken(18) }
