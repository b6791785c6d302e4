package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
)

// snapshot is what an older binary must leave alone: the tables and the
// version rows.
func snapshot(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	tables, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join(tables, ",")
	for _, table := range tables {
		if strings.HasSuffix(table, "_version") {
			v, c, err := s.schemaVersion(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf(" %s=v%d/v%d", table, v, c)
		}
	}
	return out
}

// A secbot whose migrations end at vN, on a database a newer secbot took
// to vN+1, refuses it with a clear error and changes nothing: dbutil's
// Upgrade refuses (ErrUnsupportedDatabaseVersion), and RefuseNewerSchema,
// which an instance asks before it takes office, says so by only reading,
// for secbot's schema and for mautrix's stores beside it. A newer schema
// that declares itself readable by the older binary (dbutil's "compatible
// with vN+") is not refused: that is what the declaration is for.
func TestAnOlderBinaryRefusesANewerSchema(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		st, _ := openTest(t, db)
		cs, _ := mautrixStores(t, st)
		n := len(upgradeTable)
		// A newer secbot migrated the database one step further.
		st.db.UpgradeTable = newerBinary(func(ctx context.Context, db *dbutil.Database) error {
			_, err := db.Exec(ctx, `CREATE TABLE newer_feature (id INTEGER PRIMARY KEY)`)
			return err
		})
		if err := st.Upgrade(ctx); err != nil {
			t.Fatalf("the newer binary's migration: %v", err)
		}
		st.db.UpgradeTable = upgradeTable // this binary again
		before := snapshot(t, st)
		if !strings.Contains(before, "newer_feature") {
			t.Fatalf("the newer schema: %s", before)
		}

		err := st.RefuseNewerSchema(ctx, nil)
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("RefuseNewerSchema: %v, want ErrNewerSchema", err)
		}
		for _, want := range []string{VersionTable, "newer", fmt.Sprintf("knows up to v%d", n), fmt.Sprintf("at v%d", n+1)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not say %q", err, want)
			}
		}
		if err := st.Upgrade(ctx); !errors.Is(err, dbutil.ErrUnsupportedDatabaseVersion) {
			t.Errorf("this binary's migrations on the newer schema: %v, want ErrUnsupportedDatabaseVersion", err)
		}
		if after := snapshot(t, st); after != before {
			t.Errorf("the refusals changed the database:\n%s\n%s", before, after)
		}

		// Declared readable by v(n): run on, as dbutil does.
		if _, err := st.db.Exec(ctx, `UPDATE `+VersionTable+` SET compat = $1`, n); err != nil {
			t.Fatal(err)
		}
		if err := st.RefuseNewerSchema(ctx, nil); err != nil {
			t.Errorf("a newer schema readable by this binary: %v", err)
		}
		if err := st.Upgrade(ctx); err != nil {
			t.Errorf("dbutil on a newer schema readable by this binary: %v", err)
		}

		// mautrix's crypto store at a version this binary's mautrix lacks.
		cryptoKnown := len(cs.DB.UpgradeTable)
		// A version table not made yet is no objection (a new database).
		if err := st.RefuseNewerSchema(ctx, map[string]int{"crypto_version": cryptoKnown, "nothing_version": 1}); err != nil {
			t.Fatalf("mautrix's stores at this binary's versions: %v", err)
		}
		if tables, _ := st.Tables(ctx); slices.Contains(tables, "nothing_version") {
			t.Error("RefuseNewerSchema made a version table")
		}
		if _, err := st.db.Exec(ctx, `UPDATE crypto_version SET version = $1, compat = $1`, cryptoKnown+1); err != nil {
			t.Fatal(err)
		}
		before = snapshot(t, st)
		err = st.RefuseNewerSchema(ctx, map[string]int{"crypto_version": cryptoKnown})
		if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "crypto_version") {
			t.Errorf("a newer crypto store: %v, want ErrNewerSchema naming crypto_version", err)
		}
		if after := snapshot(t, st); after != before {
			t.Errorf("the refusal changed the database:\n%s\n%s", before, after)
		}
	})
}
