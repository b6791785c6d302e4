package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/enarx/secbot/disclosure"
)

// Embargo returns a case's embargo (the zero state if there is none).
func (s *Store) Embargo(ctx context.Context, caseID disclosure.CaseID) (disclosure.Embargo, error) {
	var state string
	var end, proposed sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT state, end_at, proposed_at FROM embargoes WHERE case_id = $1`, caseID.String()).Scan(&state, &end, &proposed)
	if errors.Is(err, sql.ErrNoRows) {
		return disclosure.Embargo{State: disclosure.EmbargoNone}, nil
	} else if err != nil {
		return disclosure.Embargo{}, err
	}
	return disclosure.Embargo{State: disclosure.EmbargoState(state), End: nullMillis(end), Proposed: nullMillis(proposed)}, nil
}

// SetEmbargo records a case's embargo. When the agreed end changes, the
// reminders of the old end are dropped and those of the new one planned.
func (s *Store) SetEmbargo(ctx context.Context, caseID disclosure.CaseID, e disclosure.Embargo, reminders []time.Time, now time.Time) error {
	old, err := s.Embargo(ctx, caseID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO embargoes (case_id, state, end_at, proposed_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (case_id) DO UPDATE SET state = excluded.state, end_at = excluded.end_at,
			proposed_at = excluded.proposed_at, updated_at = excluded.updated_at`,
		caseID.String(), e.State, optMillis(e.End), optMillis(e.Proposed), millis(now))
	if err != nil {
		return err
	}
	active := e.State == disclosure.EmbargoActive || e.State == disclosure.EmbargoRevise
	if active && old.End.Equal(e.End) && (old.State == disclosure.EmbargoActive || old.State == disclosure.EmbargoRevise) {
		return nil // same end: the planned reminders stand
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM embargo_reminders WHERE case_id = $1 AND sent = FALSE`, caseID.String()); err != nil {
		return err
	}
	if !active {
		return nil
	}
	for _, at := range reminders {
		if !at.After(now) {
			continue
		}
		if _, err := s.db.Exec(ctx, `INSERT INTO embargo_reminders (case_id, at, end_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			caseID.String(), millis(at), millis(e.End)); err != nil {
			return err
		}
	}
	return nil
}

// EmbargoReminder is a planned reminder of an embargo's end.
type EmbargoReminder struct {
	CaseID disclosure.CaseID
	At     time.Time
	End    time.Time
}

// DueEmbargoReminders returns unsent reminders due at now.
func (s *Store) DueEmbargoReminders(ctx context.Context, now time.Time) ([]EmbargoReminder, error) {
	return s.reminders.QueryMany(ctx, `SELECT case_id, at, end_at FROM embargo_reminders WHERE sent = FALSE AND at <= $1 ORDER BY at LIMIT 100`, millis(now))
}

// Scan reads an embargo_reminders row (dbutil.DataStruct).
func (EmbargoReminder) Scan(row dbutil.Scannable) (EmbargoReminder, error) {
	var raw string
	var at, end int64
	if err := row.Scan(&raw, &at, &end); err != nil {
		return EmbargoReminder{}, err
	}
	id, err := disclosure.ParseCaseID(raw)
	return EmbargoReminder{CaseID: id, At: fromMillis(at), End: fromMillis(end)}, err
}

// MarkEmbargoReminderSent records a reminder as sent; it reports false if
// it already was (so it goes out once).
func (s *Store) MarkEmbargoReminderSent(ctx context.Context, r EmbargoReminder) (bool, error) {
	res, err := s.db.Exec(ctx, `UPDATE embargo_reminders SET sent = TRUE WHERE case_id = $1 AND at = $2 AND sent = FALSE`, r.CaseID.String(), millis(r.At))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AddNeedToKnow puts a user (and their GitHub account, "" if none) on a
// case's need-to-know list; false if already there.
func (s *Store) AddNeedToKnow(ctx context.Context, caseID disclosure.CaseID, user, by disclosure.Person, login string, now time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `INSERT INTO need_to_know (case_id, user_id, added_by, added_at, github_login) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		caseID.String(), user, by, millis(now), login)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RemoveNeedToKnow takes a user off the list; false if they were not on it.
func (s *Store) RemoveNeedToKnow(ctx context.Context, caseID disclosure.CaseID, user disclosure.Person) (bool, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM need_to_know WHERE case_id = $1 AND user_id = $2`, caseID.String(), user)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// NeedToKnow lists a case's need-to-know people, with their GitHub
// accounts ("" where none was given).
func (s *Store) NeedToKnow(ctx context.Context, caseID disclosure.CaseID) ([]disclosure.NeedToKnow, error) {
	rows, err := s.db.Query(ctx, `SELECT user_id, github_login FROM need_to_know WHERE case_id = $1 ORDER BY added_at, user_id`, caseID.String())
	return dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (n disclosure.NeedToKnow, err error) {
		err = row.Scan(&n.Who, &n.GitHub)
		return n, err
	}, err).AsList()
}

// EffectDoneInLane reports whether an effect of a lane was made (e.g. an
// announcement already posted in a room).
func (s *Store) EffectDoneInLane(ctx context.Context, lane string) (bool, error) {
	_, ok, err := scalar[int](ctx, s.db, `SELECT 1 FROM outbox WHERE lane = $1 AND state = 'done' LIMIT 1`, lane)
	return ok, err
}

// EffectPendingInLane reports whether a lane still has effects to make.
func (s *Store) EffectPendingInLane(ctx context.Context, lane string) (bool, error) {
	_, ok, err := scalar[int](ctx, s.db, `SELECT 1 FROM outbox WHERE lane = $1 AND state = 'pending' LIMIT 1`, lane)
	return ok, err
}
