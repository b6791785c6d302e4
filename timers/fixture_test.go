package timers

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// The outbox's tests' fixture (the timers' own is in timers_test.go, which
// runs them through the handlers, as main.go wires them).

type fixture struct {
	store *store.Store
	clock *clockwork.FakeClock
	tmpl  *templates.Set
}

var friday = time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)

func newFixture(t testing.TB, start time.Time) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, clock: clockwork.NewFakeClockAt(start), tmpl: tmpl}
}
