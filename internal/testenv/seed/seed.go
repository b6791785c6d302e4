// Package seed opens the stores the benchmarks at 100,000 cases (timers'
// tick, handlers' intake) run on, SQLite and PostgreSQL, and fills one
// the way a long-running installation has it.
package seed

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// Cases writes n open cases into st as a long-running installation
// holds them: opened one after the other over the two years before now
// (set up, with their source, direct-chat and case rooms, the reporter's
// direct chat, an audit line and the handled request), each with its
// acknowledgement and detailed-response deadlines pending, next firing
// within the coming week (none due at now). It writes the store's own
// tables with multi-row INSERTs in one transaction: seconds, where n
// intakes would take many minutes.
func Cases(tb testing.TB, st *store.Store, now time.Time, n int) {
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
