package store

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// The upgrade that makes an advisory one case's: where cases share one
// (a retry adopted another case's advisory), it stays with the case its
// report opened, else with the case that recorded it first; the others
// lose it, audited. Then the store refuses a second case for it.
func TestTheUpgradeGivesASharedAdvisoryToOneCase(t *testing.T) {
	s, _ := openTest(t, sqliteDB)
	ctx := context.Background()
	upgrade := upgradeSQL(t, "advisory-per-case")
	// The state before the upgrade: the index was not unique.
	if _, err := s.db.Exec(ctx, `DROP INDEX cases_ghsa_id; CREATE INDEX cases_ghsa_id ON cases (ghsa_id) WHERE ghsa_id <> ''`); err != nil {
		t.Fatal(err)
	}
	var ids []disclosure.CaseID
	if err := s.Tx(ctx, func(ctx context.Context) error {
		for i, who := range []disclosure.Person{"@victim-before:x", "github:mallory", "@victim:x", "@alone:x"} {
			c, err := s.CreateCase(ctx, who, "!r:x", "!r:x", t0.Add(time.Duration(i)*time.Minute))
			if err != nil {
				return err
			}
			ids = append(ids, c.ID)
		}
		// The report of mallory (case 1) is GHSA-X; cases 0 and 2 adopted
		// it; case 3 has its own.
		for _, i := range []int{0, 2} {
			if err := s.SetAdvisory(ctx, ids[i], "GHSA-xxxx-xxxx-xxxx", "u", "enarx/enarx", t0); err != nil {
				return err
			}
		}
		if err := s.SetReport(ctx, ids[1], "GHSA-xxxx-xxxx-xxxx", "u", "enarx/enarx", t0); err != nil {
			return err
		}
		return s.SetAdvisory(ctx, ids[3], "GHSA-yyyy-yyyy-yyyy", "u", "enarx/enarx", t0)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(ctx, upgrade); err != nil {
		t.Fatalf("the upgrade: %v", err)
	}
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
	err := s.Tx(ctx, func(ctx context.Context) error {
		return s.SetAdvisory(ctx, ids[0], "GHSA-yyyy-yyyy-yyyy", "u", "enarx/enarx", t0)
	})
	if err == nil {
		t.Error("a second case recorded an advisory after the upgrade")
	}
}

// upgradeSQL is the body of the upgrade file whose name ends in name.
func upgradeSQL(t *testing.T, name string) string {
	t.Helper()
	files, err := fs.Glob(upgrades, "upgrades/*-"+name+".sql")
	if err != nil || len(files) != 1 {
		t.Fatalf("upgrade %s: %v, %v", name, files, err)
	}
	data, err := fs.ReadFile(upgrades, files[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
