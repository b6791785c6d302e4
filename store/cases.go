package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Case is one report as the store keeps it.
type Case struct {
	ID         disclosure.CaseID
	Reporter   disclosure.Person
	SourceRoom string
	DMRoom     string
	CaseRoom   string
	Stage      disclosure.Stage
	Handler    disclosure.Person
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ClosedAt   time.Time
	GHSAID     string
	GHSAURL    string
	ForkName   string
	ForkURL    string
	// What the team recorded for the advisory and the announcement.
	Affected, Patched, Severity, PublicSummary, Credit, CVEID string
	// ReporterGitHub is the GitHub account the reporter named as theirs.
	ReporterGitHub string
	// PublicDescription is the advisory's public description.
	PublicDescription string
	// Channel is how the reporter reached the team.
	Channel disclosure.Channel
	// ReportGHSA is the private vulnerability report that opened the case
	// ("" for other channels); GHSARepo is the repository (owner/name) of
	// the case's advisory ("" for the default one of older configs).
	ReportGHSA, GHSARepo string
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

const caseColumns = `id, reporter, source_room, dm_room, case_room, stage, handler, created_at, updated_at, closed_at, ghsa_id, ghsa_url, fork_name, fork_url, affected, patched, severity, public_summary, credit, cve_id, reporter_github, public_description, channel, COALESCE(report_ghsa, ''), ghsa_repo`

func scanCase(row interface{ Scan(...any) error }) (*Case, error) {
	var c Case
	var rawID string
	var created, updated int64
	var closed sql.NullInt64
	err := row.Scan(&rawID, &c.Reporter, &c.SourceRoom, &c.DMRoom, &c.CaseRoom, &c.Stage, &c.Handler, &created, &updated, &closed, &c.GHSAID, &c.GHSAURL, &c.ForkName, &c.ForkURL, &c.Affected, &c.Patched, &c.Severity, &c.PublicSummary, &c.Credit, &c.CVEID, &c.ReporterGitHub, &c.PublicDescription, &c.Channel, &c.ReportGHSA, &c.GHSARepo)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	if c.ID, err = disclosure.ParseCaseID(rawID); err != nil {
		return nil, fmt.Errorf("stored case ID %q: %w", rawID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.ClosedAt = fromMillis(created), fromMillis(updated), nullMillis(closed)
	return &c, nil
}

// CreateCase allocates the next case ID of now's year and inserts the case.
// Run it inside Tx: allocation and insert commit together or not at all.
func (s *Store) CreateCase(ctx context.Context, reporter disclosure.Person, sourceRoom, dmRoom string, now time.Time) (*Case, error) {
	year := now.UTC().Year()
	var seq int
	err := s.db.QueryRow(ctx, `
		INSERT INTO case_seq (year, last) VALUES ($1, 1)
		ON CONFLICT (year) DO UPDATE SET last = case_seq.last + 1
		RETURNING last`, year).Scan(&seq)
	if err != nil {
		return nil, fmt.Errorf("allocate case number: %w", err)
	}
	c := &Case{
		ID:         disclosure.CaseID{Year: year, Seq: seq},
		Reporter:   reporter,
		SourceRoom: sourceRoom,
		DMRoom:     dmRoom,
		Stage:      disclosure.StageReceived,
		CreatedAt:  now.UTC().Truncate(time.Millisecond),
		UpdatedAt:  now.UTC().Truncate(time.Millisecond),
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO cases (id, reporter, source_room, dm_room, stage, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		c.ID.String(), reporter, sourceRoom, dmRoom, c.Stage, millis(now))
	if err != nil {
		return nil, fmt.Errorf("insert case %s: %w", c.ID, err)
	}
	return c, nil
}

// Case returns the case with the given ID.
func (s *Store) Case(ctx context.Context, caseID disclosure.CaseID) (*Case, error) {
	return scanCase(s.db.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE id = $1`, caseID.String()))
}

// OpenCaseOf returns the reporter's open case, or ErrNotFound.
func (s *Store) OpenCaseOf(ctx context.Context, reporter disclosure.Person) (*Case, error) {
	return scanCase(s.db.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE reporter = $1 AND stage <> 'closed'`, reporter))
}

// CaseByRoom returns the case whose private room is roomID, or ErrNotFound.
func (s *Store) CaseByRoom(ctx context.Context, roomID string) (*Case, error) {
	return scanCase(s.db.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE case_room = $1`, roomID))
}

// OpenCases returns every case not yet closed, oldest first.
func (s *Store) OpenCases(ctx context.Context) ([]*Case, error) {
	return s.queryCases(ctx, `WHERE stage <> 'closed' ORDER BY created_at, id`)
}

func (s *Store) queryCases(ctx context.Context, where string, args ...any) ([]*Case, error) {
	rows, err := s.db.Query(ctx, `SELECT `+caseColumns+` FROM cases `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetCaseRoom records the private room created for a case.
func (s *Store) SetCaseRoom(ctx context.Context, caseID disclosure.CaseID, roomID string, now time.Time) error {
	return s.updateCase(ctx, caseID, `case_room = $2, updated_at = $3`, roomID, millis(now))
}

// SetDMRoom records the direct-message room a case's reporter is answered in.
func (s *Store) SetDMRoom(ctx context.Context, caseID disclosure.CaseID, roomID string, now time.Time) error {
	return s.updateCase(ctx, caseID, `dm_room = $2, updated_at = $3`, roomID, millis(now))
}

func (s *Store) updateCase(ctx context.Context, caseID disclosure.CaseID, set string, args ...any) error {
	res, err := s.db.Exec(ctx, `UPDATE cases SET `+set+` WHERE id = $1`, append([]any{caseID.String()}, args...)...)
	if err != nil {
		return fmt.Errorf("update case %s: %w", caseID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update case %s: %w", caseID, ErrNotFound)
	}
	return nil
}

// DMRoom returns the bot's direct-message room with user, or ErrNotFound.
func (s *Store) DMRoom(ctx context.Context, user disclosure.Person) (string, error) {
	var roomID string
	err := s.db.QueryRow(ctx, `SELECT room_id FROM dm_rooms WHERE user_id = $1`, user).Scan(&roomID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return roomID, err
}

// SetDMRoom records roomID as the bot's direct-message room with user.
func (s *Store) SetDMRoomOf(ctx context.Context, user disclosure.Person, roomID string, now time.Time) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO dm_rooms (user_id, room_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET room_id = excluded.room_id`, user, roomID, millis(now))
	return err
}

// ForgetDMRoom drops roomID as user's direct chat (it is not one any more);
// the next message to them opens a new one.
func (s *Store) ForgetDMRoom(ctx context.Context, user disclosure.Person, roomID string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM dm_rooms WHERE user_id = $1 AND room_id = $2`, user, roomID)
	return err
}

// SetStage records a case's stage and handler after a transition.
func (s *Store) SetStage(ctx context.Context, caseID disclosure.CaseID, stage disclosure.Stage, handler disclosure.Person, now time.Time) error {
	closed := sql.NullInt64{}
	if stage == disclosure.StageClosed {
		closed = sql.NullInt64{Int64: millis(now), Valid: true}
	}
	return s.updateCase(ctx, caseID, `stage = $2, handler = $3, updated_at = $4, closed_at = COALESCE($5, closed_at)`, stage, handler, millis(now), closed)
}

// SetAdvisory records the case's GitHub advisory and its repository.
func (s *Store) SetAdvisory(ctx context.Context, caseID disclosure.CaseID, ghsaID, url, repo string, now time.Time) error {
	return s.updateCase(ctx, caseID, `ghsa_id = $2, ghsa_url = $3, ghsa_repo = $4, updated_at = $5`, ghsaID, url, repo, millis(now))
}

// SetChannel records the channel a new case came through.
func (s *Store) SetChannel(ctx context.Context, caseID disclosure.CaseID, ch disclosure.Channel) error {
	return s.updateCase(ctx, caseID, `channel = $2`, ch)
}

// SetReport marks a new case as opened by a GitHub private vulnerability
// report, which is its advisory. A second case for the same report is
// refused by the unique index.
func (s *Store) SetReport(ctx context.Context, caseID disclosure.CaseID, ghsaID, url, repo string, now time.Time) error {
	return s.updateCase(ctx, caseID, `channel = $2, report_ghsa = $3, ghsa_id = $3, ghsa_url = $4, ghsa_repo = $5, updated_at = $6`,
		disclosure.ChannelGitHub, ghsaID, url, repo, millis(now))
}

// CaseByAdvisory returns the case whose advisory, or whose opening
// report, is ghsaID, or ErrNotFound.
func (s *Store) CaseByAdvisory(ctx context.Context, ghsaID string) (*Case, error) {
	return scanCase(s.db.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE ghsa_id = $1 OR report_ghsa = $1 ORDER BY ghsa_id = $1 DESC LIMIT 1`, ghsaID))
}

// SetFork records the advisory's temporary private fork.
func (s *Store) SetFork(ctx context.Context, caseID disclosure.CaseID, name, url string, now time.Time) error {
	return s.updateCase(ctx, caseID, `fork_name = $2, fork_url = $3, updated_at = $4`, name, url, millis(now))
}

// ServiceFailing records that a service (GitHub) is failing. It reports
// true only the first time, until ServiceRecovered: the team is told once.
func (s *Store) ServiceFailing(ctx context.Context, service, reason string, now time.Time) (bool, error) {
	var before int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM service_status WHERE service = $1`, service).Scan(&before); err != nil {
		return false, err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO service_status (service, failing_since, last_error) VALUES ($1, $2, $3)
		ON CONFLICT (service) DO UPDATE SET last_error = excluded.last_error`, service, millis(now), reason)
	// Not by comparing times: two failures in one millisecond would both
	// look like the first.
	return before == 0, err
}

