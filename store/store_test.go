package store

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
)

// TestMain stops the test binary's PostgreSQL cluster at the end.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// dialect is a database the store runs on.
type dialect string

const (
	sqliteDB   dialect = "sqlite"
	postgresDB dialect = "postgres"
)

// eachDB runs fn as a subtest on each database: SQLite and PostgreSQL
// (a fresh database of the test binary's throwaway cluster).
func eachDB(t *testing.T, fn func(t *testing.T, db dialect)) {
	t.Helper()
	for _, d := range []dialect{sqliteDB, postgresDB} {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

// openTest opens a new store on db; where is its file (SQLite) or URL
// (PostgreSQL), for reopen.
func openTest(t *testing.T, db dialect) (*Store, string) {
	t.Helper()
	var where string
	switch db {
	case sqliteDB:
		where = filepath.Join(t.TempDir(), "db", "secbot.db")
	case postgresDB:
		where = pgtest.Shared(t)
	}
	s, err := reopen(context.Background(), db, where)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, where
}

func reopen(ctx context.Context, db dialect, where string) (*Store, error) {
	if db == postgresDB {
		return OpenPostgres(ctx, where, zerolog.Nop())
	}
	return Open(ctx, where, zerolog.Nop())
}

var t0 = time.Date(2026, 11, 20, 18, 30, 0, 0, time.UTC)

func TestOpenCreatesPrivateFiles(t *testing.T) {
	_, path := openTest(t, sqliteDB)
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", p, got, want)
		}
	}
}

func TestReopenKeepsDataAndRunsNoMigrationTwice(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, where := openTest(t, db)
		c, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!dm:x", "matrix:!dm:x", t0)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		s, err = reopen(ctx, db, where)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		got, err := s.Case(ctx, c.ID)
		if err != nil || got.Reporter != "matrix:@r:x" {
			t.Fatalf("case after reopen = %+v, %v", got, err)
		}
	})
}

func TestCaseIDsAreUniqueUnderConcurrency(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		const n = 50
		ids := make(chan disclosure.CaseID, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				err := s.Tx(ctx, func(ctx context.Context) error {
					c, err := s.CreateCase(ctx, disclosure.Person("@r"+string(rune('a'+i%26))+string(rune('a'+i/26))+":x"), "matrix:!r:x", "", t0)
					if err == nil {
						ids <- c.ID
					}
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(ids)
		seen := map[disclosure.CaseID]bool{}
		for c := range ids {
			if seen[c] {
				t.Errorf("case ID %s allocated twice", c)
			}
			seen[c] = true
		}
		if len(seen) != n {
			t.Errorf("allocated %d IDs, want %d", len(seen), n)
		}
		for seq := 1; seq <= n; seq++ {
			if !seen[disclosure.CaseID{Year: 2026, Seq: seq}] {
				t.Errorf("SR-2026-%04d missing: numbers have gaps", seq)
			}
		}
	})
}

func TestCaseNumbersRestartEachYear(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		a, _ := s.CreateCase(ctx, "matrix:@a:x", "matrix:!r:x", "", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC))
		b, _ := s.CreateCase(ctx, "matrix:@b:x", "matrix:!r:x", "", time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC))
		if a.ID.String() != "SR-2026-0001" || b.ID.String() != "SR-2027-0001" {
			t.Errorf("got %s and %s", a.ID, b.ID)
		}
	})
}

func TestAReporterHasOneOpenCase(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		if _, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!r:x", "", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!r:x", "", t0); err == nil {
			t.Error("a second open case for the same reporter was accepted")
		}
		open, err := s.OpenCaseOf(ctx, "matrix:@r:x")
		if err != nil || open.ID.Seq != 1 {
			t.Errorf("open case = %+v, %v", open, err)
		}
		if _, err := s.OpenCaseOf(ctx, "matrix:@nobody:x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown reporter: err = %v, want ErrNotFound", err)
		}
	})
}

func TestHandledEventsAreHandledOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		first, err := s.MarkHandled(ctx, "$e1", t0)
		if err != nil || !first {
			t.Fatalf("first mark = %v, %v", first, err)
		}
		again, err := s.MarkHandled(ctx, "$e1", t0)
		if err != nil || again {
			t.Fatalf("second mark = %v, %v; want false", again, err)
		}
		// A rolled-back transaction leaves the event unhandled.
		boom := errors.New("boom")
		err = s.Tx(ctx, func(ctx context.Context) error {
			if _, err := s.MarkHandled(ctx, "$e2", t0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if handled, _ := s.WasHandled(ctx, "$e2"); handled {
			t.Error("an event of a rolled-back transaction counts as handled")
		}
	})
}

