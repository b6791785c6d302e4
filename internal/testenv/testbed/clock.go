package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/enarx/secbot/internal/testclock"
)

// clockFile is the bot's offset file (see internal/testclock): every bot
// of the test bed runs on a clock that Advance steps.
func (p *Bot) clockFile() string { return filepath.Join(p.Dir, "clock-offset") }

// ClockOffset is how far Advance has moved the bot's clock ahead of real
// time (the offset file is the record: it outlives the process).
func (p *Bot) ClockOffset() (time.Duration, error) {
	data, err := os.ReadFile(p.clockFile())
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(strings.TrimSpace(string(data)))
}

// Advance moves the bot's clock forward by d, so that a deadline or a
// backoff falls due at once instead of being waited out. If the bot is
// running, Advance returns once it has taken the step (its timers then
// fire what fell due); if not, the bot starts at the new time. The clock
// stays ahead across restarts; it never goes back.
//
// The bot's clock then runs ahead of the homeserver's: a team command
// counts as sent that much earlier, so keep the offset of a test well
// under [matrix] command_max_age (6 h by default).
func (p *Bot) Advance(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("advance by %s: the clock only goes forward", d)
	}
	offset, err := p.ClockOffset()
	if err != nil {
		return err
	}
	text, file := (offset + d).String(), p.clockFile()
	if err := os.WriteFile(file+".tmp", []byte(text+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.Running() {
		if ack, _ := os.ReadFile(file + testclock.AckSuffix); strings.TrimSpace(string(ack)) == text {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the bot did not take the step to %s within 30 s", text)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(testclock.PollEvery): // polls the ack file
		}
	}
	return nil // it reads the offset when it starts
}
