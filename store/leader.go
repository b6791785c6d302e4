package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
)

// One active instance, the others standing by.
//
// On PostgreSQL several instances share one database and exactly one of
// them is active: the one that holds a session-level advisory lock on a
// connection of its own, kept for the life of the process. The others
// (standbys) hold only that connection and try the lock every Poll. The
// active instance checks its lock connection every Check; on any error it
// loses its office (Watch returns a *LostError) and must stop all work and
// exit. The database releases the lock of a vanished client only once its
// own dead-peer detection (TCP keepalives, client_connection_check_interval)
// gives up on it, which the operator sets slower than Check + CheckTimeout,
// so the lock is free only after the old instance stopped.
//
// Fencing covers what that timing cannot (a paused process, a lock
// connection killed while the others still work): each instance that takes
// office increases the leader row's epoch, and every write transaction of
// the active instance reads the row FOR SHARE and compares the epoch with
// its own (EpochGuard). A new instance's increment waits for the old
// instance's transactions that read the row; after it, their next one fails
// with ErrFenced. The database itself refuses every other write (mautrix's
// stores' included) of an instance not in office: see fence.go. Nothing of
// an old epoch commits after a new one began.
//
// On SQLite the election is won at once: the database is a file on one
// machine's disk, so there is no other machine to stand by on it and
// nothing to fail over to; one process runs on one file (as before).

// ErrFenced is the error of a write transaction of an instance that is no
// longer in office: another took it (a higher epoch) or this one lost its
// lock. The transaction is rolled back; the instance must stop.
var ErrFenced = errors.New("fenced: this instance is no longer the active one")

// LostError is why an active instance lost its office: its lock
// connection failed or did not answer in time, or its epoch was overtaken.
type LostError struct{ Err error }

func (e *LostError) Error() string {
	return "lost the office of the active instance: " + e.Err.Error()
}

func (e *LostError) Unwrap() error { return e.Err }

// LockKey is the advisory lock the active instance holds ("secb"). Advisory
// locks are per database: installations on other databases of the same
// server do not meet.
const LockKey int64 = 0x73656362

// Election is how an instance campaigns for office and keeps it.
type Election struct {
	// Instance names this instance in the leader row (host and process).
	Instance string
	// Clock drives the standby's polls and the self-checks (real if nil).
	Clock clockwork.Clock
	// Poll is how often a standby tries the lock (500ms if 0).
	Poll time.Duration
	// Check is how often the active instance checks its lock connection
	// (1s if 0); CheckTimeout how long a check may take (1s if 0).
	Check, CheckTimeout time.Duration
	// OnLost, if set, is called once when the office is lost, before
	// Watch returns: it stops all work.
	OnLost func(error)
	Log    zerolog.Logger
}

// Leader is an instance's part in the election.
type Leader struct {
	st  *Store
	cfg Election
	// conn holds the advisory lock (PostgreSQL only), for the process life.
	conn      *sql.Conn
	pid       int64
	waited    bool
	active    atomic.Bool
	standing  atomic.Bool
	epoch     atomic.Int64
	takeovers atomic.Int64
	lost      atomic.Pointer[LostError]
	guard     *EpochGuard
}

// Elector returns the store's part in the election; Campaign starts it.
func (s *Store) Elector(cfg Election) *Leader {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Check <= 0 {
		cfg.Check = time.Second
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = time.Second
	}
	return &Leader{st: s, cfg: cfg}
}

// Campaign returns once this instance holds the lock: at once if it is
// free (and always on SQLite), else after standing by (role=standby in the
// log) until the active instance's session ends. An error of the lock
// connection ends it: the caller exits (its supervisor starts it again).
func (l *Leader) Campaign(ctx context.Context) error {
	if !l.st.Postgres() {
		return nil
	}
	conn, err := l.st.DB.RawDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("election: connect: %w", err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&l.pid); err != nil {
		_ = discard(conn)
		return fmt.Errorf("election: %w", err)
	}
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey).Scan(&got); err != nil {
			_ = discard(conn)
			return fmt.Errorf("election: try the lock: %w", err)
		}
		if got {
			l.conn = conn
			l.standing.Store(false)
			return nil
		}
		if !l.waited {
			l.waited = true
			l.standing.Store(true)
			l.cfg.Log.Info().Str("role", "standby").Msg("Another instance is active; standing by")
		}
		l.seeOffice(ctx, conn)
		select {
		case <-ctx.Done():
			_ = discard(conn)
			return ctx.Err()
		case <-l.cfg.Clock.After(l.cfg.Poll):
		}
	}
}

