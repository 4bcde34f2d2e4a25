// Package logging builds the processes' slog loggers: JSON in production, text in development,
// with the request ID and subscription ID carried by the context added to every line, and
// secrets redacted.
//
// Secrets are redacted by type: a [secrets.Secret] logs as [redacted] whatever handler formats
// it. As a second line of defence the handler also redacts any attribute whose key names a
// secret (token, password, private key, …), so a secret passed as a plain string by mistake does
// not reach the log either.
package logging

import (
	"context"
	"io"
	"log/slog"
	"regexp"

	"github.com/rachelcloud/admin/internal/secrets"
)

// New returns a logger writing format ("json" or "text") to w.
func New(format string, w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redact}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&contextHandler{Handler: h})
}

type ctxKey struct{}

// With returns a context whose log lines carry attrs (e.g. "request_id", "subscription_id").
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	next := make([]slog.Attr, 0, len(prev)+len(attrs))
	next = append(next, prev...)
	next = append(next, attrs...)
	return context.WithValue(ctx, ctxKey{}, next)
}

// RequestID returns the request ID carried by ctx, if any.
func RequestID(ctx context.Context) string {
	attrs, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	for i := len(attrs) - 1; i >= 0; i-- {
		if attrs[i].Key == "request_id" {
			return attrs[i].Value.String()
		}
	}
	return ""
}

// contextHandler adds the context's attributes to every record.
type contextHandler struct{ slog.Handler }

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithAttrs(attrs)}
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithGroup(name)}
}

// secretKey matches attribute keys that name a secret. IDs, hashes and fingerprints of secrets
// are not secrets and stay readable.
var secretKey = regexp.MustCompile(`(?i)(password|passwd|secret|token|private_?key|api_?key|credential|authorization|cookie)`)
var notSecretKey = regexp.MustCompile(`(?i)(_id|_hash|fingerprint|_at|_count|expires)$`)

func redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindAny {
		if _, ok := a.Value.Any().(secrets.Secret); ok {
			return slog.String(a.Key, secrets.Redacted)
		}
	}
	if a.Value.Kind() != slog.KindGroup && secretKey.MatchString(a.Key) && !notSecretKey.MatchString(a.Key) {
		return slog.String(a.Key, secrets.Redacted)
	}
	return a
}