// A handled command's ID outlives every retention: a homeserver can
// redeliver an event of any age. Only chatter's records are pruned.
func TestHandledEventsOutliveTheRetention(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		if _, err := s.MarkHandled(ctx, "$command", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkHandledBriefly(ctx, "$chatter", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetHandledBefore(ctx, t0.Add(365*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if again, err := s.MarkHandled(ctx, "$command", t0.Add(366*24*time.Hour)); err != nil || again {
			t.Errorf("a year-old command is handled again after pruning: %v, %v", again, err)
		}
		if handled, _ := s.WasHandled(ctx, "$chatter"); handled {
			t.Error("chatter's record is kept past the retention")
		}
	})
}

func TestTheNewestCommandOfARoomIsKept(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		if at, err := s.LastCommandSent(ctx, "matrix:!r:x"); err != nil || !at.IsZero() {
			t.Fatalf("before any: %v, %v", at, err)
		}
		for _, at := range []time.Time{t0.Add(time.Hour), t0, t0.Add(30 * time.Minute)} {
			if err := s.NoteCommandSent(ctx, "matrix:!r:x", at); err != nil {
				t.Fatal(err)
			}
		}
		if at, err := s.LastCommandSent(ctx, "matrix:!r:x"); err != nil || !at.Equal(t0.Add(time.Hour)) {
			t.Errorf("newest = %v, %v; want %v", at, err, t0.Add(time.Hour))
		}
		if at, _ := s.LastCommandSent(ctx, "matrix:!other:x"); !at.IsZero() {
			t.Errorf("another room's newest: %v", at)
		}
	})
}

func TestOutboxRunsLanesInOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		a1, _ := s.EnqueueAt(ctx, "A", "k", json.RawMessage(`{"n":1}`), t0, t0, false)
		a2, _ := s.EnqueueAt(ctx, "A", "k", json.RawMessage(`{"n":2}`), t0, t0, false)
		b1, _ := s.EnqueueAt(ctx, "B", "k", json.RawMessage(`{"n":1}`), t0, t0, false)
		due, err := s.DueEffects(ctx, t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 2 || due[0].ID != a1 || due[1].ID != b1 {
			t.Fatalf("due = %+v, want the heads of lanes A and B", due)
		}
		if _, err := s.StartAttempt(ctx, a1); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryEffect(ctx, a1, "later", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		due, _ = s.DueEffects(ctx, t0, 10)
		if len(due) != 1 || due[0].ID != b1 {
			t.Fatalf("while A's head waits, due = %+v, want only B", due)
		}
		if err := s.CompleteEffect(ctx, b1, nil, t0); err != nil {
			t.Fatal(err)
		}
		due, _ = s.DueEffects(ctx, t0.Add(time.Minute), 10)
		if len(due) != 1 || due[0].ID != a1 || due[0].Attempts != 1 {
			t.Fatalf("after the wait, due = %+v, want A's head with one attempt", due)
		}
		_ = s.CompleteEffect(ctx, a1, json.RawMessage(`{"ok":"yes"}`), t0)
		due, _ = s.DueEffects(ctx, t0.Add(time.Minute), 10)
		if len(due) != 1 || due[0].ID != a2 {
			t.Fatalf("after A's head is done, due = %+v, want A's second", due)
		}
		state, result, _ := s.EffectResult(ctx, a1)
		if state != "done" || string(result) != `{"ok":"yes"}` {
			t.Errorf("result of a1 = %s %s", state, result)
		}
		if n, _, _ := s.OutboxDepth(ctx); n != 1 {
			t.Errorf("outbox depth = %d, want 1", n)
		}
	})
}

func TestAuditLogKeepsRefusals(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		_ = s.Audit(ctx, AuditEntry{At: t0, Actor: "matrix:@mallory:x", CaseID: "SR-2026-0001", Action: "publish", Allowed: false})
		entries, err := s.AuditBy(ctx, "matrix:@mallory:x")
		if err != nil || len(entries) != 1 || entries[0].Allowed || entries[0].Action != "publish" {
			t.Fatalf("audit = %+v, %v", entries, err)
		}
	})
}

func TestNotedEncryptedEventsAreKeptUntilDone(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, _ := openTest(t, db)
		for i, evt := range []string{"$b", "$a"} {
			if err := s.NoteEncrypted(ctx, "matrix:!r:x", evt, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.NoteEncrypted(ctx, "matrix:!r:x", "$b", t0.Add(time.Hour)); err != nil {
			t.Fatal("noting an event twice:", err)
		}
		if err := s.DoneEncrypted(ctx, "$b"); err != nil {
			t.Fatal(err)
		}
		got, err := s.AwaitingEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Event != "$a" || got[0].Room != "matrix:!r:x" || !got[0].NotedAt.Equal(t0.Add(time.Second)) {
			t.Errorf("awaiting events: %+v, want only $a noted at %v", got, t0.Add(time.Second))
		}
	})
}

