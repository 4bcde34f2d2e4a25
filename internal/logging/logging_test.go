package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/secrets"
)

func TestContextAttributesOnEveryLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New("json", &buf, slog.LevelInfo)
	ctx := logging.With(context.Background(), slog.String("request_id", "r1"))
	ctx = logging.With(ctx, slog.Int64("subscription_id", 42))
	log.InfoContext(ctx, "step done", "step", "creating")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "r1", line["request_id"])
	require.EqualValues(t, 42, line["subscription_id"])
	require.Equal(t, "r1", logging.RequestID(ctx))
	require.Empty(t, logging.RequestID(context.Background()))
}

func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := logging.New(format, &buf, slog.LevelDebug).With("component", "x")
		s := secrets.NewSecret("SUPERSECRET-1")
		log.Info("by type", "value", s, "wrapped", slog.GroupValue(slog.Any("inner", s)))
		log.Info("by key", "telegram_bot_token", "SUPERSECRET-2", "password", "SUPERSECRET-3",
			"ssh_private_key", "SUPERSECRET-4", "callback_token_hash", "abc123", "ssh_key_id", 7)
		log.Error("error", "err", errors.New("wrapped "+s.String()))
		out := buf.String()
		require.NotContains(t, out, "SUPERSECRET", format)
		require.Contains(t, out, "abc123", "hashes are not secrets")
		require.Equal(t, 3, strings.Count(out, "\n"))
	}
}
