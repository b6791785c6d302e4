package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
)

// instance is one secbot process's store and its part in the election.
type instance struct {
	st    *Store
	lead  *Leader
	clock *clockwork.FakeClock
}

// dialInstance connects a new instance to the PostgreSQL database at url,
// without migrating it (a standby must not).
func dialInstance(t *testing.T, url, name string, log zerolog.Logger) *instance {
	t.Helper()
	st, err := DialPostgres(context.Background(), url, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clock := clockwork.NewFakeClock()
	lead := st.Elector(Election{Instance: name, Clock: clock, Log: log})
	t.Cleanup(func() { _ = lead.Close() })
	return &instance{st: st, lead: lead, clock: clock}
}

// start campaigns (the lock must be free), migrates and takes office.
func (in *instance) start(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	if err := in.lead.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	return in.takeOffice(t)
}

func (in *instance) takeOffice(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	if err := in.st.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	epoch, err := in.lead.TakeOffice(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	return epoch
}

// standBy starts a campaign that must wait: it returns once the instance
// stands by (its first try failed, its next one waits for the clock), and
// the campaign's outcome comes on the channel.
func (in *instance) standBy(t *testing.T) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- in.lead.Campaign(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the instance did not stand by: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the campaign ended while another instance holds the lock: %v", err)
	default:
	}
	if role := in.lead.Role(); role != "standby" {
		t.Fatalf("role %q, want standby", role)
	}
	return done
}

// promote lets a standing-by campaign try again, as often as it takes
// the server to end the old session, and waits for it to win: each round
// waits until the campaign either won or waits for its next try (a
// barrier, not a sleep: a try may take long on a loaded machine).
func (in *instance) promote(t *testing.T, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		wctx, stopWaiting := context.WithCancel(ctx)
		waiting := make(chan error, 1)
		go func() { waiting <- in.clock.BlockUntilContext(wctx, 1) }()
		select {
		case err := <-done:
			stopWaiting()
			if err != nil {
				t.Fatal(err)
			}
			return
		case err := <-waiting:
			stopWaiting()
			if err != nil {
				t.Fatal("the standby did not take the free lock")
			}
		}
		in.clock.Advance(time.Second)
	}
}

// cutLockConnection ends an instance's lock session on the server side,
// as the server's dead-peer detection or an operator would, without the
// instance noticing (no self-check runs): the lock is free.
func cutLockConnection(t *testing.T, by *Store, victim *Leader) {
	t.Helper()
	var ok bool
	if err := by.DB.RawDB.QueryRow(`SELECT pg_terminate_backend($1)`, victim.pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the lock session: %v %v", ok, err)
	}
}

