package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/store"
)

// officeState is what an instance that must not take office leaves alone:
// the leader row, every version row and the fence's triggers.
func officeState(t *testing.T, db *sql.DB) string {
	t.Helper()
	var out strings.Builder
	rows, err := db.Query(`SELECT epoch, instance, since, takeovers, session FROM leader`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var epoch, since, takeovers int64
		var instance, session string
		if err := rows.Scan(&epoch, &instance, &since, &takeovers, &session); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "leader %d %s %d %d %s;", epoch, instance, since, takeovers, session)
	}
	_ = rows.Close()
	for _, table := range []string{store.VersionTable, "crypto_version", "mx_version"} {
		var v, c int
		if err := db.QueryRow(`SELECT version, compat FROM `+table).Scan(&v, &c); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, " %s v%d/v%d;", table, v, c)
	}
	var triggers, tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pg_trigger WHERE tgname = 'secbot_fence'`).Scan(&triggers); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, " %d fences, %d tables", triggers, tables)
	return out.String()
}

// A standby on an older binary stands by like any other; when the newer
// instance's session ends and it would become active on a schema newer
// than it knows (secbot's own, or the crypto store's, which its older
// mautrix would only find out about after taking office and logging in),
// it refuses:
// serve ends with ErrNewerSchema, having made no request to the
// homeserver (no login, no sync, no timers, no outbox) and written
// nothing (the leader row, the versions and the fence as they were).
func TestAStandbyOnAnOlderBinaryRefusesANewerSchema(t *testing.T) {
	for table, known := range map[string]int{
		"crypto_version":   mautrixSchemas["crypto_version"],
		store.VersionTable: -1, // this binary's own migrations
	} {
		t.Run(table, func(t *testing.T) { olderStandbyOnNewer(t, table, known) })
	}
}

func olderStandbyOnNewer(t *testing.T, table string, known int) {
	url := pgtest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	newer := pgConfig(t, url)
	newer.HTTP.Listen = ""
	off, err := becomeActive(ctx, newer, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	// The newer binary migrated the table one step further than this
	// binary knows.
	must(t, upgradeMautrixStores(ctx, off.st.DB))
	if known < 0 {
		if err := off.st.DB.QueryRow(ctx, `SELECT version FROM `+table).Scan(&known); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := off.st.DB.Exec(ctx, `UPDATE `+table+` SET version = $1, compat = $1`, known+1); err != nil {
		t.Fatal(err)
	}

	var requests atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"not in this test"}`)
	}))
	defer hs.Close()
	older := pgConfig(t, url)
	older.Matrix.Homeserver = hs.URL
	var logs logLines
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "", older, zerolog.New(&logs)) }()
	waitFor(t, "the older binary to stand by", func() bool { return logs.count(`"role":"standby"`) == 1 })

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := officeState(t, db)
	off.Close() // the newer instance's session ends: the lock is free
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), table) {
			t.Errorf("serve on a newer schema: %v, want ErrNewerSchema naming %s", err, table)
		}
		t.Logf("refused: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the older binary neither refused nor went on once the lock was free")
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the older binary made %d requests to the homeserver", n)
	}
	if after := officeState(t, db); after != before {
		t.Errorf("the older binary changed the database:\n%s\n%s", before, after)
	}
	if n := logs.count(`"role":"active"`); n != 0 {
		t.Errorf("the older binary logged role=active %d times", n)
	}
}
