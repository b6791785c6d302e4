package postgres

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestSharedClusterGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Shared(t), Shared(t)
	if a == b {
		t.Fatalf("two databases share a URL: %s", a)
	}
	da, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if _, err := da.ExecContext(ctx, `CREATE TABLE x (v BIGINT)`); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'x'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table made in one test database is seen in another")
	}
	var fsync string
	if err := db.QueryRowContext(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q, %v; want off", fsync, err)
	}
}

func TestStartStopsAndRemovesItsCluster(t *testing.T) {
	var dir string
	var port int
	t.Run("cluster", func(t *testing.T) {
		c, err := StartCluster()
		if err != nil {
			t.Fatal(err)
		}
		dir, port = c.dir, c.port
		t.Cleanup(c.Stop)
		db, err := sql.Open("pgx", c.Database(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the cluster's files are still there: %v", err)
	}
	c := &Cluster{port: port}
	db, _ := sql.Open("pgx", c.URL("postgres"))
	defer db.Close()
	if err := db.Ping(); err == nil {
		t.Error("the cluster still answers after Stop")
	}
}

func TestMissingPostgresFails(t *testing.T) {
	old := BinDir
	BinDir = filepath.Join(t.TempDir(), "nothing")
	defer func() { BinDir = old }()
	err := Missing()
	if err == nil {
		t.Fatal("no error for a missing PostgreSQL")
	}
	if _, err := StartCluster(); err == nil {
		t.Fatal("StartCluster without PostgreSQL succeeded")
	}
	if want := "apt-get install -y postgresql"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
