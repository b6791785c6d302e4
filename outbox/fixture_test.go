package outbox

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

type fixture struct {
	store *store.Store
	clock *clockwork.FakeClock
	tmpl  *templates.Set
}

var friday = time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)

// newFixture is a fresh store, the built-in templates and a fake clock at
// a Friday evening.
func newFixture(t testing.TB) *fixture {
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
	return &fixture{store: st, clock: clockwork.NewFakeClockAt(friday), tmpl: tmpl}
}
