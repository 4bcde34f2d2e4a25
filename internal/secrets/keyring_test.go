package secrets

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testKey returns a deterministic valid base64 key filled with b.
func testKey(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize))
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()

	kr, err := ParseKeyring(fmt.Sprintf("3:%s, 2:%s ,7:%s", testKey(3), testKey(2), testKey(7)))
	require.NoError(t, err)
	require.Equal(t, uint32(3), kr.Primary())
	require.Equal(t, []uint32{3, 2, 7}, kr.Versions())

	one, err := ParseKeyring("1:" + testKey(1))
	require.NoError(t, err)
	require.Equal(t, uint32(1), one.Primary())
}

func TestParseKeyringErrors(t *testing.T) {
	t.Parallel()

	k := testKey(9)
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16))
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "keyring is empty"},
		{"blank", "   ", "keyring is empty"},
		{"stray comma", "1:" + k + ",", "entry 2 is empty"},
		{"no colon", k, "entry 1 has no version"},
		{"empty version", ":" + k, "entry 1: version is empty"},
		{"non-numeric version", "v1:" + k, "entry 1: version is not a decimal number"},
		{"negative version", "-1:" + k, "entry 1: version is not a decimal number"},
		{"zero version", "0:" + k, "entry 1: version is not a decimal number"},
		{"version overflow", "4294967296:" + k, "entry 1: version is not a decimal number"},
		{"duplicate version", "2:" + k + ",2:" + testKey(8), "entry 2: duplicate version 2"},
		{"bad base64", "1:" + k + ",2:not*base64!", "entry 2 (version 2): key is not valid standard base64"},
		{"url-safe base64", "1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize)), "not valid standard base64"},
		{"short key", "1:" + short, "key is 16 bytes, want 32"},
		{"empty key", "1:", "key is 0 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kr, err := ParseKeyring(tt.in)
			require.Nil(t, kr)
			require.ErrorContains(t, err, tt.want)
			// Never echo key material.
			require.NotContains(t, err.Error(), k)
			require.NotContains(t, err.Error(), short)
			require.NotContains(t, err.Error(), "not*base64!")
		})
	}
}

func TestGenerateKeyring(t *testing.T) {
	t.Parallel()

	s, err := GenerateKeyring()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(s, "1:"), s)
	kr, err := ParseKeyring(s)
	require.NoError(t, err)
	require.Equal(t, uint32(1), kr.Primary())

	k1, err := GenerateKey()
	require.NoError(t, err)
	k2, err := GenerateKey()
	require.NoError(t, err)
	require.NotEqual(t, k1, k2)
	raw, err := base64.StdEncoding.DecodeString(k1)
	require.NoError(t, err)
	require.Len(t, raw, KeySize)
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	t.Parallel()

	key := testKey(0x42)
	kr, err := ParseKeyring("5:" + key + ",4:" + testKey(0x43))
	require.NoError(t, err)
	raw := string(bytes.Repeat([]byte{0x42}, KeySize))

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "keyring", kr)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "keyring", kr)
	outputs := []string{
		fmt.Sprintf("%v", kr), fmt.Sprintf("%+v", kr), fmt.Sprintf("%#v", kr), fmt.Sprintf("%s", kr),
		fmt.Sprintf("%v", *kr), fmt.Sprintf("%+v", struct{ K *Keyring }{kr}), logs.String(),
	}
	for _, out := range outputs {
		require.NotContains(t, out, key)
		require.NotContains(t, out, raw)
	}
	require.Equal(t, "Keyring{primary: 5, versions: [5 4]}", kr.String())
	require.Contains(t, logs.String(), `"primary":5`)
}
