// Package postgres starts throwaway PostgreSQL clusters for tests: initdb
// and pg_ctl from Debian's PostgreSQL 15, run as the postgres user when the
// tests run as root, listening on 127.0.0.1 and a free port, with the data
// and the socket under a temporary directory that is removed at the end.
//
// A missing PostgreSQL fails the test (it never skips): install it with
// `apt-get install -y postgresql`.
package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql
)

// BinDir holds initdb, pg_ctl and postgres; SECBOT_POSTGRES_BIN overrides it.
var BinDir = "/usr/lib/postgresql/15/bin"

func init() {
	if dir := os.Getenv("SECBOT_POSTGRES_BIN"); dir != "" {
		BinDir = dir
	}
}

// Missing says how to get PostgreSQL when initdb is not there.
func Missing() error {
	initdb := filepath.Join(BinDir, "initdb")
	if _, err := os.Stat(initdb); err != nil {
		return fmt.Errorf("PostgreSQL 15 is needed by this test and %s is missing: apt-get install -y postgresql (or set SECBOT_POSTGRES_BIN)", initdb)
	}
	return nil
}

// Cluster is one running PostgreSQL server.
type Cluster struct {
	dir      string
	port     int
	password string
	asUser   string // run the binaries as this user (when running as root)
	n        atomic.Int64
	admin    *sql.DB
	watchdog *exec.Cmd
}

// StartCluster runs initdb and starts the server. The caller stops it.
func StartCluster() (*Cluster, error) {
	if err := Missing(); err != nil {
		return nil, err
	}
	base := ""
	if os.Geteuid() == 0 {
		// The postgres user must reach the directory: TMPDIR may be
		// private to root, /tmp is not.
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "secbot-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	c.password = hex.EncodeToString(pw)
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the cluster belongs to postgres.
		c.asUser = "postgres"
		if err := chownTo(c.asUser, dir, pwfile); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile, "--no-sync"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range 5 {
		c.port, err = freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-k %s -h 127.0.0.1 -p %d -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", dir, c.port)
		out, err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "30", "-o", opts, "start")
		if err == nil {
			lastErr = nil
			break
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	if lastErr != nil {
		_ = os.RemoveAll(dir)
		return nil, lastErr
	}
	c.startWatchdog()
	c.admin, err = sql.Open("pgx", c.URL("postgres"))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("connect to the test cluster: %w", err)
	}
	return c, nil
}

// startWatchdog starts a small shell, in a process group of its own, that
// stops the cluster and removes its files once this process is gone: a
// test binary killed by its timeout (or one without Main in its TestMain)
// leaves no server behind.
func (c *Cluster) startWatchdog() {
	stop := []string{filepath.Join(BinDir, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop"}
	if c.asUser != "" {
		stop = append([]string{"runuser", "-u", c.asUser, "--"}, stop...)
	}
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done; shift; dir="$1"; shift; "$@" >/dev/null 2>&1; rm -rf "$dir"`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh", strconv.Itoa(os.Getpid()), c.dir}, stop...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cmd.Start() == nil {
		c.watchdog = cmd
		go func() { _ = cmd.Wait() }()
	}
}

func (c *Cluster) run(bin string, args ...string) ([]byte, error) {
	path := filepath.Join(BinDir, bin)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is the TCP port the server listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

// Password is the postgres user's password.
func (c *Cluster) Password() string { return c.password }

// URL is the connection URL of database name, with the password in it.
func (c *Cluster) URL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase makes a new empty database and returns its name.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	if _, err := c.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return name, nil
}

// DropDatabase removes a database made by CreateDatabase, closing what is
// still connected to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	_, err := c.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

// Database makes a fresh database for t, dropped when t ends, and returns
// its URL.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	name, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DropDatabase(context.Background(), name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return c.URL(name)
}

// Stop stops the server and removes its files.
func (c *Cluster) Stop() {
	if c.admin != nil {
		_ = c.admin.Close()
	}
	_, _ = c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(c.dir)
	if c.watchdog != nil {
		_ = c.watchdog.Process.Kill()
	}
}

// Start starts a cluster of t's own, stopped when t ends, and returns the
// URL of a fresh database in it.
func Start(t testing.TB) string {
	t.Helper()
	c, err := StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c.Database(t)
}

var shared struct {
	sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the URL of a fresh database (dropped when t ends) in the
// test binary's one shared cluster, started on first use. A test binary
// that uses it stops the cluster with Main (or StopShared) in its TestMain.
func Shared(t testing.TB) string {
	t.Helper()
	c, err := SharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	return c.Database(t)
}

// SharedCluster is the test binary's shared cluster, started on first use.
func SharedCluster() (*Cluster, error) {
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = StartCluster()
	}
	return shared.c, shared.err
}

// StopShared stops the shared cluster if it was started.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
}

// Main runs the tests and then stops the shared cluster:
//
//	func TestMain(m *testing.M) { os.Exit(postgres.Main(m)) }
func Main(m *testing.M) int {
	defer StopShared()
	return m.Run()
}

func chownTo(name string, paths ...string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