// seeOffice notes, for a standby's metrics, the epoch in force; the row
// may not exist yet (no instance took office on this database).
func (l *Leader) seeOffice(ctx context.Context, conn *sql.Conn) {
	var epoch, takeovers int64
	if conn.QueryRowContext(ctx, `SELECT epoch, takeovers FROM leader WHERE id = 1`).Scan(&epoch, &takeovers) == nil {
		l.epoch.Store(epoch)
		l.takeovers.Store(takeovers)
	}
}

// TakeOffice makes this instance, which won the election and migrated the
// database, the active one: it increases the epoch and, on PostgreSQL,
// puts the store's write transactions under its guard. Call it after
// Campaign (and the migrations: the leader table is one of them), while
// Watch runs.
func (l *Leader) TakeOffice(ctx context.Context, now time.Time) (epoch int64, err error) {
	if lost := l.lost.Load(); lost != nil {
		return 0, lost
	}
	if l.st.Postgres() {
		// The migrations may have taken long: the lock must still be ours.
		if err := l.check(ctx); err != nil {
			return 0, l.lose(err)
		}
	}
	waited := int64(0)
	if l.waited {
		waited = 1
	}
	var takeovers int64
	if l.st.Postgres() && l.st.session == "" {
		return 0, errors.New("take office: the store is no instance's (DialPostgres)")
	}
	err = l.st.Tx(ctx, func(ctx context.Context) error {
		if !l.st.Postgres() {
			return l.st.db.QueryRow(ctx, `
				INSERT INTO leader (id, epoch, instance, since, takeovers) VALUES (1, 1, $1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET epoch = leader.epoch + 1, instance = excluded.instance,
					since = excluded.since, takeovers = leader.takeovers + excluded.takeovers
				RETURNING epoch, takeovers`, l.cfg.Instance, millis(now), waited).Scan(&epoch, &takeovers)
		}
		// Waits for the transactions of the old epoch that read the row
		// (the fence's triggers too); from its commit every table refuses
		// the old session's writes (fence.go).
		err := l.st.db.QueryRow(ctx, `
			INSERT INTO leader (id, epoch, instance, since, takeovers, session) VALUES (1, 1, $1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET epoch = leader.epoch + 1, instance = excluded.instance,
				since = excluded.since, takeovers = leader.takeovers + excluded.takeovers, session = excluded.session
			RETURNING epoch, takeovers`, l.cfg.Instance, millis(now), waited, l.st.session).Scan(&epoch, &takeovers)
		if err != nil {
			return err
		}
		return l.st.installFences(ctx)
	})
	if err != nil {
		return 0, fmt.Errorf("take office: %w", err)
	}
	l.epoch.Store(epoch)
	l.takeovers.Store(takeovers)
	l.guard = &EpochGuard{epoch: epoch}
	if l.st.Postgres() {
		l.st.guard.Store(l.guard)
	}
	l.active.Store(true)
	l.cfg.Log.Info().Str("role", "active").Int64("epoch", epoch).Msg("This instance is the active one")
	return epoch, nil
}

// Watch checks the lock connection every Check until ctx ends. On an
// error, no answer within CheckTimeout, a lock no longer held or an epoch
// overtaken, the office is lost: the store's writes are refused from then
// on (ErrFenced), OnLost is called, and Watch returns the *LostError. On
// SQLite it only waits for ctx.
func (l *Leader) Watch(ctx context.Context) error {
	if !l.st.Postgres() {
		<-ctx.Done()
		return nil
	}
	if lost := l.lost.Load(); lost != nil {
		return lost
	}
	tick := l.cfg.Clock.NewTicker(l.cfg.Check)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.Chan():
		}
		err := l.check(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // stopping: the check was cut short
		}
		if err == nil && l.guard != nil && l.guard.fenced.Load() {
			err = ErrFenced
		}
		if err != nil {
			return l.lose(err)
		}
	}
}

