//go:build !testclock

package testclock

import "github.com/jonboulle/clockwork"

// Enabled reports whether this build's clock can be stepped.
const Enabled = false

// New returns the real clock: release builds cannot be stepped.
func New() clockwork.Clock { return clockwork.NewRealClock() }
