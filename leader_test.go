package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/config"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/metrics"
	"github.com/enarx/secbot/store"
)

// pgConfig is a config on the PostgreSQL database at dbURL (its password
// from a file), serving /healthz on a free port.
func pgConfig(t *testing.T, dbURL string) *config.Config {
	t.Helper()
	i := strings.Index(dbURL, "://") + 3
	at := strings.Index(dbURL, "@")
	userPass := dbURL[i:at]
	colon := strings.Index(userPass, ":")
	bare := dbURL[:i] + userPass[:colon] + dbURL[at:]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte(userPass[colon+1:]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return parsePGConfig(t, dir, bare, filepath.Join(dir, "db-password"), `[http]
listen = "`+addr+`"
`)
}

// parsePGConfig parses, in dir, the config of a bot of a two-member team
// on the PostgreSQL database at bareURL (no password in it), its password
// in passwordFile; more is TOML of further tables, after [database].
func parsePGConfig(t *testing.T, dir, bareURL, passwordFile, more string) *config.Config {
	t.Helper()
	toml := `[matrix]
homeserver = "https://matrix.example.org"
user_id = "@secbot:example.org"
[database]
url = "` + bareURL + `"
password_file = "` + passwordFile + `"
` + more + `[team]
room = "!team:example.org"
members = ["@alice:example.org", "@bob:example.org"]
coordinator = "@alice:example.org"
backup = "@bob:example.org"
`
	cfg, err := config.Parse([]byte(toml), dir, func(k string) string {
		return map[string]string{config.EnvMatrixPassword: "matrix-password", config.EnvMatrixPickleKey: "pickle-key-0123456789"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logLines is a log that can be searched.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), text)
}

func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitFor polls a condition on a server's state until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type healthy struct{}

func (healthy) Healthy() bool       { return true }
func (healthy) LastSync() time.Time { return time.Now() }

// Two instances start at once on a new PostgreSQL database: one becomes
// active (it alone runs the migrations, role=active epoch=1); the other
// stands by (role=standby, /healthz 200 "standby", secbot_active 0) and
// touches nothing until the first one's session ends; then it takes
// office with epoch 2 and finds nothing left to migrate.
func TestTwoInstancesStartingAtOnceOneMigratesTheOtherStandsBy(t *testing.T) {
	url := pgtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfgs := []*config.Config{pgConfig(t, url), pgConfig(t, url)}
	logs := []*logLines{{}, {}}
	type result struct {
		i   int
		off *office
		err error
	}
	results := make(chan result, 2)
	for i := range 2 {
		go func() {
			off, err := becomeActive(ctx, cfgs[i], zerolog.New(logs[i]))
			results <- result{i, off, err}
		}()
	}
	first := <-results
	if first.err != nil {
		t.Fatal(first.err)
	}
	defer first.off.Close()
	standby := 1 - first.i
	active, passive := cfgs[first.i].HTTP.Listen, cfgs[standby].HTTP.Listen
	waitFor(t, "the second instance to stand by", func() bool { return logs[standby].count(`"role":"standby"`) == 1 })
	if code, body := httpGet(t, passive, "/healthz"); code != 200 || !strings.Contains(body, "standby") {
		t.Errorf("the standby's /healthz: %d %q", code, body)
	}
	if _, body := httpGet(t, passive, "/metrics"); !strings.Contains(body, "secbot_active 0") {
		t.Errorf("the standby's /metrics:\n%s", body)
	}
	if n := logs[first.i].count("Upgrading database"); n == 0 {
		t.Error("the active instance logged no migration")
	}
	if n := logs[first.i].count(`"role":"active","epoch":1`); n != 1 {
		t.Errorf("the active instance logged role=active epoch=1 %d times", n)
	}
	if n := logs[standby].count("Upgrading database"); n != 0 {
		t.Errorf("the standby ran %d migrations", n)
	}
	select {
	case r := <-results:
		t.Fatalf("the second instance became active beside the first: %v", r.err)
	default:
	}
	// Elected and migrated, still starting (not yet synced): 503.
	if code, body := httpGet(t, active, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "role=active epoch=1") {
		t.Errorf("the starting active instance's /healthz: %d %q", code, body)
	}
	first.off.serveHTTP(func(o metrics.Office) http.Handler {
		return metrics.ActiveHandler(first.off.st, healthy{}, nil, time.Now, zerolog.Nop(), o)
	})
	if code, body := httpGet(t, active, "/healthz"); code != 200 || !strings.Contains(body, "ok (role=active epoch=1)") {
		t.Errorf("the active instance's /healthz: %d %q", code, body)
	}
	if _, body := httpGet(t, active, "/metrics"); !strings.Contains(body, "secbot_active 1") || !strings.Contains(body, "secbot_epoch 1") {
		t.Errorf("the active instance's /metrics:\n%s", body)
	}

	first.off.Close() // its session ends: the lock is free
	var second result
	select {
	case second = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not take over")
	}
	if second.err != nil {
		t.Fatal(second.err)
	}
	defer second.off.Close()
	if n := logs[standby].count(`"role":"active","epoch":2`); n != 1 {
		t.Errorf("the new active instance logged role=active epoch=2 %d times", n)
	}
	if n := logs[standby].count("Upgrading database"); n != 0 {
		t.Errorf("the second instance ran %d migrations on a migrated database", n)
	}
	if _, body := httpGet(t, passive, "/metrics"); !strings.Contains(body, "secbot_takeovers_total 1") || !strings.Contains(body, "secbot_epoch 2") {
		t.Errorf("after the takeover, /metrics:\n%s", body)
	}
}

// An active instance whose lock session ends (here killed on the server)
// finds out within its next check: its context ends with the *LostError,
// every write is refused, and the process exits after the grace.
func TestAnActiveInstanceThatLosesItsLockStops(t *testing.T) {
	url := pgtest.Shared(t)
	exited := make(chan int, 1)
	defer func(g time.Duration, e func(int)) { exitGrace, exitNow = g, e }(exitGrace, exitNow)
	exitGrace, exitNow = 50*time.Millisecond, func(code int) { exited <- code }
	cfg := pgConfig(t, url)
	cfg.HTTP.Listen = ""
	off, err := becomeActive(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	var killed bool
	if err := off.st.DB.RawDB.QueryRow(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid::text::bigint = $1`,
		store.LockKey).Scan(&killed); err != nil || !killed {
		t.Fatalf("kill the lock session: %v %v", killed, err)
	}
	select {
	case <-off.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the instance went on after losing its lock")
	}
	var lost *store.LostError
	if !errors.As(context.Cause(off.ctx), &lost) || !errors.As(off.result(nil), &lost) {
		t.Errorf("cause %v, result %v; want the *LostError", context.Cause(off.ctx), off.result(nil))
	}
	if err := off.st.Tx(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, store.ErrFenced) {
		t.Errorf("a write after the loss: %v, want ErrFenced", err)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Error("the process did not exit after the grace")
	}
}

// A standby touches nothing: while another session holds the lock, serve
// answers /healthz as a standby and makes no request to the homeserver and
// no table in the database (no migrations, no crypto store). Once the
// lock is free it migrates and only then goes to the homeserver (which
// here refuses it: serve ends there).
func TestAStandbyTouchesNothingUntilItIsActive(t *testing.T) {
	url := pgtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var requests atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"not in this test"}`)
	}))
	defer hs.Close()
	cfg := pgConfig(t, url)
	cfg.Matrix.Homeserver = hs.URL

	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, store.LockKey); err != nil {
		t.Fatal(err)
	}
	tables := func() int {
		var n int
		if err := other.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var logs logLines
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "", cfg, zerolog.New(&logs)) }()
	waitFor(t, "the standby's /healthz", func() bool {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(body), "standby")
	})
	if n := requests.Load(); n != 0 {
		t.Errorf("the standby made %d requests to the homeserver", n)
	}
	if n := tables(); n != 0 {
		t.Errorf("the standby made %d tables", n)
	}

	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, store.LockKey); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("serve ended without an error on a homeserver that refuses it")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not go on once the lock was free")
	}
	if requests.Load() == 0 {
		t.Error("the active instance never went to the homeserver")
	}
	if tables() == 0 {
		t.Error("the active instance did not migrate")
	}
	if n := logs.count(`"role":"active","epoch":1`); n != 1 {
		t.Errorf("logged role=active epoch=1 %d times", n)
	}
}
