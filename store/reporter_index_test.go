package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestOpenCaseOfReadsAnIndex checks that finding a reporter's open case
// (every intake and every message in a direct chat asks) reads an index,
// not every case: at 100,000 cases the scan took 6 ms on SQLite and 12 ms
// on PostgreSQL per intake (handlers' BenchmarkIntake100k). PostgreSQL is
// told to avoid sequential scans, so that a usable index is taken even on
// the test's empty table.
func TestOpenCaseOfReadsAnIndex(t *testing.T) {
	// The query of OpenCaseOf.
	query := `SELECT ` + caseColumns + caseFrom + `WHERE c.reporter = $1 AND c.stage <> 'closed'`
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		var plan []string
		err := s.Tx(ctx, func(ctx context.Context) error {
			explain := `EXPLAIN QUERY PLAN `
			if s.Postgres() {
				explain = `EXPLAIN `
				if _, err := s.db.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
					return err
				}
			}
			rows, err := s.db.Query(ctx, explain+query, "matrix:@r:x")
			if err != nil {
				return err
			}
			defer rows.Close()
			cols, err := rows.Columns()
			if err != nil {
				return err
			}
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				// The plan's text is the last column (SQLite: id,
				// parent, notused, detail).
				plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		// The cases are looked up by reporter in an index, not read one
		// by one (a seq scan, or an index scan of the primary key that
		// filters every row).
		byReporter := false
		for _, step := range plan {
			step = strings.TrimSpace(step)
			if s.Postgres() && strings.HasPrefix(step, "Index Cond: (reporter = ") ||
				!s.Postgres() && strings.HasPrefix(step, "SEARCH c USING ") && strings.Contains(step, "(reporter=?)") {
				byReporter = true
			}
		}
		if !byReporter {
			t.Errorf("OpenCaseOf reads every case:\n%s", strings.Join(plan, "\n"))
		}
	})
}
