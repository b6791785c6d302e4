//go:build testclock

package testclock

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
)

var _ clockwork.Clock = (*Stepped)(nil)

// within fails unless ch delivers within a (real) second.
func within(t *testing.T, ch <-chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case now := <-ch:
		return now
	case <-time.After(time.Second):
		t.Fatalf("%s did not fire when the clock reached it", what)
		return time.Time{}
	}
}

func notYet(t *testing.T, ch <-chan time.Time, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s fired before the clock reached it", what)
	default:
	}
}

func TestAdvanceFiresWhatFellDueAndNothingElse(t *testing.T) {
	c := NewStepped()
	hour := c.NewTimer(time.Hour)
	day := c.After(24 * time.Hour)
	stopped := c.NewTimer(time.Minute)
	if !stopped.Stop() {
		t.Error("Stop of an armed timer reported it not armed")
	}
	var called atomic.Int32
	funcDone := make(chan time.Time, 1)
	c.AfterFunc(30*time.Minute, func() { called.Add(1); funcDone <- time.Time{} })

	before := c.Now()
	c.Advance(time.Hour)
	if d := c.Since(before); d < time.Hour || d > time.Hour+time.Second {
		t.Errorf("an advance of an hour moved the clock by %s", d)
	}
	fired := within(t, hour.Chan(), "the hour's timer")
	if fired.Before(before.Add(time.Hour)) {
		t.Errorf("the timer sent %s, before its time %s", fired, before.Add(time.Hour))
	}
	within(t, funcDone, "the half hour's func")
	notYet(t, day, "the day's timer")
	notYet(t, stopped.Chan(), "the stopped timer")
	if called.Load() != 1 {
		t.Errorf("the func ran %d times", called.Load())
	}
	if hour.Stop() {
		t.Error("Stop of a fired timer reported it armed")
	}
	c.Advance(23 * time.Hour)
	within(t, day, "the day's timer")
	c.Advance(-time.Hour)
	if d := c.Offset(); d != 24*time.Hour {
		t.Errorf("a step back moved the clock: offset %s", d)
	}
}

// A timer's value not yet received is taken back by Stop and Reset, as
// with time.Timer since Go 1.23.
func TestStopAndResetTakeBackAnUnreceivedValue(t *testing.T) {
	c := NewStepped()
	tm := c.NewTimer(time.Minute)
	probe := c.NewTimer(time.Minute) // fires with tm: the barrier
	c.Advance(time.Minute)
	within(t, probe.Chan(), "the probe")
	if !tm.Stop() {
		t.Error("Stop with a value waiting reported the timer not armed")
	}
	notYet(t, tm.Chan(), "the stopped timer")
	tm.Reset(time.Minute)
	notYet(t, tm.Chan(), "the reset timer")
	c.Advance(time.Minute)
	within(t, tm.Chan(), "the reset timer")
}

// Time still flows: a short timer fires on its own.
func TestRealTimeStillFlows(t *testing.T) {
	c := NewStepped()
	c.Advance(time.Hour)
	within(t, c.After(10*time.Millisecond), "a 10 ms timer")
}

func TestTickerTicksWithTheClock(t *testing.T) {
	c := NewStepped()
	tk := c.NewTicker(time.Hour)
	for i := range 3 {
		c.Advance(time.Hour)
		within(t, tk.Chan(), "tick "+string(rune('1'+i)))
	}
	tk.Stop()
	c.Advance(time.Hour)
	notYet(t, tk.Chan(), "a stopped ticker")
}

// The deadline timers run on gocron with this clock: a step fires the
// job that fell due.
func TestGocronRunsOnTheSteppedClock(t *testing.T) {
	c := NewStepped()
	s, err := gocron.NewScheduler(gocron.WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan time.Time, 16)
	if _, err := s.NewJob(gocron.DurationJob(time.Hour), gocron.NewTask(func() { ran <- time.Time{} })); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer func() { _ = s.Shutdown() }()
	notYet(t, ran, "the hourly job")
	c.Advance(time.Hour)
	within(t, ran, "the hourly job")
}

func writeOffset(t *testing.T, file, offset string) {
	t.Helper()
	if err := os.WriteFile(file+".tmp", []byte(offset+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
}

func waitAck(t *testing.T, file, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(file + AckSuffix)
		if strings.TrimSpace(string(data)) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ack file says %q, want %q", data, want)
		}
		time.Sleep(PollEvery) // polls the file
	}
}

// The process follows the file: the offset in force when it starts (a
// restart goes on from there), then every larger one written.
func TestNewFollowsTheOffsetFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "offset")
	writeOffset(t, file, "2h")
	t.Setenv(Env, file)
	c := New()
	if _, ok := c.(*Stepped); !ok {
		t.Fatalf("New with %s set returned a %T", Env, c)
	}
	if d := c.Since(time.Now()); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
		t.Fatalf("the clock started %s ahead, want 2h", d)
	}
	waitAck(t, file, "2h")
	due := c.After(time.Hour)
	writeOffset(t, file, "3h")
	waitAck(t, file, "3h")
	within(t, due, "the timer due at the new offset")
	writeOffset(t, file, "1h") // back: ignored, but answered
	waitAck(t, file, "1h")
	if d := c.(*Stepped).Offset(); d != 3*time.Hour {
		t.Errorf("offset %s after a step back, want 3h", d)
	}
	writeOffset(t, file, "soon") // not a duration: ignored
	writeOffset(t, file, "4h")
	waitAck(t, file, "4h")
	if d := c.(*Stepped).Offset(); d != 4*time.Hour {
		t.Errorf("offset %s, want 4h", d)
	}
}

func TestNewWithoutTheVariableIsTheRealClock(t *testing.T) {
	t.Setenv(Env, "")
	if _, ok := New().(*Stepped); ok {
		t.Fatal("New without the variable returned a stepped clock")
	}
}
