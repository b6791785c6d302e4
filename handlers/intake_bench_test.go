package handlers

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/internal/testenv/seed"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// benchCases is how many cases the intake benchmark's database holds.
const benchCases = 100_000

// benchDBs are the databases the intake benchmark runs on, each a
// sub-benchmark: a SQLite file, and a fresh database of the test binary's
// throwaway PostgreSQL 15 cluster.
var benchDBs = seed.DBs(pgtest.Shared)

// benchHandlers are the handlers as the tests' world has them (newWorld:
// its policy, templates and chat platform) on st, at clock.
func benchHandlers(b *testing.B, st *store.Store, clock clockwork.Clock) *Handlers {
	b.Helper()
	tmpl, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	mustSpan := func(s string) disclosure.Span {
		sp, err := disclosure.ParseSpan(s)
		if err != nil {
			b.Fatal(err)
		}
		return sp
	}
	cal, _ := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	notify, _ := disclosure.ParseNotify("coordinator")
	backup, _ := disclosure.ParseNotify("backup")
	team, _ := disclosure.ParseNotify("team")
	policy := disclosure.NewInForce(disclosure.Policy{
		SLA:      disclosure.SLA{Acknowledge: mustSpan("48h"), DetailedResponse: mustSpan("96h"), UpdateInterval: mustSpan("5 working days"), RemindBefore: mustSpan("12h"), RepeatEvery: mustSpan("24h")},
		Calendar: cal, Ladder: disclosure.Ladder{{After: mustSpan("0s"), Notify: notify}, {After: mustSpan("24h"), Notify: backup}, {After: mustSpan("48h"), Notify: team}},
		TeamRoom: string(teamRoom), Team: []disclosure.Person{alice, bob, carol}, Coordinator: alice, Backup: bob, CommandPrefix: "!sec",
	})
	return New(policy, st, chat.NewPlatforms(fakeChat{}), tmpl, clock, nil)
}

// BenchmarkIntake100k is intake latency among 100,000 existing cases, on
// each database: from a new reporter's first message in their direct chat
// reaching the handlers (HandleMessage, as the chat router calls it) until
// the decision is committed with its effects in the outbox (the case, its
// deadlines, the answer, the case room's set-up, the team's notice, the
// audit line and the handled event, in one transaction). p50-ms and p90-ms
// are the median and 90th percentile of the iterations; the fake clock
// moves a minute between reporters, as a steady stream of new reports.
func BenchmarkIntake100k(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.Name, func(b *testing.B) {
			st := db.Open(b)
			start := time.Now()
			seed.Cases(b, st, monday, benchCases)
			b.Logf("seeded %d cases in %s", benchCases, time.Since(start).Round(time.Millisecond))
			clock := clockwork.NewFakeClockAt(monday)
			h := benchHandlers(b, st, clock)
			ctx := context.Background()
			before, _, err := st.OutboxDepth(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var took []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				i := len(took)
				clock.Advance(time.Minute)
				msg := chat.Message{ID: fmt.Sprintf("$intake%d", i), Room: fmt.Sprintf("matrix:!newdm%d:x", i), Sender: disclosure.Person(fmt.Sprintf("matrix:@new%d:x", i)),
					Sent: clock.Now(), Text: "I want to report a security issue"}
				b.StartTimer()
				t0 := time.Now()
				if err := h.HandleMessage(ctx, msg); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
			b.StopTimer()
			// Every reporter got a case of their own and effects queued.
			last := disclosure.Person(fmt.Sprintf("matrix:@new%d:x", len(took)-1))
			if _, err := st.OpenCaseOf(ctx, last); err != nil {
				b.Fatalf("the last reporter's case: %v", err)
			}
			after, _, err := st.OutboxDepth(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if after-before < 2*len(took) {
				b.Fatalf("%d intakes queued %d effects", len(took), after-before)
			}
			slices.Sort(took)
			pct := func(p int) float64 { return float64(took[(len(took)-1)*p/100].Microseconds()) / 1000 }
			b.ReportMetric(pct(50), "p50-ms")
			b.ReportMetric(pct(90), "p90-ms")
		})
	}
}
