package handlers

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// benchCases is how many cases the intake benchmark's database holds.
const benchCases = 100_000

// benchDBs are the databases the intake benchmark runs on, each a
// sub-benchmark: a SQLite file, and a fresh database of the test binary's
// throwaway PostgreSQL 15 cluster.
var benchDBs = []struct {
	name string
	open func(b *testing.B) *store.Store
}{
	{"sqlite", func(b *testing.B) *store.Store {
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "secbot.db"), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"postgres", func(b *testing.B) *store.Store {
		st, err := store.OpenPostgres(context.Background(), pgtest.Shared(b), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

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
		b.Run(db.name, func(b *testing.B) {
			st := db.open(b)
			start := time.Now()
			seedCases(b, st, monday, benchCases)
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

// seedCases writes n open cases into st as a long-running installation
// holds them: opened one after the other over the two years before now
// (set up, with their source, direct-chat and case rooms, the reporter's
// direct chat, an audit line and the handled request), each with its
// acknowledgement and detailed-response deadlines pending, next firing
// within the coming week (none due at now). It writes the store's own
// tables with multi-row INSERTs in one transaction: seconds, where n
// intakes would take many minutes.
//
// The same function seeds the timers' tick benchmarks
// (timers/tick100k_bench_test.go): keep the two alike.
func seedCases(tb testing.TB, st *store.Store, now time.Time, n int) {
	tb.Helper()
	ctx := context.Background()
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	const span = 2 * 365 * 24 * time.Hour
	err := st.Tx(ctx, func(ctx context.Context) error {
		ins := map[string]*bulkInsert{}
		table := func(name, cols string) *bulkInsert {
			if ins[name] == nil {
				ins[name] = &bulkInsert{st: st, head: "INSERT INTO " + name + " (" + cols + ") VALUES ", cols: strings.Count(cols, ",") + 1}
			}
			return ins[name]
		}
		order := []string{"cases", "case_rooms", "chat_dms", "deadlines", "audit_log", "handled_events"}
		seq := map[int]int{}
		for i := range n {
			created := now.Add(-span + time.Duration(i)*(span/time.Duration(n)))
			seq[created.Year()]++
			id := disclosure.CaseID{Year: created.Year(), Seq: seq[created.Year()]}.String()
			user, dm, room := fmt.Sprintf("@seed%d:x", i), fmt.Sprintf("!seeddm%d:x", i), fmt.Sprintf("!seedcase%d:x", i)
			reporter := string(disclosure.PersonOn(disclosure.Matrix, user))
			next := now.Add(time.Hour + time.Duration(i%10080)*time.Minute)
			rows := []struct {
				table, cols string
				vals        []any
			}{
				{"cases", "id, reporter, stage, created_at, updated_at, setup_at, channel", []any{id, reporter, string(disclosure.StageReceived), ms(created), ms(created), ms(created), string(disclosure.ChannelChat)}},
				{"case_rooms", "case_id, role, platform, room_id", []any{id, "source", "matrix", dm}},
				{"case_rooms", "case_id, role, platform, room_id", []any{id, "dm", "matrix", dm}},
				{"case_rooms", "case_id, role, platform, room_id", []any{id, "case", "matrix", room}},
				{"chat_dms", "platform, user_id, room_id, created_at", []any{"matrix", user, dm, ms(created)}},
				{"deadlines", "case_id, kind, started_at, due_at, remind_at, next_at", []any{id, string(disclosure.DeadlineAcknowledge), ms(created), ms(next.Add(12 * time.Hour)), ms(next), ms(next)}},
				{"deadlines", "case_id, kind, started_at, due_at, remind_at, next_at", []any{id, string(disclosure.DeadlineResponse), ms(created), ms(next.Add(36 * time.Hour)), ms(next.Add(24 * time.Hour)), ms(next.Add(24 * time.Hour))}},
				{"audit_log", "at, actor, case_id, action, detail", []any{ms(created), reporter, id, "open", "direct message"}},
				{"handled_events", "event_id, handled_at", []any{fmt.Sprintf("$seed%d", i), ms(created)}},
			}
			for _, r := range rows {
				table(r.table, r.cols).add(r.vals...)
			}
			if (i+1)%bulkCases == 0 || i == n-1 {
				// Cases first: the other tables reference them.
				for _, name := range order {
					if err := ins[name].flush(ctx); err != nil {
						return err
					}
				}
			}
		}
		for year, last := range seq {
			if _, err := st.DB.Exec(ctx, `INSERT INTO case_seq (year, last) VALUES ($1, $2)`, year, last); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed %d cases: %v", n, err)
	}
	// PostgreSQL's autovacuum would have analyzed the tables of a database
	// that grew over years; a bulk load has to ask for it (and then the
	// benchmark is not disturbed by it).
	if st.Postgres() {
		if _, err := st.DB.Exec(ctx, `ANALYZE`); err != nil {
			tb.Fatal(err)
		}
	}
}

// bulkInsert batches the rows of one table into one multi-row INSERT.
type bulkInsert struct {
	st   *store.Store
	head string
	cols int
	args []any
}

// bulkCases is how many cases' rows go in one INSERT per table (at most
// 2,400 parameters: SQLite allows 32,766 in a statement, PostgreSQL 65,535).
const bulkCases = 200

func (b *bulkInsert) add(vals ...any) { b.args = append(b.args, vals...) }

func (b *bulkInsert) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(b.head)
	for i := range b.args {
		switch {
		case i == 0:
			q.WriteString("(")
		case i%b.cols == 0:
			q.WriteString("), (")
		default:
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(i+1))
	}
	q.WriteString(")")
	_, err := b.st.DB.Exec(ctx, q.String(), b.args...)
	b.args = b.args[:0]
	return err
}
