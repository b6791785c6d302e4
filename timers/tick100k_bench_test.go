package timers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	bulk "github.com/enarx/secbot/internal/testenv/seed"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// benchCases is how many open cases the 100k benchmarks' database holds.
const benchCases = 100_000

// benchDBs are the databases the 100k benchmarks run on, each a
// sub-benchmark: a SQLite file, and a database of a throwaway PostgreSQL
// 15 cluster of the benchmark's own.
var benchDBs = bulk.DBs(pgtest.Start)

// fixture100k is the timers' fixture on st, holding benchCases open cases.
func fixture100k(b *testing.B, st *store.Store) *fixture {
	b.Helper()
	tmpl, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{store: st, clock: clockwork.NewFakeClockAt(friday), tmpl: tmpl, policy: testPolicy(b)}
	start := time.Now()
	bulk.Cases(b, st, friday, benchCases)
	b.Logf("seeded %d cases in %s", benchCases, time.Since(start).Round(time.Millisecond))
	return f
}

// BenchmarkTick100kNothingDue is the every-second tick at 100,000 open
// cases (200,000 pending deadlines) when nothing is due, on each database.
func BenchmarkTick100kNothingDue(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.Name, func(b *testing.B) {
			tickNothingDue(b, fixture100k(b, db.Open(b)))
		})
	}
}

// BenchmarkTick100kOneDue is a tick that fires one reminder among 100,000
// open cases, its transaction and outbox entry included, on each database.
func BenchmarkTick100kOneDue(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.Name, func(b *testing.B) {
			f := fixture100k(b, db.Open(b))
			tm := f.timers()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				b.StopTimer()
				i++
				f.openCase(b, disclosure.Person(fmt.Sprintf("matrix:@due%d:x", i)), f.clock.Now().Add(-47*time.Hour))
				b.StartTimer()
				if fired, err := tm.Tick(ctx); err != nil || fired != 1 {
					b.Fatalf("fired %d, %v", fired, err)
				}
			}
		})
	}
}
