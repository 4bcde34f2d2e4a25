package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/secrets"
)

// TestWhichKeysAreRedacted: keys that name a secret lose their value; IDs, hashes, fingerprints,
// timestamps and counts of secrets stay readable for whoever reads the log.
func TestWhichKeysAreRedacted(t *testing.T) {
	t.Parallel()
	for key, redacted := range map[string]bool{
		"password": true, "new_passwd": true, "webhook_secret": true, "HCLOUD_TOKEN": true, "Authorization": true,
		"cookie": true, "privatekey": true, "private_key": true, "api_key": true, "apikey": true, "credentials": true,
		"session_token_hash": false, "token_id": false, "key_fingerprint": false, "token_expires_at": false,
		"expires": false, "secret_count": false, "step": false, "email": false, "ip": false,
	} {
		var buf bytes.Buffer
		logging.New("json", &buf, slog.LevelInfo).Info("m", key, "VALUE-1")
		var line map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
		if redacted {
			require.Equal(t, secrets.Redacted, line[key], key)
		} else {
			require.Equal(t, "VALUE-1", line[key], key)
		}
	}
}

func TestLevelsGroupsAndFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New("text", &buf, slog.LevelWarn)
	ctx := logging.With(context.Background(), slog.String("request_id", "r1"))
	log.InfoContext(ctx, "below the level")
	log.WithGroup("poller").WarnContext(ctx, "slow", "ms", 1500)
	out := buf.String()
	require.NotContains(t, out, "below the level")
	require.Equal(t, 1, strings.Count(out, "\n"))
	require.Contains(t, out, "level=WARN")
	require.Contains(t, out, "poller.ms=1500")
	require.Contains(t, out, "r1", "the context's attributes reach grouped loggers too")

	// Anything but "text" is JSON; a later request ID wins.
	buf.Reset()
	ctx = logging.With(ctx, slog.String("request_id", "r2"))
	logging.New("anything", &buf, slog.LevelInfo).With("component", "worker").InfoContext(ctx, "x")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "worker", line["component"])
	require.Equal(t, "r2", logging.RequestID(ctx))
	// The parent context is unchanged by a child's attributes.
	parent := logging.With(context.Background(), slog.String("request_id", "p"))
	_ = logging.With(parent, slog.String("request_id", "c"))
	require.Equal(t, "p", logging.RequestID(parent))
}
