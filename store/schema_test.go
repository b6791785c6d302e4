package store

import (
	"context"
	_ "embed"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

//go:embed upgrades/legacy/v01-initial.sql
var legacyV01 []byte

// legacyUpgrades is the upgrade table secbot had before v00: v01 and then
// every step to the latest revision, as an existing SQLite file was made.
func legacyUpgrades(t *testing.T) dbutil.UpgradeTable { return legacyUpgradesTo(t, 1<<30) }

// legacyUpgradesTo is the legacy upgrade table up to revision upto.
func legacyUpgradesTo(t *testing.T, upto int) dbutil.UpgradeTable {
	t.Helper()
	files := fstest.MapFS{"v01-initial.sql": {Data: legacyV01}}
	entries, err := fs.ReadDir(upgrades, "upgrades")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "v00-") {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(e.Name(), "v%d-", &n); err != nil || n > upto {
			continue
		}
		data, err := fs.ReadFile(upgrades, "upgrades/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = &fstest.MapFile{Data: data}
	}
	return dbutil.BuildUpgradeTable().WithFSPath(files, ".").Finish()
}

// sqliteSchema describes a SQLite database's schema: each table's columns
// (name, declared type, not null, default, primary key), foreign keys and
// indexes, and each index's and trigger's definition.
func sqliteSchema(t *testing.T, db *dbutil.Database) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	rows, err := db.Query(ctx, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master WHERE name <> $1 ORDER BY type, name`, VersionTable)
	if err != nil {
		t.Fatal(err)
	}
	type object struct{ typ, name, table, sql string }
	var objects []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.table, &o.sql); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, o)
	}
	rows.Close()
	space := regexp.MustCompile(`\s+`)
	for _, o := range objects {
		switch o.typ {
		case "table":
			out = append(out, "table "+o.name)
			out = append(out, pragmaRows(t, db, "table_info", o.name)...)
			out = append(out, pragmaRows(t, db, "foreign_key_list", o.name)...)
			// CHECK constraints are only in the table's definition.
			for _, check := range regexp.MustCompile(`CHECK \([^)]*\)`).FindAllString(o.sql, -1) {
				out = append(out, o.name+" "+check)
			}
		case "index", "trigger", "view":
			out = append(out, fmt.Sprintf("%s %s on %s: %s", o.typ, o.name, o.table, space.ReplaceAllString(o.sql, " ")))
		}
	}
	return out
}

func pragmaRows(t *testing.T, db *dbutil.Database, pragma, table string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), fmt.Sprintf(`SELECT * FROM pragma_%s('%s')`, pragma, table))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		line := table + " " + pragma
		for i, c := range cols {
			line += fmt.Sprintf(" %s=%v", c, vals[i])
		}
		out = append(out, line)
	}
	return out
}

// A new SQLite database is made at once by v00; an existing one went
// through v01..v20. Both must be the same database: every column with its
// declared type, default and constraints, every index and its condition.
func TestANewSQLiteDatabaseIsTheUpgradedOne(t *testing.T) {
	ctx := context.Background()
	fresh, _ := openTest(t, sqliteDB)

	path := filepath.Join(t.TempDir(), "old.db")
	if err := prepareFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	old := raw.Child(VersionTable, legacyUpgrades(t), raw.Log)
	if err := old.Upgrade(ctx); err != nil {
		t.Fatalf("the old migrations: %v", err)
	}

	var freshVersion, oldVersion int
	_ = fresh.db.QueryRow(ctx, `SELECT version FROM `+VersionTable).Scan(&freshVersion)
	_ = old.QueryRow(ctx, `SELECT version FROM `+VersionTable).Scan(&oldVersion)
	if freshVersion != oldVersion || freshVersion != len(upgradeTable) {
		t.Errorf("versions: new %d, upgraded %d, latest %d", freshVersion, oldVersion, len(upgradeTable))
	}

	want, got := sqliteSchema(t, old), sqliteSchema(t, fresh.db)
	if len(want) < 50 {
		t.Fatalf("the upgraded schema has only %d lines: %v", len(want), want)
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("the new database lacks: %s", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("the new database has what the upgraded one lacks: %s", l)
		}
	}

	// And an upgraded file opens with today's store, running nothing more.
	_ = raw.Close()
	s, err := Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatalf("open the upgraded file: %v", err)
	}
	defer s.Close()
	if _, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!dm:x", "matrix:!dm:x", t0); err != nil {
		t.Fatal(err)
	}
}

// Both dialects have the same tables with the same columns in the same
// order, nullable alike: the dialect markers of v00 did not drift.
func TestBothDatabasesHaveTheSameTables(t *testing.T) {
	ctx := context.Background()
	lite, _ := openTest(t, sqliteDB)
	pg, _ := openTest(t, postgresDB)
	describe := func(db *dbutil.Database, query string) []string {
		rows, err := db.Query(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var table, column string
			var notNull bool
			if err := rows.Scan(&table, &column, &notNull); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s.%s not null=%v", table, column, notNull))
		}
		return out
	}
	want := describe(lite.db, `SELECT m.name, c.name, c."notnull" OR c.pk > 0 FROM sqlite_master m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid`)
	got := describe(pg.db, `SELECT table_name, column_name, is_nullable = 'NO' FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("SQLite:\n%s\nPostgreSQL:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// sqliteAt makes a SQLite file at an older revision, as a secbot of then
// left it, for a test of the upgrades after it.
func sqliteAt(t *testing.T, revision int) (*dbutil.Database, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	if err := prepareFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	old := raw.Child(VersionTable, legacyUpgradesTo(t, revision), raw.Log)
	if err := old.Upgrade(context.Background()); err != nil {
		t.Fatalf("the migrations to v%d: %v", revision, err)
	}
	return old, path
}