func handled(t *testing.T, s *Store, id string) bool {
	t.Helper()
	ok, err := s.WasHandled(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A takes office (epoch 1) while B stands by; A's lock goes (A, paused,
// does not notice), B takes office (epoch 2): every write A tries after
// that — a decision's transaction, an outbox claim, the sync position, a
// handled event — fails with ErrFenced and leaves nothing behind.
func TestATakeoverFencesTheOldInstance(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	a := dialInstance(t, url, "a", zerolog.Nop())
	b := dialInstance(t, url, "b", zerolog.Nop())
	if epoch := a.start(t); epoch != 1 {
		t.Fatalf("first epoch %d, want 1", epoch)
	}
	if a.lead.Role() != "active" || !a.lead.Active() {
		t.Fatalf("a's role %q", a.lead.Role())
	}
	bDone := b.standBy(t)
	if err := a.st.Tx(ctx, func(ctx context.Context) error {
		_, err := a.st.MarkHandled(ctx, "$before", t0)
		return err
	}); err != nil {
		t.Fatalf("a write of the active instance: %v", err)
	}
	effect, err := a.st.EnqueueAt(ctx, "lane", "chat.send", []byte(`{}`), t0, t0, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.st.SetSyncPosition(ctx, "s1"); err != nil {
		t.Fatal(err)
	}

	cutLockConnection(t, b.st, a.lead)
	b.promote(t, bDone)
	if epoch := b.takeOffice(t); epoch != 2 {
		t.Fatalf("b's epoch %d, want 2", epoch)
	}
	if n := b.lead.Takeovers(); n != 1 {
		t.Errorf("takeovers %d, want 1 (b stood by)", n)
	}

	ran := false
	err = a.st.Tx(ctx, func(ctx context.Context) error {
		ran = true
		_, err := a.st.MarkHandled(ctx, "$after", t0)
		return err
	})
	if !errors.Is(err, ErrFenced) {
		t.Errorf("a's transaction after the takeover: %v, want ErrFenced", err)
	}
	if ran {
		t.Error("a's transaction ran its function after the takeover")
	}
	if _, err := a.st.MarkHandled(ctx, "$after-alone", t0); !errors.Is(err, ErrFenced) {
		t.Errorf("a's handled-event write: %v, want ErrFenced", err)
	}
	if _, err := a.st.StartAttempt(ctx, effect); !errors.Is(err, ErrFenced) {
		t.Errorf("a's outbox claim: %v, want ErrFenced", err)
	}
	if err := a.st.CompleteEffect(ctx, effect, []byte(`{}`), t0); !errors.Is(err, ErrFenced) {
		t.Errorf("a's outbox completion: %v, want ErrFenced", err)
	}
	if err := a.st.SetSyncPosition(ctx, "s2-old-epoch"); !errors.Is(err, ErrFenced) {
		t.Errorf("a's sync position: %v, want ErrFenced", err)
	}
	if err := a.st.ParkEvent(ctx, DeadLetter{Room: "!r", Event: "$parked-old-epoch", ParkedAt: t0, Attempts: 5, Category: "error"}); !errors.Is(err, ErrFenced) {
		t.Errorf("a's dead letter: %v, want ErrFenced", err)
	}
	if err := a.st.NoteEncrypted(ctx, "!r", "$awaiting", t0); !errors.Is(err, ErrFenced) {
		t.Errorf("a's note of an encrypted event: %v, want ErrFenced", err)
	}
	if err := b.lead.IsLeader(ctx); err != nil {
		t.Errorf("b as gocron's elector: %v", err)
	}
	if dead, err := b.st.DeadLetters(ctx); err != nil || len(dead) != 0 {
		t.Errorf("dead letters %v %v, want none", dead, err)
	}
	for _, id := range []string{"$after", "$after-alone"} {
		if handled(t, b.st, id) {
			t.Errorf("%s committed by the old epoch", id)
		}
	}
	if !handled(t, b.st, "$before") {
		t.Error("what a committed in office is gone")
	}
	if pos, err := b.st.SyncPosition(ctx); err != nil || pos != "s1" {
		t.Errorf("sync position %q %v, want s1", pos, err)
	}
	if attempts, err := b.st.StartAttempt(ctx, effect); err != nil || attempts != 1 {
		t.Errorf("b's claim of the effect: attempts %d %v, want 1 (a's claim did not count)", attempts, err)
	}
	if err := b.st.Tx(ctx, func(ctx context.Context) error {
		_, err := b.st.MarkHandled(ctx, "$b", t0)
		return err
	}); err != nil {
		t.Errorf("the new active instance's write: %v", err)
	}
}

// A transaction of the old instance that read the epoch before the
// takeover holds the new instance's increment until it ends: it commits
// (before the new epoch begins), and the old instance's next one is fenced.
func TestANewEpochWaitsForTheOldEpochsOpenTransaction(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	a := dialInstance(t, url, "a", zerolog.Nop())
	b := dialInstance(t, url, "b", zerolog.Nop())
	a.start(t)
	bDone := b.standBy(t)

	takeOverDuringOpenTxn(t, a, b, bDone, "transaction", func(ctx context.Context, held func()) error {
		return a.st.Tx(ctx, func(ctx context.Context) error {
			if _, err := a.st.MarkHandled(ctx, "$in-flight", t0); err != nil {
				return err
			}
			held()
			return nil
		})
	})
	if !handled(t, b.st, "$in-flight") {
		t.Error("a's transaction begun in office did not commit")
	}
	if err := a.st.Tx(ctx, func(ctx context.Context) error { return nil }); !errors.Is(err, ErrFenced) {
		t.Errorf("a's next transaction: %v, want ErrFenced", err)
	}
}

// takeOverDuringOpenTxn runs txn as a's transaction of its epoch and, while
// it is open (txn calls held, which returns once b has tried), cuts a's
// lock connection, promotes b and has b take office: b must wait for the
// transaction, which then ends without error, and b's epoch is 2. what
// names the transaction in the failures.
func takeOverDuringOpenTxn(t *testing.T, a, b *instance, bDone <-chan error, what string, txn func(ctx context.Context, held func()) error) {
	t.Helper()
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		aDone <- txn(ctx, func() {
			close(inside)
			<-release
		})
	}()
	<-inside
	cutLockConnection(t, b.st, a.lead)
	b.promote(t, bDone)
	bOffice := make(chan int64, 1)
	go func() {
		epoch, err := b.lead.TakeOffice(ctx, t0)
		if err != nil {
			t.Error(err)
		}
		bOffice <- epoch
	}()
	// b's increment waits on the row a's transaction holds FOR SHARE.
	waitForLockWait(t, b.st)
	select {
	case <-bOffice:
		t.Fatalf("b took office while a's %s of the old epoch was open", what)
	default:
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Errorf("a's %s begun in office: %v", what, err)
	}
	if epoch := <-bOffice; epoch != 2 {
		t.Errorf("b's epoch %d, want 2", epoch)
	}
}

// waitForLockWait returns once a session of the database waits for a
// row lock (pg_stat_activity says so).
func waitForLockWait(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := s.DB.RawDB.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling the server's state, not waiting for time to pass
	}
	t.Fatal("no session waits for a lock")
}

// The active instance checks its lock connection every second: while the
// lock is held the check passes; once the connection fails, the next
// check loses the office: OnLost is called, Watch returns a *LostError,
// and the store refuses every write from then on.
func TestTheSelfCheckStopsAnInstanceThatLostItsLock(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	st, err := DialPostgres(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := clockwork.NewFakeClock()
	stopped := make(chan error, 1)
	lead := st.Elector(Election{Instance: "a", Clock: clock, OnLost: func(err error) { stopped <- err }})
	defer lead.Close()
	a := &instance{st: st, lead: lead, clock: clock}
	a.start(t)
	if err := lead.check(ctx); err != nil {
		t.Fatalf("the check with the lock held: %v", err)
	}
	watched := make(chan error, 1)
	go func() { watched <- lead.Watch(ctx) }()
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // the ticker
		t.Fatal(err)
	}
	other, err := DialPostgres(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cutLockConnection(t, other, lead)
	clock.Advance(time.Second)
	var lost *LostError
	select {
	case err := <-stopped:
		if !errors.As(err, &lost) {
			t.Errorf("OnLost got %v, want a *LostError", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the self-check did not stop the instance")
	}
	if err := <-watched; !errors.As(err, &lost) {
		t.Errorf("Watch returned %v, want a *LostError", err)
	}
	if err := lead.IsLeader(ctx); !errors.As(err, &lost) {
		t.Errorf("gocron's elector after the loss: %v", err)
	}
	if lead.Role() != "stopping" || lead.Active() || lead.Lost() == nil {
		t.Errorf("role %q active %v lost %v", lead.Role(), lead.Active(), lead.Lost())
	}
	err = st.Tx(ctx, func(ctx context.Context) error {
		_, err := st.MarkHandled(ctx, "$after-loss", t0)
		return err
	})
	if !errors.Is(err, ErrFenced) {
		t.Errorf("a write after the loss: %v, want ErrFenced", err)
	}
	if handled(t, other, "$after-loss") {
		t.Error("a write after the loss committed")
	}
}

// Two instances start at once on a new database: one wins and migrates,
// the other stands by without touching the schema, and takes office (and
// finds nothing left to migrate) once the first one's lock is gone.
func TestTwoStartingAtOnceOneMigratesTheOtherWaits(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	var logs [2]lineCounter
	ins := [2]*instance{
		dialInstance(t, url, "a", zerolog.New(&logs[0])),
		dialInstance(t, url, "b", zerolog.New(&logs[1])),
	}
	won := make(chan int, 2)
	dones := [2]chan error{make(chan error, 1), make(chan error, 1)}
	for i, in := range ins {
		go func() {
			err := in.lead.Campaign(ctx)
			dones[i] <- err
			if err == nil {
				won <- i
			}
		}()
	}
	first := <-won
	second := 1 - first
	ins[first].takeOffice(t)
	// The loser stands by: waiting on its clock, not migrating.
	if err := ins[second].clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if role := ins[second].lead.Role(); role != "standby" {
		t.Fatalf("the second instance's role %q", role)
	}
	if n := logs[first].count("Upgrading database"); n == 0 {
		t.Errorf("the active instance logged no migration")
	}
	if n := logs[second].count("Upgrading database"); n != 0 {
		t.Errorf("the standby ran %d migrations", n)
	}
	if n := logs[second].count(`"role":"standby"`); n != 1 {
		t.Errorf("the standby logged role=standby %d times, want 1", n)
	}
	tables, err := ins[second].st.Tables(ctx)
	if err != nil || len(tables) == 0 {
		t.Fatalf("tables %v %v", tables, err)
	}

	if err := ins[first].lead.Close(); err != nil {
		t.Fatal(err)
	}
	ins[second].promote(t, dones[second])
	if epoch := ins[second].takeOffice(t); epoch != 2 {
		t.Errorf("second epoch %d, want 2", epoch)
	}
	if n := logs[second].count("Upgrading database"); n != 0 {
		t.Errorf("the second instance migrated %d times a migrated database", n)
	}
	if n := logs[second].count(`"role":"active","epoch":2`); n != 1 {
		t.Errorf("the new active instance logged role=active epoch=2 %d times", n)
	}
}

// On SQLite the election is won at once (one machine, one process on the
// file): the epoch still counts the starts, and no write is guarded.
func TestOnSQLiteTheElectionIsWonAtOnce(t *testing.T) {
	ctx := context.Background()
	st, path := openTest(t, sqliteDB)
	for want := int64(1); want <= 2; want++ {
		if want == 2 {
			_ = st.Close()
			var err error
			if st, err = Open(ctx, path, zerolog.Nop()); err != nil {
				t.Fatal(err)
			}
			defer st.Close()
		}
		lead := st.Elector(Election{Instance: "solo"})
		if err := lead.Campaign(ctx); err != nil {
			t.Fatal(err)
		}
		epoch, err := lead.TakeOffice(ctx, t0)
		if err != nil || epoch != want {
			t.Fatalf("epoch %d %v, want %d", epoch, err, want)
		}
		if lead.Role() != "active" || lead.Takeovers() != 0 {
			t.Errorf("role %q takeovers %d", lead.Role(), lead.Takeovers())
		}
		if st.guard.Load() != nil {
			t.Error("a guard on SQLite")
		}
		if _, err := st.MarkHandled(ctx, "$e", t0); err != nil {
			t.Fatal(err)
		}
	}
}

func pgShared(t *testing.T) string { return pgtest.Shared(t) }

// lineCounter is a log that counts the lines holding a text.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(p))
	return len(p), nil
}

func (c *lineCounter) count(text string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, text) {
			n++
		}
	}
	return n
}
