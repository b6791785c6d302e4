package config

import (
	"fmt"
	"io"
)

// Redacted is what is shown in place of a secret.
const Redacted = "[redacted]"

// Secret is a value that must never be printed or logged: fmt (every
// verb), encoders and loggers see "[redacted]". Convert it explicitly
// (string(s), []byte(s)) where the value is needed.
type Secret string

// String hides the secret; an unset secret is "".
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format hides the secret from every fmt verb, %x and %d included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalText hides the secret from encoders (JSON, loggers).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
