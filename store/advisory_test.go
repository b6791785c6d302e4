package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
)

// The upgrade that makes an advisory one case's: where cases share one
// (a retry adopted another case's advisory), it stays with the case its
// report opened, else with the case that recorded it first; the others
// lose it, audited. Then the store refuses a second case for it.
func TestTheUpgradeGivesASharedAdvisoryToOneCase(t *testing.T) {
	ctx := context.Background()
	// A file as secbot left it at v15, where the index was not unique.
	old, path := sqliteAt(t, 15)
	// The report of mallory (case 1) is GHSA-X; cases 0 and 2 adopted
	// it; case 3 has its own.
	rows := []struct {
		reporter, ghsa, report string
	}{{"matrix:@victim-before:x", "GHSA-xxxx-xxxx-xxxx", ""}, {"github:mallory", "GHSA-xxxx-xxxx-xxxx", "GHSA-xxxx-xxxx-xxxx"}, {"matrix:@victim:x", "GHSA-xxxx-xxxx-xxxx", ""}, {"matrix:@alone:x", "GHSA-yyyy-yyyy-yyyy", ""}}
	var ids []disclosure.CaseID
	for i, r := range rows {
		id := disclosure.CaseID{Year: 2026, Seq: i + 1}
		ids = append(ids, id)
		report := sql.NullString{String: r.report, Valid: r.report != ""}
		channel := map[bool]string{true: "github", false: "matrix"}[r.report != ""]
		if _, err := old.Exec(ctx, `INSERT INTO cases (id, reporter, source_room, dm_room, stage, created_at, updated_at, ghsa_id, ghsa_url, ghsa_repo, report_ghsa, channel)
			VALUES ($1, $2, '!r:x', '!r:x', 'received', $3, $3, $4, 'u', 'enarx/enarx', $5, $6)`, id.String(), r.reporter, millis(t0.Add(time.Duration(i)*time.Minute)), r.ghsa, report, channel); err != nil {
			t.Fatal(err)
		}
	}
	// The upgrades (v16 and after), as the next start makes them.
	s, err := Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	want := []string{"", "GHSA-xxxx-xxxx-xxxx", "", "GHSA-yyyy-yyyy-yyyy"}
	for i, id := range ids {
		c, err := s.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.GHSAID != want[i] {
			t.Errorf("case %d (%s) has advisory %q, want %q", i, id, c.GHSAID, want[i])
		}
		entries, _ := s.AuditOf(ctx, id.String())
		unshared := len(entries) > 0 && entries[len(entries)-1].Action == "advisory.unshared"
		if unshared != (want[i] == "") {
			t.Errorf("case %d: audited %v", i, entries)
		}
	}
	err = s.Tx(ctx, func(ctx context.Context) error {
		return s.SetAdvisory(ctx, ids[0], "GHSA-yyyy-yyyy-yyyy", "u", "enarx/enarx", t0)
	})
	if err == nil {
		t.Error("a second case recorded an advisory after the upgrade")
	}
}
