package secrets

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a [Secret] prints instead of its value.
const Redacted = "[redacted]"

// Secret holds a secret value in memory and refuses to print it: fmt (every verb), slog, JSON
// and text marshalling all give [Redacted]. Only [Secret.Reveal] returns the value.
//
// The value sits behind a pointer so that even when a Secret is an unexported field of another
// struct — where fmt cannot call its methods and falls back to reflection — fmt prints an
// address, not the value. The zero Secret is empty.
type Secret struct {
	v *string
}

// NewSecret wraps a value so that it cannot be logged in clear by accident.
func NewSecret(value string) Secret { return Secret{v: &value} }

// Reveal returns the secret value; call it only where the value is really needed.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns [Redacted].
func (s Secret) String() string { return Redacted }

// GoString returns [Redacted], so %#v does not dump the value.
func (s Secret) GoString() string { return Redacted }

// Format prints [Redacted] for every verb and flag.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// LogValue implements [slog.LogValuer].
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes the secret as the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns [Redacted] (used by slog's text handler, encoding/xml, yaml and others).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
