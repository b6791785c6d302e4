package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Two transactions that read a value and write it back increased could
// both commit under READ COMMITTED (one increment lost). On PostgreSQL Tx
// runs them serializable: one fails with 40001 and is run again, and both
// increments count.
func TestConcurrentReadThenWriteLosesNothingOnPostgres(t *testing.T) {
	s, _ := openTest(t, postgresDB)
	ctx := context.Background()
	if _, err := s.db.Exec(ctx, `CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup // both have read before either writes
	read.Add(2)
	var calls atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			first := true
			errs[i] = s.Tx(ctx, func(ctx context.Context) error {
				calls.Add(1)
				var n int64
				if err := s.db.QueryRow(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
					return err
				}
				if first {
					first = false
					read.Done()
					read.Wait()
				}
				_, err := s.db.Exec(ctx, `UPDATE counter SET n = $1`, n+1)
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("counter = %d after two increments", n)
	}
	if c := calls.Load(); c != 3 {
		t.Errorf("the functions ran %d times, want 3 (one retried)", c)
	}
}

// A serialization failure or deadlock is retried a bounded number of
// times; any other error, or one inside an outer transaction, is not.
func TestTxRetriesOnlyConflictsAndNotForever(t *testing.T) {
	s, _ := openTest(t, postgresDB)
	ctx := context.Background()
	for _, c := range []struct {
		err   error
		calls int
	}{
		{&pgconn.PgError{Code: "40001"}, txAttempts},
		{&pgconn.PgError{Code: "40P01"}, txAttempts},
		{&pgconn.PgError{Code: "23505"}, 1},
		{errors.New("refused"), 1},
	} {
		calls := 0
		err := s.Tx(ctx, func(ctx context.Context) error { calls++; return c.err })
		if !errors.Is(err, c.err) || calls != c.calls {
			t.Errorf("%v: %d calls, %v; want %d calls", c.err, calls, err, c.calls)
		}
	}
	calls := 0
	_ = s.Tx(ctx, func(ctx context.Context) error {
		return s.Tx(ctx, func(ctx context.Context) error { calls++; return &pgconn.PgError{Code: "40001"} })
	})
	if calls != txAttempts {
		t.Errorf("a nested Tx ran %d times, want %d (retried by the outer one only)", calls, txAttempts)
	}

	// On SQLite nothing is retried: its transactions are serial.
	lite, _ := openTest(t, sqliteDB)
	calls = 0
	_ = lite.Tx(ctx, func(ctx context.Context) error { calls++; return &pgconn.PgError{Code: "40001"} })
	if calls != 1 {
		t.Errorf("SQLite ran the function %d times", calls)
	}
}
