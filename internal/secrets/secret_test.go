package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const clear1 = "sk-ant-oat01-VERY-SECRET-VALUE"

func TestSecretReveal(t *testing.T) {
	t.Parallel()

	s := NewSecret(clear1)
	require.Equal(t, clear1, s.Reveal())
	require.False(t, s.IsZero())

	var zero Secret
	require.Equal(t, "", zero.Reveal())
	require.True(t, zero.IsZero())
	require.Equal(t, Redacted, zero.String())
}

func TestSecretFmt(t *testing.T) {
	t.Parallel()

	s := NewSecret(clear1)
	type exported struct {
		Name  string
		Token Secret
	}
	type unexported struct {
		name  string
		token Secret
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v"} {
		for _, v := range []any{s, &s, exported{"bot", s}, &exported{"bot", s}, unexported{"bot", s},
			[]Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(verb, v)
			require.NotContains(t, out, clear1, "verb %s on %T", verb, v)
			require.NotContains(t, out, fmt.Sprintf("%x", clear1), "verb %s on %T", verb, v)
		}
		require.Equal(t, Redacted, fmt.Sprintf(verb, s), "verb %s", verb)
	}
	require.Equal(t, "token="+Redacted, fmt.Sprint("token=", s))
	require.Equal(t, Redacted, s.GoString())

	// Wrapped into an error, too.
	err := fmt.Errorf("inject %v: %w", s, errors.New("boom"))
	require.NotContains(t, err.Error(), clear1)
}

func TestSecretSlog(t *testing.T) {
	t.Parallel()

	s := NewSecret(clear1)
	type holder struct {
		Token Secret `json:"token"`
		User  string `json:"user"`
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		log := slog.New(h)
		log.Info("direct", "token", s)
		log.Info("pointer", "token", &s)
		log.Info("attr", slog.Any("token", s))
		log.Debug("struct", "holder", holder{Token: s, User: "u"})
		log.LogAttrs(context.Background(), slog.LevelInfo, "group", slog.Group("g", slog.Any("token", s)))
		log.With("token", s).Info("with")
		log.Info("formatted " + fmt.Sprint(s))
	}
	out := buf.String()
	require.NotContains(t, out, clear1)
	require.Contains(t, out, `"token":"[redacted]"`)
	require.Contains(t, out, `token=[redacted]`)
}

func TestSecretMarshal(t *testing.T) {
	t.Parallel()

	s := NewSecret(clear1)
	type holder struct {
		Token  Secret  `json:"token" yaml:"token"`
		Ptr    *Secret `json:"ptr" yaml:"ptr"`
		Nested struct {
			Inner Secret `json:"inner" yaml:"inner"`
		} `json:"nested" yaml:"nested"`
	}
	h := holder{Token: s, Ptr: &s}
	h.Nested.Inner = s

	js, err := json.Marshal(h)
	require.NoError(t, err)
	require.JSONEq(t, `{"token":"[redacted]","ptr":"[redacted]","nested":{"inner":"[redacted]"}}`, string(js))

	js, err = json.Marshal(map[string]Secret{"t": s})
	require.NoError(t, err)
	require.Equal(t, `{"t":"[redacted]"}`, string(js))

	txt, err := s.MarshalText()
	require.NoError(t, err)
	require.Equal(t, Redacted, string(txt))

	y, err := yaml.Marshal(h)
	require.NoError(t, err)
	require.NotContains(t, string(y), clear1)
	require.Contains(t, string(y), "token: '[redacted]'")
}
