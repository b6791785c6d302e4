package config

import (
	"fmt"
	"strings"
)

// SecretValue is the Value of a Problem about a secret that came from the
// environment: the value itself is never reported.
const SecretValue = "(secret)"

// Problem is one thing wrong with the configuration: the key (as written in
// the TOML, like "team.members[2]", or the environment variable a secret
// came from), the value found and why it is refused.
type Problem struct {
	Key   string
	Value string
	Why   string
}

// String formats the problem as `key = "value": why`; a problem with no
// value (a missing or unknown key) is `key: why`, and a secret's value is
// shown as (secret).
func (p Problem) String() string {
	switch p.Value {
	case "":
		return fmt.Sprintf("%s: %s", p.Key, p.Why)
	case SecretValue:
		return fmt.Sprintf("%s = %s: %s", p.Key, SecretValue, p.Why)
	}
	return fmt.Sprintf("%s = %q: %s", p.Key, p.Value, p.Why)
}

// Problems is every problem found in a configuration; it is the error Load
// and Parse return, one line per problem.
type Problems []Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Has reports whether some problem is about key.
func (ps Problems) Has(key string) bool {
	for _, p := range ps {
		if p.Key == key {
			return true
		}
	}
	return false
}