// ServiceRecovered records that a service works again; it reports whether
// it had been failing.
func (s *Store) ServiceRecovered(ctx context.Context, service string) (bool, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM service_status WHERE service = $1`, service)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// factColumns are the columns of the facts a case records.
var factColumns = map[disclosure.Fact]string{
	disclosure.FactAffected:       "affected",
	disclosure.FactPatched:        "patched",
	disclosure.FactSeverity:       "severity",
	disclosure.FactSummary:        "public_summary",
	disclosure.FactCredit:         "credit",
	disclosure.FactCVE:            "cve_id",
	disclosure.FactReporterGitHub: "reporter_github",
	disclosure.FactDescription:    "public_description",
}

// SetFact records one fact of a case.
func (s *Store) SetFact(ctx context.Context, caseID disclosure.CaseID, fact disclosure.Fact, value string, now time.Time) error {
	column, ok := factColumns[fact]
	if !ok {
		return fmt.Errorf("unknown case fact %q", fact)
	}
	return s.updateCase(ctx, caseID, column+` = $2, updated_at = $3`, value, millis(now))
}

// CasesSince returns the cases opened at or after t, oldest first.
func (s *Store) CasesSince(ctx context.Context, t time.Time) ([]*Case, error) {
	return s.queryCases(ctx, `WHERE created_at >= $1 ORDER BY created_at, id`, millis(t))
}

// SetSetupAt records when a case's room, advisory and team invites are due.
func (s *Store) SetSetupAt(ctx context.Context, caseID disclosure.CaseID, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE cases SET setup_at = $2 WHERE id = $1`, caseID.String(), millis(at))
	return err
}

// SetupsSince returns the set-up times of the cases set up (or due to be)
// since t.
func (s *Store) SetupsSince(ctx context.Context, t time.Time) ([]time.Time, error) {
	rows, err := s.db.Query(ctx, `SELECT setup_at FROM cases WHERE setup_at IS NOT NULL AND setup_at > $1`, millis(t))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, err
		}
		out = append(out, fromMillis(ms))
	}
	return out, rows.Err()
}
