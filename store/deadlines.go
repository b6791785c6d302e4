package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/enarx/secbot/disclosure"
)

// Deadline is one promise of a case and how far its timer has come.
type Deadline struct {
	CaseID      disclosure.CaseID
	Kind        disclosure.DeadlineKind
	Generation  int
	StartedAt   time.Time
	DueAt       time.Time
	RemindAt    time.Time // zero: no reminder
	Reminded    bool
	LadderStep  int
	MetAt       time.Time // zero: not met
	MetBy       disclosure.Person
	EscalatedBy disclosure.Person
	NextAt      time.Time // zero: nothing pending
}

// Met reports whether the promise was kept (or answered late).
func (d *Deadline) Met() bool { return !d.MetAt.IsZero() }

const deadlineColumns = `case_id, kind, generation, started_at, due_at, remind_at, reminded, ladder_step, met_at, met_by, escalated_by, next_at`

// Scan reads a row of deadlineColumns (dbutil.DataStruct).
func (d *Deadline) Scan(row dbutil.Scannable) (*Deadline, error) {
	var rawID string
	var started, due int64
	var remind, met, next sql.NullInt64
	err := row.Scan(&rawID, &d.Kind, &d.Generation, &started, &due, &remind, &d.Reminded, &d.LadderStep, &met, &d.MetBy, &d.EscalatedBy, &next)
	if err != nil {
		return nil, err
	}
	if d.CaseID, err = disclosure.ParseCaseID(rawID); err != nil {
		return nil, err
	}
	d.StartedAt, d.DueAt = fromMillis(started), fromMillis(due)
	d.RemindAt, d.MetAt, d.NextAt = nullMillis(remind), nullMillis(met), nullMillis(next)
	return d, nil
}

func optMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(t), Valid: true}
}

// SetDeadline starts (or restarts) a deadline: a new generation, nothing
// fired yet. A job scheduled for an older generation then does nothing.
func (s *Store) SetDeadline(ctx context.Context, d Deadline) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO deadlines (case_id, kind, started_at, due_at, remind_at, next_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (case_id, kind) DO UPDATE SET
			generation = deadlines.generation + 1, started_at = excluded.started_at, due_at = excluded.due_at,
			remind_at = excluded.remind_at, reminded = FALSE, ladder_step = 0, met_at = NULL, met_by = '',
			escalated_by = '', next_at = excluded.next_at`,
		d.CaseID.String(), d.Kind, millis(d.StartedAt), millis(d.DueAt), optMillis(d.RemindAt), optMillis(d.NextAt))
	if err != nil {
		return fmt.Errorf("set %s deadline of %s: %w", d.Kind, d.CaseID, err)
	}
	return nil
}

// MeetDeadline records that a promise was kept: the timer stops and its
// generation moves on. It reports false if the deadline was already met or
// does not exist.
func (s *Store) MeetDeadline(ctx context.Context, caseID disclosure.CaseID, kind disclosure.DeadlineKind, by disclosure.Person, at time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `
		UPDATE deadlines SET met_at = $3, met_by = $4, next_at = NULL, generation = generation + 1
		WHERE case_id = $1 AND kind = $2 AND met_at IS NULL`, caseID.String(), kind, millis(at), by)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AdvanceDeadline records that a firing happened: the reminder was sent or
// one more escalation step went out. It succeeds only if the row is still
// at the generation and progress the firing was decided on, so a stale or
// repeated firing changes nothing (it reports false). escalatedBy is who
// asked for the next firing ("" once a reporter's !escalate was used up).
func (s *Store) AdvanceDeadline(ctx context.Context, from Deadline, reminded bool, ladderStep int, next time.Time, escalatedBy disclosure.Person) (bool, error) {
	res, err := s.db.Exec(ctx, `
		UPDATE deadlines SET reminded = $5, ladder_step = $6, next_at = $7, escalated_by = $8
		WHERE case_id = $1 AND kind = $2 AND generation = $3 AND ladder_step = $4 AND reminded = $9 AND met_at IS NULL`,
		from.CaseID.String(), from.Kind, from.Generation, from.LadderStep, reminded, ladderStep, optMillis(next), escalatedBy, from.Reminded)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Deadline returns one deadline of a case, or ErrNotFound.
func (s *Store) Deadline(ctx context.Context, caseID disclosure.CaseID, kind disclosure.DeadlineKind) (*Deadline, error) {
	return found(s.deadlines.QueryOne(ctx, `SELECT `+deadlineColumns+` FROM deadlines WHERE case_id = $1 AND kind = $2`, caseID.String(), kind))
}

// DeadlinesOf returns every deadline of a case.
func (s *Store) DeadlinesOf(ctx context.Context, caseID disclosure.CaseID) ([]*Deadline, error) {
	return s.deadlines.QueryMany(ctx, `SELECT `+deadlineColumns+` FROM deadlines WHERE case_id = $1 ORDER BY due_at`, caseID.String())
}

// DueDeadlines returns up to limit deadlines whose next firing is at or
// before now, earliest first. It reads the partial index on next_at, so a
// tick with nothing due costs one index probe however many cases are open.
func (s *Store) DueDeadlines(ctx context.Context, now time.Time, limit int) ([]*Deadline, error) {
	return s.deadlines.QueryMany(ctx, `SELECT `+deadlineColumns+` FROM deadlines WHERE next_at IS NOT NULL AND next_at <= $1 ORDER BY next_at, case_id, kind LIMIT $2`, millis(now), limit)
}

// NextDeadlineAt returns when the next deadline fires, zero if none is pending.
func (s *Store) NextDeadlineAt(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT MIN(next_at) FROM deadlines WHERE next_at IS NOT NULL`).Scan(&next)
	return nullMillis(next), err
}

// StopDeadlines stops every timer of a case (it was closed or rejected).
func (s *Store) StopDeadlines(ctx context.Context, caseID disclosure.CaseID) error {
	_, err := s.db.Exec(ctx, `UPDATE deadlines SET next_at = NULL, generation = generation + 1 WHERE case_id = $1 AND next_at IS NOT NULL`, caseID.String())
	return err
}

// EscalateNow makes a deadline's next escalation step due at once: the
// reporter ran !escalate. It reports false if the deadline was met.
func (s *Store) EscalateNow(ctx context.Context, caseID disclosure.CaseID, kind disclosure.DeadlineKind, by disclosure.Person, now time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `
		UPDATE deadlines SET next_at = $3, reminded = TRUE, escalated_by = $4
		WHERE case_id = $1 AND kind = $2 AND met_at IS NULL`, caseID.String(), kind, millis(now), by)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Domain is the deadline as the policy decides on it.
func (d *Deadline) Domain() disclosure.Deadline {
	return disclosure.Deadline{Kind: d.Kind, StartedAt: d.StartedAt, DueAt: d.DueAt, MetAt: d.MetAt, RemindAt: d.RemindAt, NextAt: d.NextAt, Reminded: d.Reminded, LadderStep: d.LadderStep}
}
