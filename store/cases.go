package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"

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
	// RoomUnusable is true once the case's room proved unusable for good
	// (a server that encrypts it against bots): the reporter is answered
	// in their direct chat instead.
	RoomUnusable bool
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// caseColumns and caseFrom read a case with its rooms (each named with its
// platform) and its advisory, which have tables of their own.
const caseColumns = `c.id, c.reporter,
	COALESCE(src.platform || ':' || src.room_id, ''), COALESCE(dm.platform || ':' || dm.room_id, ''), COALESCE(cr.platform || ':' || cr.room_id, ''),
	c.stage, c.handler, c.created_at, c.updated_at, c.closed_at,
	COALESCE(a.ghsa_id, ''), COALESCE(a.ghsa_url, ''), COALESCE(a.fork_name, ''), COALESCE(a.fork_url, ''),
	c.affected, c.patched, c.severity, c.public_summary, c.credit, c.cve_id, c.reporter_github, c.public_description, c.channel,
	COALESCE(a.report_ghsa, ''), COALESCE(a.repository, ''),
	EXISTS (SELECT 1 FROM case_rooms u WHERE u.case_id = c.id AND u.role = 'unusable')`

const caseFrom = ` FROM cases c
	LEFT JOIN case_rooms src ON src.case_id = c.id AND src.role = 'source'
	LEFT JOIN case_rooms dm ON dm.case_id = c.id AND dm.role = 'dm'
	LEFT JOIN case_rooms cr ON cr.case_id = c.id AND cr.role = 'case'
	LEFT JOIN advisories a ON a.case_id = c.id `

