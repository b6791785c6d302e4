//go:build testclock

package testclock

import (
	"os"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// Enabled reports whether this build's clock can be stepped.
const Enabled = true

// New returns the clock stepped through the file SECBOT_TESTCLOCK names,
// or the real clock if it names none. The file's offset in force now is
// applied before New returns.
func New() clockwork.Clock {
	file := os.Getenv(Env)
	if file == "" {
		return clockwork.NewRealClock()
	}
	c := NewStepped()
	c.follow(file)
	go func() {
		for range time.Tick(PollEvery) {
			c.follow(file)
		}
	}()
	return c
}

// follow applies the file's offset and answers it in the ack file.
func (c *Stepped) follow(file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		return // not written yet
	}
	text := strings.TrimSpace(string(data))
	d, err := time.ParseDuration(text)
	if err != nil {
		return
	}
	c.mu.Lock()
	step, answered := d-c.offset, c.acked == text
	c.mu.Unlock()
	if step > 0 {
		c.Advance(step)
	}
	if answered {
		return
	}
	tmp := file + AckSuffix + ".tmp"
	if os.WriteFile(tmp, []byte(text+"\n"), 0o600) == nil && os.Rename(tmp, file+AckSuffix) == nil {
		c.mu.Lock()
		c.acked = text // else answered at the next poll
		c.mu.Unlock()
	}
}
