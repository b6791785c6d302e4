package store

import (
	"context"
	"strings"
	"time"
)

// Counts are the figures the metrics endpoint reports, read in one go.
type Counts struct {
	CasesByStage      map[string]int
	DeadlinesKept     int // met by their due time
	DeadlinesMissed   int // met late, or past due and unmet
	Escalations       int
	OutboxPending     int
	OutboxOldest      time.Time
	FailedEffects     map[string]int // by kind prefix: "matrix", "github"
	RefusedCommands   int
	GitHubFailingFrom time.Time
	DeadLetters       int // events parked after their handler kept failing
}

// Counts reads the figures at now.
func (s *Store) Counts(ctx context.Context, now time.Time) (*Counts, error) {
	c := &Counts{FailedEffects: map[string]int{}}
	var err error
	if c.CasesByStage, err = pairMap[string, int](s.db.Query(ctx, `SELECT stage, COUNT(*) FROM cases GROUP BY stage`)); err != nil {
		return nil, err
	}
	err = s.db.QueryRow(ctx, `SELECT
		COALESCE(SUM(CASE WHEN met_at IS NOT NULL AND met_at <= due_at THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN (met_at IS NOT NULL AND met_at > due_at) OR (met_at IS NULL AND due_at < $1) THEN 1 ELSE 0 END), 0)
		FROM deadlines`, millis(now)).Scan(&c.DeadlinesKept, &c.DeadlinesMissed)
	if err != nil {
		return nil, err
	}
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE action = 'escalation'`).Scan(&c.Escalations); err != nil {
		return nil, err
	}
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE NOT allowed`).Scan(&c.RefusedCommands); err != nil {
		return nil, err
	}
	if c.OutboxPending, c.OutboxOldest, err = s.OutboxDepth(ctx); err != nil {
		return nil, err
	}
	failed := pairs[string, int](s.db.Query(ctx, `SELECT kind, COUNT(*) FROM outbox WHERE state = 'failed' GROUP BY kind`))
	err = failed.Iter(func(p pair[string, int]) (bool, error) {
		// Counted by the part before the first dot ("" without one).
		family, _, dotted := strings.Cut(p.Key, ".")
		if !dotted {
			family = ""
		}
		c.FailedEffects[family] += p.Value
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM dead_letters`).Scan(&c.DeadLetters); err != nil {
		return nil, err
	}
	var since *int64
	if err := s.db.QueryRow(ctx, `SELECT MIN(failing_since) FROM service_status WHERE service = 'github'`).Scan(&since); err != nil {
		return nil, err
	}
	if since != nil {
		c.GitHubFailingFrom = fromMillis(*since)
	}
	return c, nil
}
