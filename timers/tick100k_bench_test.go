package timers_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// benchCases is how many open cases the 100k benchmarks' database holds.
const benchCases = 100_000

// benchDBs are the databases the 100k benchmarks run on, each a
// sub-benchmark: a SQLite file, and a database of a throwaway PostgreSQL
// 15 cluster of the benchmark's own.
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
		st, err := store.OpenPostgres(context.Background(), pgtest.Start(b), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}},
}

// fixture100k is the timers' fixture on st, holding benchCases open cases.
func fixture100k(b *testing.B, st *store.Store) *fixture {
	b.Helper()
	tmpl, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{store: st, clock: clockwork.NewFakeClockAt(friday), tmpl: tmpl, policy: testPolicy(b)}
	start := time.Now()
	seedCases(b, st, friday, benchCases)
	b.Logf("seeded %d cases in %s", benchCases, time.Since(start).Round(time.Millisecond))
	return f
}

// BenchmarkTick100kNothingDue is the every-second tick at 100,000 open
// cases (200,000 pending deadlines) when nothing is due, on each database.
func BenchmarkTick100kNothingDue(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			f := fixture100k(b, db.open(b))
			tm := f.timers()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fired, err := tm.Tick(ctx); err != nil || fired != 0 {
					b.Fatalf("fired %d, %v", fired, err)
				}
			}
		})
	}
}

// BenchmarkTick100kOneDue is a tick that fires one reminder among 100,000
// open cases, its transaction and outbox entry included, on each database.
func BenchmarkTick100kOneDue(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			f := fixture100k(b, db.open(b))
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

// seedCases writes n open cases into st as a long-running installation
// holds them: opened one after the other over the two years before now
// (set up, with their source, direct-chat and case rooms, the reporter's
// direct chat, an audit line and the handled request), each with its
// acknowledgement and detailed-response deadlines pending, next firing
// within the coming week (none due at now). It writes the store's own
// tables with multi-row INSERTs in one transaction: seconds, where n
// intakes would take many minutes.
//
// The same function seeds the handlers' intake benchmark
// (handlers/intake_bench_test.go): keep the two alike.
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
