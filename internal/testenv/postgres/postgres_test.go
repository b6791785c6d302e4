package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// A test binary that ends without stopping its cluster (killed by its
// timeout, or without Main) leaves no server behind.
func TestAClusterStopsWhenItsProcessIsGone(t *testing.T) {
	if os.Getenv("SECBOT_PG_CHILD") == "1" {
		c, err := StartCluster()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cluster %s %d\n", c.dir, c.port)
		os.Exit(0) // no Stop
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestAClusterStopsWhenItsProcessIsGone$")
	cmd.Env = append(os.Environ(), "SECBOT_PG_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child: %v\n%s", err, out)
	}
	var dir string
	var port int
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(line, "cluster %s %d", &dir, &port); err == nil {
			break
		}
	}
	if dir == "" {
		t.Fatalf("the child said:\n%s", out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		conn, dialErr := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if dialErr == nil {
			_ = conn.Close()
		}
		if os.IsNotExist(statErr) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after its process ended the cluster is still there (files: %v, listening: %v)", statErr, dialErr == nil)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