// Scan reads a case as caseColumns select it (dbutil.DataStruct).
func (c *Case) Scan(row dbutil.Scannable) (*Case, error) {
	var rawID string
	var created, updated int64
	var closed sql.NullInt64
	err := row.Scan(&rawID, &c.Reporter, &c.SourceRoom, &c.DMRoom, &c.CaseRoom, &c.Stage, &c.Handler, &created, &updated, &closed, &c.GHSAID, &c.GHSAURL, &c.ForkName, &c.ForkURL, &c.Affected, &c.Patched, &c.Severity, &c.PublicSummary, &c.Credit, &c.CVEID, &c.ReporterGitHub, &c.PublicDescription, &c.Channel, &c.ReportGHSA, &c.GHSARepo, &c.RoomUnusable)
	if err != nil {
		return nil, err
	}
	if c.ID, err = disclosure.ParseCaseID(rawID); err != nil {
		return nil, fmt.Errorf("stored case ID %q: %w", rawID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.ClosedAt = fromMillis(created), fromMillis(updated), nullMillis(closed)
	return c, nil
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
		Channel:    disclosure.ChannelChat,
		CreatedAt:  now.UTC().Truncate(time.Millisecond),
		UpdatedAt:  now.UTC().Truncate(time.Millisecond),
	}
	_, err = s.db.Exec(ctx, `
		INSERT INTO cases (id, reporter, stage, created_at, updated_at, channel)
		VALUES ($1, $2, $3, $4, $4, $5)`,
		c.ID.String(), reporter, c.Stage, millis(now), disclosure.ChannelChat)
	if err != nil {
		return nil, fmt.Errorf("insert case %s: %w", c.ID, err)
	}
	if err := s.setCaseRoom(ctx, c.ID, roleSource, sourceRoom); err != nil {
		return nil, err
	}
	if err := s.setCaseRoom(ctx, c.ID, roleDM, dmRoom); err != nil {
		return nil, err
	}
	if disclosure.RoomPlatform(sourceRoom) == "" {
		c.SourceRoom = "" // no chat room: the mailbox, GitHub
	}
	return c, nil
}

// Case returns the case with the given ID.
func (s *Store) Case(ctx context.Context, caseID disclosure.CaseID) (*Case, error) {
	return found(s.cases.QueryOne(ctx, `SELECT `+caseColumns+caseFrom+`WHERE c.id = $1`, caseID.String()))
}

// OpenCaseOf returns the reporter's open case, or ErrNotFound.
func (s *Store) OpenCaseOf(ctx context.Context, reporter disclosure.Person) (*Case, error) {
	return found(s.cases.QueryOne(ctx, `SELECT `+caseColumns+caseFrom+`WHERE c.reporter = $1 AND c.stage <> 'closed'`, reporter))
}

// CaseByRoom returns the case whose private room is room, or ErrNotFound.
func (s *Store) CaseByRoom(ctx context.Context, room string) (*Case, error) {
	platform, native := disclosure.Split(room)
	if platform == "" {
		return nil, ErrNotFound
	}
	return found(s.cases.QueryOne(ctx, `SELECT `+caseColumns+caseFrom+`WHERE cr.platform = $1 AND cr.room_id = $2`, platform, native))
}

// OpenCases returns every case not yet closed, oldest first.
func (s *Store) OpenCases(ctx context.Context) ([]*Case, error) {
	return s.queryCases(ctx, `WHERE c.stage <> 'closed' ORDER BY c.created_at, c.id`)
}

func (s *Store) queryCases(ctx context.Context, where string, args ...any) ([]*Case, error) {
	return s.cases.QueryMany(ctx, `SELECT `+caseColumns+caseFrom+where, args...)
}

// The roles of a case's rooms.
const (
	roleSource = "source" // where the case was asked for
	roleDM     = "dm"     // the direct chat its reporter is answered in
	roleCase   = "case"   // its private room
)

// setCaseRoom records one of a case's rooms ("" or a name without a
// platform: none).
func (s *Store) setCaseRoom(ctx context.Context, caseID disclosure.CaseID, role, room string) error {
	platform, native := disclosure.Split(room)
	switch {
	case room == "":
		return nil
	case platform == "" && role == roleSource:
		return nil // asked for elsewhere than in a chat (the mailbox)
	case platform == "":
		return fmt.Errorf("the %s room of %s, %q, names no platform", role, caseID, room)
	}
	_, err := s.db.Exec(ctx, `INSERT INTO case_rooms (case_id, role, platform, room_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (case_id, role) DO UPDATE SET platform = excluded.platform, room_id = excluded.room_id`, caseID.String(), role, platform, native)
	if err != nil {
		return fmt.Errorf("record the %s room of %s: %w", role, caseID, err)
	}
	return nil
}

// SetCaseRoom records the private room created for a case.
func (s *Store) SetCaseRoom(ctx context.Context, caseID disclosure.CaseID, room string, now time.Time) error {
	if err := s.touchCase(ctx, caseID, now); err != nil {
		return err
	}
	return s.setCaseRoom(ctx, caseID, roleCase, room)
}

// SetDMRoom records the direct-message room a case's reporter is answered in.
func (s *Store) SetDMRoom(ctx context.Context, caseID disclosure.CaseID, room string, now time.Time) error {
	if err := s.touchCase(ctx, caseID, now); err != nil {
		return err
	}
	return s.setCaseRoom(ctx, caseID, roleDM, room)
}

// MarkRoomUnusable records that a case's room is unusable for good; it
// reports whether this is news.
func (s *Store) MarkRoomUnusable(ctx context.Context, caseID disclosure.CaseID, now time.Time) (bool, error) {
	if err := s.touchCase(ctx, caseID, now); err != nil {
		return false, err
	}
	res, err := s.db.Exec(ctx, `INSERT INTO case_rooms (case_id, role, platform, room_id) VALUES ($1, 'unusable', '', '') ON CONFLICT (case_id, role) DO NOTHING`, caseID.String())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// touchCase marks a case updated (ErrNotFound: there is no such case).
func (s *Store) touchCase(ctx context.Context, caseID disclosure.CaseID, now time.Time) error {
	return s.updateCase(ctx, caseID, `updated_at = $2`, millis(now))
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

// DMRoom returns the bot's direct-message room with user (on user's
// platform), or ErrNotFound.
func (s *Store) DMRoom(ctx context.Context, user disclosure.Person) (string, error) {
	platform, native := disclosure.Split(string(user))
	roomID, ok, err := scalar[string](ctx, s.db, `SELECT room_id FROM chat_dms WHERE platform = $1 AND user_id = $2`, platform, native)
	if err == nil && (!ok || platform == "") {
		return "", ErrNotFound
	}
	return disclosure.On(platform, roomID), err
}

// SetDMRoomOf records room as the bot's direct-message room with user;
// both are on one platform.
func (s *Store) SetDMRoomOf(ctx context.Context, user disclosure.Person, room string, now time.Time) error {
	platform, native := disclosure.Split(string(user))
	roomPlatform, roomID := disclosure.Split(room)
	if platform == "" || roomPlatform != platform {
		return fmt.Errorf("a direct chat with %q in %q: not one platform's", user, room)
	}
	_, err := s.db.Exec(ctx, `
		INSERT INTO chat_dms (platform, user_id, room_id, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, user_id) DO UPDATE SET room_id = excluded.room_id`, platform, native, roomID, millis(now))
	return err
}

// ForgetDMRoom drops room as user's direct chat (it is not one any more);
// the next message to them opens a new one.
func (s *Store) ForgetDMRoom(ctx context.Context, user disclosure.Person, room string) error {
	platform, native := disclosure.Split(string(user))
	_, roomID := disclosure.Split(room)
	_, err := s.db.Exec(ctx, `DELETE FROM chat_dms WHERE platform = $1 AND user_id = $2 AND room_id = $3`, platform, native, roomID)
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
	if err := s.touchCase(ctx, caseID, now); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO advisories (case_id, ghsa_id, ghsa_url, repository) VALUES ($1, $2, $3, $4)
		ON CONFLICT (case_id) DO UPDATE SET ghsa_id = excluded.ghsa_id, ghsa_url = excluded.ghsa_url, repository = excluded.repository`,
		caseID.String(), ghsaID, url, repo)
	return err
}

// SetChannel records the channel a new case came through.
func (s *Store) SetChannel(ctx context.Context, caseID disclosure.CaseID, ch disclosure.Channel) error {
	return s.updateCase(ctx, caseID, `channel = $2`, ch)
}

// SetReport marks a new case as opened by a GitHub private vulnerability
// report, which is its advisory. A second case for the same report is
// refused by the unique index.
func (s *Store) SetReport(ctx context.Context, caseID disclosure.CaseID, ghsaID, url, repo string, now time.Time) error {
	if err := s.updateCase(ctx, caseID, `channel = $2, updated_at = $3`, disclosure.ChannelGitHub, millis(now)); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO advisories (case_id, ghsa_id, ghsa_url, repository, report_ghsa) VALUES ($1, $2, $3, $4, $2)
		ON CONFLICT (case_id) DO UPDATE SET ghsa_id = excluded.ghsa_id, ghsa_url = excluded.ghsa_url, repository = excluded.repository, report_ghsa = excluded.report_ghsa`,
		caseID.String(), ghsaID, url, repo)
	return err
}

// CaseByAdvisory returns the case whose advisory, or whose opening
// report, is ghsaID, or ErrNotFound.
func (s *Store) CaseByAdvisory(ctx context.Context, ghsaID string) (*Case, error) {
	return found(s.cases.QueryOne(ctx, `SELECT `+caseColumns+caseFrom+`WHERE a.ghsa_id = $1 OR a.report_ghsa = $1 ORDER BY a.ghsa_id = $1 DESC LIMIT 1`, ghsaID))
}

// SetFork records the advisory's temporary private fork.
func (s *Store) SetFork(ctx context.Context, caseID disclosure.CaseID, name, url string, now time.Time) error {
	if err := s.touchCase(ctx, caseID, now); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO advisories (case_id, fork_name, fork_url) VALUES ($1, $2, $3)
		ON CONFLICT (case_id) DO UPDATE SET fork_name = excluded.fork_name, fork_url = excluded.fork_url`, caseID.String(), name, url)
	return err
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
	return s.queryCases(ctx, `WHERE c.created_at >= $1 ORDER BY c.created_at, c.id`, millis(t))
}

// SetSetupAt records when a case's room, advisory and team invites are due.
func (s *Store) SetSetupAt(ctx context.Context, caseID disclosure.CaseID, at time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE cases SET setup_at = $2 WHERE id = $1`, caseID.String(), millis(at))
	return err
}

// SetupsSince returns the set-up times of the cases set up (or due to be)
// since t.
func (s *Store) SetupsSince(ctx context.Context, t time.Time) ([]time.Time, error) {
	ms, err := column[int64](s.db.Query(ctx, `SELECT setup_at FROM cases WHERE setup_at IS NOT NULL AND setup_at > $1`, millis(t)))
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, m := range ms {
		out = append(out, fromMillis(m))
	}
	return out, nil
}