// A runner whose view of the outbox is older than an effect's completion
// must not make it again.
func TestAnEffectDoneIsNotStartedAgain(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, _ := openTest(t, db)
		id, err := s.EnqueueAt(ctx, "lane", "chat.send", json.RawMessage(`{}`), t0, t0, false)
		if err != nil {
			t.Fatal(err)
		}
		stale, err := s.DueEffects(ctx, t0, 10)
		if err != nil || len(stale) != 1 {
			t.Fatalf("due: %v, %v", stale, err)
		}
		if n, err := s.StartAttempt(ctx, id); err != nil || n != 1 {
			t.Fatalf("first attempt: %d, %v", n, err)
		}
		if err := s.CompleteEffect(ctx, id, nil, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartAttempt(ctx, stale[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("starting a done effect again: %v, want ErrNotFound", err)
		}
	})
}

func TestADeliveredMessageLeavesNoTextInTheOutbox(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		now := time.Now()
		const text = "We reproduced the overflow in the loader; a fix is under review."
		sent, err := s.EnqueueAt(ctx, "SR-2026-0001", "chat.send", json.RawMessage(`{"to":{"room":"matrix:!case:x"},"markdown":"`+text+`"}`), now, now, false)
		if err != nil {
			t.Fatal(err)
		}
		failed, _ := s.EnqueueAt(ctx, "SR-2026-0002", "chat.send", json.RawMessage(`{"to":{"room":"matrix:!gone:x"},"markdown":"`+text+`"}`), now, now, false)
		if err := s.CompleteEffect(ctx, sent, json.RawMessage(`{"event":"$e"}`), now); err != nil {
			t.Fatal(err)
		}
		if err := s.FailEffect(ctx, failed, "forbidden", now); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE payload LIKE '%overflow%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d finished effects keep the team's text (%v)", n, err)
		}
	})
}

// A GitHub user's private reports are each a case; a report is one case.
func TestAGitHubReportIsOneCaseAndItsReporterMayHaveMore(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		gh := disclosure.GitHubPerson("octocat")
		open := func(ghsa string) error {
			return s.Tx(ctx, func(ctx context.Context) error {
				c, err := s.CreateCase(ctx, gh, "", "", t0)
				if err != nil {
					return err
				}
				return s.SetReport(ctx, c.ID, ghsa, "https://github.com/o/r/security/advisories/"+ghsa, "o/r", t0)
			})
		}
		if err := open("GHSA-2222-3333-4444"); err != nil {
			t.Fatal(err)
		}
		if err := open("GHSA-5555-6666-7777"); err != nil {
			t.Errorf("a second report by the same GitHub user was refused: %v", err)
		}
		if err := open("GHSA-2222-3333-4444"); err == nil {
			t.Error("a second case for the same report was accepted")
		}
		c, err := s.CaseByAdvisory(ctx, "GHSA-5555-6666-7777")
		if err != nil || c.Channel != disclosure.ChannelGitHub || c.ReportGHSA != "GHSA-5555-6666-7777" || c.GHSARepo != "o/r" || c.ID.Seq != 2 {
			t.Fatalf("case of the second report: %+v, %v", c, err)
		}
		// Moved on: found by its advisory, and still by the report that opened it.
		if err := s.SetAdvisory(ctx, c.ID, "GHSA-8888-9999-cccc", "https://github.com/o/s/security/advisories/GHSA-8888-9999-cccc", "o/s", t0); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"GHSA-8888-9999-cccc", "GHSA-5555-6666-7777"} {
			if got, err := s.CaseByAdvisory(ctx, id); err != nil || got.ID != c.ID {
				t.Errorf("CaseByAdvisory(%s) = %+v, %v", id, got, err)
			}
		}
		if _, err := s.CaseByAdvisory(ctx, "GHSA-xxxx-xxxx-xxxx"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown advisory: %v", err)
		}
	})
}

func TestPostedPartsAreRecordedOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		st, _ := openTest(t, db)
		for _, p := range []struct{ part, id string }{{"0", "$a"}, {"1.0", "$b"}, {"0", "$again"}} {
			if err := st.RecordPostedPart(ctx, 7, p.part, p.id); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.PostedParts(ctx, 7)
		if err != nil || len(got) != 2 || got["0"] != "$a" || got["1.0"] != "$b" {
			t.Errorf("posted parts: %v (%v)", got, err)
		}
		if other, err := st.PostedParts(ctx, 8); err != nil || len(other) != 0 {
			t.Errorf("another effect's parts: %v (%v)", other, err)
		}
		// A pending effect's parts are kept; those of one made are forgotten.
		id, err := st.EnqueueAt(ctx, "lane", "mail.post", json.RawMessage(`{"case_id":"SR-2026-0001"}`), time.Now(), time.Now(), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecordPostedPart(ctx, id, "0", "$c"); err != nil {
			t.Fatal(err)
		}
		if err := st.ForgetPostedParts(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.PostedParts(ctx, 7); len(got) != 0 {
			t.Errorf("the parts of an effect not pending are kept: %v", got)
		}
		if got, _ := st.PostedParts(ctx, id); len(got) != 1 {
			t.Errorf("the parts of a pending effect are forgotten: %v", got)
		}
	})
}
