package store

import (
	"context"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/enarx/secbot/disclosure"
)

// AuditEntry is one line of the audit log: who did what, and whether it was allowed.
type AuditEntry struct {
	At      time.Time
	Actor   disclosure.Person
	CaseID  string
	Action  string
	Detail  string
	Allowed bool
}

// Audit appends an entry to the audit log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO audit_log (at, actor, case_id, action, detail, allowed) VALUES ($1, $2, $3, $4, $5, $6)`,
		millis(e.At), e.Actor, e.CaseID, e.Action, e.Detail, e.Allowed)
	return err
}

// AuditOf returns a case's audit entries, oldest first.
func (s *Store) AuditOf(ctx context.Context, caseID string) ([]AuditEntry, error) {
	return s.queryAudit(ctx, `WHERE case_id = $1 ORDER BY at, id`, caseID)
}

// AuditBy returns the entries recorded for an actor, oldest first.
func (s *Store) AuditBy(ctx context.Context, actor disclosure.Person) ([]AuditEntry, error) {
	return s.queryAudit(ctx, `WHERE actor = $1 ORDER BY at, id`, actor)
}

func (s *Store) queryAudit(ctx context.Context, where string, args ...any) ([]AuditEntry, error) {
	return s.audit.QueryMany(ctx, `SELECT at, actor, case_id, action, detail, allowed FROM audit_log `+where, args...)
}

// Scan reads an audit_log row (dbutil.DataStruct).
func (e AuditEntry) Scan(row dbutil.Scannable) (AuditEntry, error) {
	var at int64
	err := row.Scan(&at, &e.Actor, &e.CaseID, &e.Action, &e.Detail, &e.Allowed)
	e.At = fromMillis(at)
	return e, err
}
