package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/enarx/secbot/config"
	"github.com/enarx/secbot/disclosure"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/store"
)

// copy-db moves a SQLite installation into an empty PostgreSQL database:
// every table's rows (flags and times included), the olm account and the
// room state, with the IDs' sequences past the copied ones, so that the
// store opened there reads as the file did and goes on. A database that is
// not empty is refused.
func TestCopyDBMovesAnInstallationToPostgres(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 18, 30, 0, 0, time.UTC)
	pickle := []byte("pickle-key-0123456789")
	room := id.RoomID("matrix:!case:example.org")

	// A SQLite store as a running bot leaves it.
	path := filepath.Join(t.TempDir(), "secbot.db")
	src, err := store.Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.CreateCase(ctx, "matrix:@reporter:example.org", "matrix:!dm:example.org", "matrix:!dm:example.org", t0)
	if err != nil {
		t.Fatal(err)
	}
	d := store.Deadline{CaseID: c.ID, Kind: disclosure.DeadlineAcknowledge, StartedAt: t0, DueAt: t0.Add(48 * time.Hour), RemindAt: t0.Add(36 * time.Hour), NextAt: t0.Add(36 * time.Hour)}
	must(t, src.SetDeadline(ctx, d))
	first, err := src.Deadline(ctx, c.ID, d.Kind)
	must(t, err)
	if _, err := src.AdvanceDeadline(ctx, *first, true, 0, t0.Add(48*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	var lastEffect int64
	for i := range 3 {
		lastEffect, err = src.EnqueueAt(ctx, store.CaseLane(c.ID), "chat.send", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), t0, t0, true)
		must(t, err)
	}
	must(t, src.Audit(ctx, store.AuditEntry{At: t0, Actor: "matrix:@mallory:example.org", CaseID: c.ID.String(), Action: "claim", Detail: "not on the team", Allowed: false}))
	must(t, src.Audit(ctx, store.AuditEntry{At: t0, Actor: "matrix:@alice:example.org", CaseID: c.ID.String(), Action: "claim", Allowed: true}))
	if _, err := src.MarkHandled(ctx, "$event", t0); err != nil {
		t.Fatal(err)
	}
	must(t, src.SetSyncPosition(ctx, "s42_7"))
	must(t, upgradeMautrixStores(ctx, src.DB))
	cs := crypto.NewSQLCryptoStore(src.DB, dbutil.NoopLogger, "", "DEVICE", pickle)
	account := crypto.NewOlmAccount()
	account.Shared = true
	must(t, cs.PutAccount(ctx, account))
	// A megolm session each way (timestamps, JSON and bytes in mautrix's
	// columns).
	outbound, err := crypto.NewOutboundGroupSession(room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}, nil)
	must(t, err)
	must(t, cs.AddOutboundGroupSession(ctx, outbound))
	signing, identity := account.Keys()
	inbound, err := crypto.NewInboundGroupSession(identity, signing, room, outbound.Internal.Key(), time.Hour, 100, nil, false)
	must(t, err)
	must(t, cs.PutGroupSession(ctx, inbound))
	ss := sqlstatestore.NewSQLStateStore(src.DB, dbutil.NoopLogger, false)
	must(t, ss.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}))
	must(t, ss.SetMembership(ctx, room, "matrix:@reporter:example.org", event.MembershipJoin))
	srcTables, err := src.Tables(ctx)
	must(t, err)
	srcCounts := rowCounts(t, src.DB, srcTables)
	must(t, src.Close())

	// Into PostgreSQL; the password from the environment, as for the bot.
	withPassword, err := url.Parse(pgtest.Shared(t))
	must(t, err)
	password, _ := withPassword.User.Password()
	bare := *withPassword
	bare.User = url.User("postgres")
	t.Setenv(config.EnvDatabasePassword, password)
	var out, errOut bytes.Buffer
	if code := run([]string{"copy-db", "-from", path, "-to", bare.String()}, &out, &errOut); code != 0 {
		t.Fatalf("copy-db exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	t.Logf("copy-db:\n%s", out.String())

	dst, err := store.OpenPostgres(ctx, withPassword.String(), zerolog.Nop())
	must(t, err)
	defer dst.Close()
	dstCounts := rowCounts(t, dst.DB, srcTables)
	for table, n := range srcCounts {
		if dstCounts[table] != n {
			t.Errorf("%s: %d rows in the file, %d copied", table, n, dstCounts[table])
		}
	}
	if len(srcCounts) < 20 {
		t.Errorf("only %d tables were compared: %v", len(srcCounts), srcCounts)
	}
	got, err := dst.Case(ctx, c.ID)
	if err != nil || got.Reporter != "matrix:@reporter:example.org" || !got.CreatedAt.Equal(t0) {
		t.Errorf("the case reads as %+v, %v", got, err)
	}
	if dl, err := dst.Deadline(ctx, c.ID, d.Kind); err != nil || !dl.Reminded || !dl.DueAt.Equal(d.DueAt) {
		t.Errorf("the deadline reads as %+v, %v", dl, err)
	}
	audit, err := dst.AuditOf(ctx, c.ID.String())
	if err != nil || len(audit) != 2 || audit[0].Allowed == audit[1].Allowed {
		t.Errorf("the audit log reads as %+v, %v", audit, err)
	}
	if pos, err := dst.SyncPosition(ctx); err != nil || pos != "s42_7" {
		t.Errorf("the sync position is %q, %v", pos, err)
	}
	if again, err := dst.MarkHandled(ctx, "$event", t0); err != nil || again {
		t.Errorf("a handled event is new again: %v, %v", again, err)
	}
	if next, err := dst.EnqueueAt(ctx, "lane", "chat.send", json.RawMessage(`{}`), t0, t0, false); err != nil || next <= lastEffect {
		t.Errorf("a new effect got ID %d (%v); the copied ones went up to %d", next, err, lastEffect)
	}
	dcs := crypto.NewSQLCryptoStore(dst.DB, dbutil.NoopLogger, "", "DEVICE", pickle)
	if acct, err := dcs.GetAccount(ctx); err != nil || acct == nil || acct.IdentityKey() != account.IdentityKey() || !acct.Shared {
		t.Errorf("the olm account did not come along: %v, %v", acct, err)
	}
	if ogs, err := dcs.GetOutboundGroupSession(ctx, room); err != nil || ogs == nil || ogs.ID() != outbound.ID() {
		t.Errorf("the outbound megolm session did not come along: %v, %v", ogs, err)
	}
	if igs, err := dcs.GetGroupSession(ctx, room, inbound.ID()); err != nil || igs == nil || !igs.ReceivedAt.Equal(inbound.ReceivedAt.Truncate(time.Microsecond)) {
		t.Errorf("the inbound megolm session did not come along: %+v, %v", igs, err)
	}
	dss := sqlstatestore.NewSQLStateStore(dst.DB, dbutil.NoopLogger, false)
	if enc, err := dss.IsEncrypted(ctx, room); err != nil || !enc {
		t.Errorf("the room's encryption did not come along: %v, %v", enc, err)
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"copy-db", "-from", path, "-to", bare.String()}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not empty") {
		t.Errorf("a second copy into the same database: exit %d, %s", code, errOut.String())
	}
	if strings.Contains(errOut.String()+out.String(), password) {
		t.Error("copy-db printed the password")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rowCounts(t *testing.T, db *dbutil.Database, tables []string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range tables {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM "`+table+`"`).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}
