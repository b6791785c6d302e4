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
	f := &follower{c: NewStepped(), file: file}
	f.follow()
	go func() {
		for range time.Tick(PollEvery) {
			f.follow()
		}
	}()
	return f.c
}

// follower steps a clock to the offset its file holds.
type follower struct {
	c     *Stepped
	file  string
	acked string // the offset last answered in the ack file
}

// follow applies the file's offset and answers it in the ack file. It is
// called from one goroutine at a time.
func (f *follower) follow() {
	data, err := os.ReadFile(f.file)
	if err != nil {
		return // not written yet
	}
	text := strings.TrimSpace(string(data))
	d, err := time.ParseDuration(text)
	if err != nil {
		return
	}
	if step := d - f.c.Offset(); step > 0 {
		f.c.Advance(step)
	}
	if f.acked == text {
		return
	}
	tmp := f.file + AckSuffix + ".tmp"
	if os.WriteFile(tmp, []byte(text+"\n"), 0o600) == nil && os.Rename(tmp, f.file+AckSuffix) == nil {
		f.acked = text // else answered at the next poll
	}
}
