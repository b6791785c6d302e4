package store

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
)

// An installation from before platforms had names (v20, Matrix only)
// reads, after the upgrade, with every Matrix person and room naming its
// platform: its cases, their rooms and advisories, its direct chats, the
// pins, the audit log and the lanes of what is still to be sent.
func TestAnUpgradedInstallationNamesMatrixAsThePlatform(t *testing.T) {
	ctx := context.Background()
	old, path := sqliteAt(t, 20)
	for _, q := range []string{
		`INSERT INTO cases (id, reporter, source_room, dm_room, case_room, stage, handler, created_at, updated_at, ghsa_id, ghsa_url, ghsa_repo, fork_name, channel)
			VALUES ('SR-2026-0001', '@reporter:x', '!public:x', '!dm:x', '!case:x', 'triaged', '@alice:x', 1, 1, 'GHSA-aaaa-bbbb-cccc', 'https://gh/a', 'enarx/enarx', 'fork', 'matrix')`,
		`INSERT INTO cases (id, reporter, source_room, stage, created_at, updated_at, channel) VALUES ('SR-2026-0002', 'mailto:r@example.org', 'email', 'received', 2, 2, 'email')`,
		`INSERT INTO cases (id, reporter, source_room, stage, created_at, updated_at, channel, ghsa_id, report_ghsa) VALUES ('SR-2026-0003', 'github:mallory', '', 'received', 3, 3, 'github', 'GHSA-dddd-eeee-ffff', 'GHSA-dddd-eeee-ffff')`,
		`INSERT INTO dm_rooms (user_id, room_id, created_at) VALUES ('@reporter:x', '!dm:x', 1)`,
		`INSERT INTO audit_log (at, actor, case_id, action) VALUES (1, '@alice:x', 'SR-2026-0001', 'assign'), (2, 'mailto:r@example.org', 'SR-2026-0002', 'email')`,
		`INSERT INTO team_identities (user_id, master_key, pinned_at, pinned_by) VALUES ('@alice:x', 'KEY', 1, '@secbot:x')`,
		`INSERT INTO need_to_know (case_id, user_id, added_by, added_at) VALUES ('SR-2026-0001', '@vendor:x', '@alice:x', 1)`,
		`INSERT INTO room_commands (room_id, sent_at) VALUES ('!team:x', 5)`,
		`INSERT INTO outbox (lane, kind, payload, next_attempt_at, created_at) VALUES ('room:!team:x', 'matrix.send', '{}', 1, 1), ('SR-2026-0001', 'matrix.send', '{}', 1, 1), ('announce:SR-2026-0001:#news:x', 'matrix.send', '{}', 1, 1)`,
	} {
		if _, err := old.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	c, err := s.CaseByRoom(ctx, "matrix:!case:x")
	if err != nil {
		t.Fatal(err)
	}
	want := Case{ID: c.ID, Reporter: "matrix:@reporter:x", SourceRoom: "matrix:!public:x", DMRoom: "matrix:!dm:x", CaseRoom: "matrix:!case:x", Handler: "matrix:@alice:x",
		GHSAID: "GHSA-aaaa-bbbb-cccc", GHSAURL: "https://gh/a", GHSARepo: "enarx/enarx", ForkName: "fork", Channel: disclosure.ChannelChat}
	got := Case{ID: c.ID, Reporter: c.Reporter, SourceRoom: c.SourceRoom, DMRoom: c.DMRoom, CaseRoom: c.CaseRoom, Handler: c.Handler,
		GHSAID: c.GHSAID, GHSAURL: c.GHSAURL, GHSARepo: c.GHSARepo, ForkName: c.ForkName, Channel: c.Channel}
	if got != want {
		t.Errorf("the chat case reads\n%+v, want\n%+v", got, want)
	}
	if email, err := s.Case(ctx, disclosure.CaseID{Year: 2026, Seq: 2}); err != nil || email.Reporter != "mailto:r@example.org" || email.Channel != disclosure.ChannelEmail || email.SourceRoom != "" {
		t.Errorf("the email case reads %+v, %v", email, err)
	}
	if report, err := s.CaseByAdvisory(ctx, "GHSA-dddd-eeee-ffff"); err != nil || report.ReportGHSA != "GHSA-dddd-eeee-ffff" || report.Reporter != "github:mallory" {
		t.Errorf("the GitHub case reads %+v, %v", report, err)
	}
	if dm, err := s.DMRoom(ctx, "matrix:@reporter:x"); err != nil || dm != "matrix:!dm:x" {
		t.Errorf("the reporter's direct chat: %q, %v", dm, err)
	}
	if caseID, dm, known, err := s.RoomUse(ctx, "matrix:!dm:x"); err != nil || caseID != "SR-2026-0001" || !dm || !known {
		t.Errorf("RoomUse of the direct chat: %q %v %v %v", caseID, dm, known, err)
	}
	entries, err := s.AuditOf(ctx, "SR-2026-0001")
	if err != nil || len(entries) != 1 || entries[0].Actor != "matrix:@alice:x" {
		t.Errorf("the audit log: %+v, %v", entries, err)
	}
	if email, _ := s.AuditOf(ctx, "SR-2026-0002"); len(email) != 1 || email[0].Actor != "mailto:r@example.org" {
		t.Errorf("an email actor changed: %+v", email)
	}
	if pin, err := s.IdentityOf(ctx, "matrix:@alice:x"); err != nil || pin.MasterKey != "KEY" || pin.PinnedBy != "matrix:@secbot:x" {
		t.Errorf("the pin: %+v, %v", pin, err)
	}
	if ntk, err := s.NeedToKnow(ctx, c.ID); err != nil || len(ntk) != 1 || ntk[0].Who != "matrix:@vendor:x" {
		t.Errorf("need to know: %+v, %v", ntk, err)
	}
	if at, err := s.LastCommandSent(ctx, "matrix:!team:x"); err != nil || at.IsZero() {
		t.Errorf("the team room's last command: %v, %v", at, err)
	}
	var lanes []string
	rows, err := s.db.Query(ctx, `SELECT lane FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var lane string
		_ = rows.Scan(&lane)
		lanes = append(lanes, lane)
	}
	_ = rows.Close()
	if len(lanes) != 3 || lanes[0] != RoomLane("matrix:!team:x") || lanes[1] != "SR-2026-0001" || lanes[2] != AnnounceLane(c.ID, "matrix:#news:x") {
		t.Errorf("the pending lanes: %v", lanes)
	}
}