// check asks the lock connection whether it still holds the lock.
func (l *Leader) check(ctx context.Context) error {
	if l.conn == nil {
		return errors.New("no lock connection (Campaign did not win)")
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CheckTimeout)
	defer cancel()
	// A bigint key shows in pg_locks as classid (high half), objid (low
	// half) and objsubid 1.
	var held bool
	err := l.conn.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			AND classid::text::bigint = $1 AND objid::text::bigint = $2 AND objsubid = 1)`,
		LockKey>>32, LockKey&0xffffffff).Scan(&held)
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	if !held {
		return errors.New("the advisory lock is no longer held")
	}
	return nil
}

func (l *Leader) lose(err error) error {
	lost := &LostError{Err: err}
	if !l.lost.CompareAndSwap(nil, lost) {
		return l.lost.Load()
	}
	if l.guard != nil {
		l.guard.fenced.Store(true)
	}
	l.active.Store(false)
	l.cfg.Log.Error().Err(err).Str("role", "stopping").Int64("epoch", l.epoch.Load()).Msg("Lost the office of the active instance: stopping all work")
	if l.conn != nil {
		// Closing ends the session on the server if it still can be
		// reached: the lock goes at once rather than at the timeout.
		go func() { _ = discard(l.conn) }()
	}
	if l.cfg.OnLost != nil {
		l.cfg.OnLost(lost)
	}
	return lost
}

// Lost is why the office was lost, or nil.
func (l *Leader) Lost() error {
	if lost := l.lost.Load(); lost != nil {
		return lost
	}
	return nil
}

// IsLeader is gocron's Elector (WithDistributedElector), a backstop for
// the timers: nil only while this instance is in office.
func (l *Leader) IsLeader(context.Context) error {
	if lost := l.lost.Load(); lost != nil {
		return lost
	}
	if !l.active.Load() {
		return errors.New("this instance is not the active one")
	}
	return nil
}

// Active reports whether this instance is in office.
func (l *Leader) Active() bool { return l.active.Load() }

// Epoch is this instance's epoch once active; on a standby, the epoch in
// force when it last looked (0 before any instance took office).
func (l *Leader) Epoch() int64 { return l.epoch.Load() }

// Takeovers counts the offices taken on this database by an instance that
// had been standing by (as last seen by this instance).
func (l *Leader) Takeovers() int64 { return l.takeovers.Load() }

// Role is "active", "standby", "stopping" (office lost) or "starting"
// (elected, not yet in office).
func (l *Leader) Role() string {
	switch {
	case l.lost.Load() != nil:
		return "stopping"
	case l.active.Load():
		return "active"
	case l.standing.Load():
		return "standby"
	}
	return "starting"
}

// Close releases the lock (its connection) if this instance holds it.
func (l *Leader) Close() error {
	if l.conn == nil {
		return nil
	}
	return discard(l.conn)
}

// discard closes a connection for good: sql.Conn's Close would put it
// back into the pool, its session (and the lock) alive.
func discard(conn *sql.Conn) error {
	err := conn.Raw(func(any) error { return driver.ErrBadConn })
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return nil
	}
	return err
}

// EpochGuard is the check every write transaction of the active instance
// makes on PostgreSQL: the leader row, read FOR SHARE (a new instance's
// increment waits for the transaction), still has this instance's epoch.
type EpochGuard struct {
	epoch  int64
	fenced atomic.Bool
}

func (g *EpochGuard) check(ctx context.Context, s *Store) error {
	if g.fenced.Load() {
		return ErrFenced
	}
	var epoch int64
	err := s.db.QueryRow(ctx, `SELECT epoch FROM leader WHERE id = 1 FOR SHARE`).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		epoch, err = 0, nil
	}
	if err != nil {
		return err
	}
	if epoch != g.epoch {
		g.fenced.Store(true)
		return fmt.Errorf("%w: its epoch is %d, the database's %d", ErrFenced, g.epoch, epoch)
	}
	return nil
}

// fenced wraps a transaction's function with the epoch check, once the
// instance took office on PostgreSQL.
func (s *Store) fenced(fn func(ctx context.Context) error) func(ctx context.Context) error {
	g := s.guard.Load()
	if g == nil {
		return fn
	}
	return func(ctx context.Context) error {
		if err := g.check(ctx, s); err != nil {
			return err
		}
		return fn(ctx)
	}
}

// write runs a write that is not always part of a caller's transaction
// (an outbox claim or outcome, the sync position, a handled event) in one
// under the epoch guard once an instance took office on PostgreSQL; as it
// is otherwise.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.guard.Load() == nil {
		return fn(ctx)
	}
	return s.Tx(ctx, fn)
}

// exec is db.Exec under write: a single-statement write fenced like the
// others once in office.
func (s *Store) exec(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	err = s.write(ctx, func(ctx context.Context) error {
		res, err = s.db.Exec(ctx, query, args...)
		return err
	})
	return res, err
}
