package provision

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/sshkey"
)

// TestCallbackParts: the token is 256 random bits of which the database keeps only the hash,
// the URL has one slash however the base URL ends, host keys compare by key material, and
// rejection reasons become a bounded set of metric labels.
func TestCallbackParts(t *testing.T) {
	t.Parallel()
	tok, hash, err := newCallbackToken()
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	require.NoError(t, err)
	require.Len(t, raw, 32)
	sum := sha256.Sum256(raw)
	require.Equal(t, sum[:], hash)
	tok2, _, err := newCallbackToken()
	require.NoError(t, err)
	require.NotEqual(t, tok, tok2)

	require.Equal(t, "https://admin.example.com/callback/abc", callbackURL("https://admin.example.com/", "abc"))
	require.Equal(t, "https://admin.example.com/base/callback/abc", callbackURL("https://admin.example.com/base//", "abc"))

	hk, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	other, err := sshkey.GenerateHostKey()
	require.NoError(t, err)
	require.True(t, sameKey(hk.Public, "  "+hk.Public+" root@somewhere\n"), "comments and spacing do not matter")
	require.False(t, sameKey(hk.Public, other.Public))
	require.False(t, sameKey("garbage", "garbage"), "unparsable keys are never the same")

	for why, label := range map[string]string{
		"unknown token": "unknown_token", "not waiting for a callback (ready)": "not_waiting", "token expired at 12:00": "expired",
		"instance_id 5 is not server 6": "wrong_instance", "pub_key_ed25519 is not the seeded host key": "wrong_host_key",
		"something new": "rejected",
	} {
		require.Equal(t, label, outcomeLabel(why), why)
	}
	require.Equal(t, "HCLOUD_TOKEN", tokenVar("default"))
}
