package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"
)

// mautrixStores are the crypto and state stores the bot keeps on the
// store's database (as bot.Start makes them), migrated.
func mautrixStores(t *testing.T, st *Store) (*crypto.SQLCryptoStore, *sqlstatestore.SQLStateStore) {
	t.Helper()
	ctx := context.Background()
	cs := crypto.NewSQLCryptoStore(st.DB, dbutil.NoopLogger, "@secbot:example.org", "DEVICE", []byte("pickle-key"))
	if err := cs.DB.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	ss := sqlstatestore.NewSQLStateStore(st.DB, dbutil.NoopLogger, false)
	if err := ss.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	return cs, ss
}

const (
	fenceRoom = id.RoomID("!case:example.org")
	fenceUser = id.UserID("@reporter:example.org")
)

func membership(t *testing.T, ss *sqlstatestore.SQLStateStore) event.Membership {
	t.Helper()
	m, err := ss.GetMembership(context.Background(), fenceRoom, fenceUser)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A takes office and its mautrix stores write (the olm account, a room
// member); B takes over while A, whose lock connection alone died, still
// runs: from B's takeover on, every write A's crypto and state stores make
// through the shared database is refused by the database itself (they do
// not go through Store.Tx, so only the fence's triggers see them), and
// nothing of it commits; B's own stores write as before. Every table but
// leader is fenced, mautrix's included.
func TestMautrixWritesOfTheOldInstanceAreFenced(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	a := dialInstance(t, url, "a", zerolog.Nop())
	b := dialInstance(t, url, "b", zerolog.Nop())
	a.start(t)
	// As the bot does: its stores are made once the instance is active.
	aCrypto, aState := mautrixStores(t, a.st)
	if err := aCrypto.PutAccount(ctx, crypto.NewOlmAccount()); err != nil {
		t.Fatalf("the active instance's crypto store: %v", err)
	}
	if err := aState.SetMembership(ctx, fenceRoom, fenceUser, event.MembershipInvite); err != nil {
		t.Fatalf("the active instance's state store: %v", err)
	}
	bDone := b.standBy(t)
	cutLockConnection(t, b.st, a.lead)
	b.promote(t, bDone)
	b.takeOffice(t)

	if unfenced, err := b.st.unfenced(ctx); err != nil || !slices.Equal(unfenced, []string{"leader"}) {
		t.Errorf("tables without the fence: %v %v, want only leader", unfenced, err)
	}
	tables, err := b.st.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"crypto_account", "crypto_olm_session", "mx_room_state", "mx_version", "cases", "outbox"} {
		if !slices.Contains(tables, want) {
			t.Errorf("no table %s to fence", want)
		}
	}

	stale := crypto.NewOlmAccount()
	if err := aCrypto.PutAccount(ctx, stale); !fencedByDatabase(err) {
		t.Errorf("the old instance's crypto store after the takeover: %v, want the fence's refusal", err)
	}
	if err := aState.SetMembership(ctx, fenceRoom, fenceUser, event.MembershipJoin); !fencedByDatabase(err) {
		t.Errorf("the old instance's state store after the takeover: %v, want the fence's refusal", err)
	}
	if err := aCrypto.PutDevice(ctx, fenceUser, &id.Device{UserID: fenceUser, DeviceID: "NEW", IdentityKey: "ik", SigningKey: "sk"}); !fencedByDatabase(err) {
		t.Errorf("the old instance's device list: %v, want the fence's refusal", err)
	}
	// A's single write outside a transaction, its Go guard unaware.
	if _, err := a.st.DB.Exec(ctx, `DELETE FROM handled_events`); !fencedByDatabase(err) {
		t.Errorf("the old instance's raw write: %v, want the fence's refusal", err)
	}

	bCrypto, bState := mautrixStores(t, b.st)
	if m := membership(t, bState); m != event.MembershipInvite {
		t.Errorf("membership %q, want invite (the old instance's join did not commit)", m)
	}
	got, err := bCrypto.GetAccount(ctx)
	if err != nil || got == nil {
		t.Fatalf("the account: %v %v", got, err)
	}
	if got.IdentityKey() == stale.IdentityKey() {
		t.Error("the old instance's account write committed after the takeover")
	}
	if dev, err := bCrypto.GetDevice(ctx, fenceUser, "NEW"); err != nil || dev != nil {
		t.Errorf("the old instance's device: %v %v, want none", dev, err)
	}
	if err := bCrypto.PutAccount(ctx, crypto.NewOlmAccount()); err != nil {
		t.Errorf("the new active instance's crypto store: %v", err)
	}
	if err := bState.SetMembership(ctx, fenceRoom, fenceUser, event.MembershipJoin); err != nil {
		t.Errorf("the new active instance's state store: %v", err)
	}
	if m := membership(t, bState); m != event.MembershipJoin {
		t.Errorf("membership %q after the new instance's write, want join", m)
	}
	// A Store.Tx of the old instance that the trigger refuses is ErrFenced.
	a.lead.guard.fenced.Store(false)
	a.lead.guard.epoch = 2 // as if its Go guard were fooled: the database still refuses
	if err := a.st.Tx(ctx, func(ctx context.Context) error {
		_, err := a.st.db.Exec(ctx, `DELETE FROM audit_log`)
		return err
	}); !errors.Is(err, ErrFenced) || !fencedByDatabase(err) {
		t.Errorf("the old instance's transaction: %v, want ErrFenced from the database", err)
	}
}

// A write of mautrix's store in a transaction of the old instance that
// began before the takeover holds the new instance's increment (the
// trigger read the leader row FOR SHARE) until it ends: it commits before
// the new epoch begins, and the old instance's next write is refused.
func TestANewEpochWaitsForTheOldEpochsOpenMautrixWrite(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	a := dialInstance(t, url, "a", zerolog.Nop())
	b := dialInstance(t, url, "b", zerolog.Nop())
	// The stores exist when A takes office, so A's office fences them.
	if err := a.lead.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.st.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	aCrypto, aState := mautrixStores(t, a.st)
	if _, err := a.lead.TakeOffice(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if unfenced, err := a.st.unfenced(ctx); err != nil || !slices.Equal(unfenced, []string{"leader"}) {
		t.Fatalf("tables without the fence: %v %v", unfenced, err)
	}
	bDone := b.standBy(t)

	takeOverDuringOpenTxn(t, a, b, bDone, "write", func(ctx context.Context, held func()) error {
		// mautrix's stores join a transaction of the shared database.
		return a.st.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
			if err := aState.SetMembership(ctx, fenceRoom, fenceUser, event.MembershipInvite); err != nil {
				return err
			}
			held()
			return nil
		})
	})
	_, bState := mautrixStores(t, b.st)
	if m := membership(t, bState); m != event.MembershipInvite {
		t.Errorf("membership %q, want invite (a's write begun in office committed)", m)
	}
	if err := aState.SetMembership(ctx, fenceRoom, fenceUser, event.MembershipLeave); !fencedByDatabase(err) {
		t.Errorf("a's next write: %v, want the fence's refusal", err)
	}
	if err := aCrypto.PutAccount(ctx, crypto.NewOlmAccount()); !fencedByDatabase(err) {
		t.Errorf("a's next crypto write: %v, want the fence's refusal", err)
	}
}

// A connection of no instance (a tool: OpenPostgres) may write only while
// no instance holds the election's lock; the instance that won the
// election migrates as the office in force, before it takes office, on
// tables already fenced.
func TestAToolWritesOnlyWhileNoInstanceIsActive(t *testing.T) {
	url := pgShared(t)
	ctx := context.Background()
	a := dialInstance(t, url, "a", zerolog.Nop())
	a.start(t)
	tool, err := OpenPostgres(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	if _, err := tool.MarkHandled(ctx, "$tool-while-active", t0); !fencedByDatabase(err) {
		t.Errorf("a tool's write while an instance is active: %v, want the fence's refusal", err)
	}
	if _, err := a.st.MarkHandled(ctx, "$active", t0); err != nil {
		t.Errorf("the active instance's write: %v", err)
	}
	if err := a.lead.Close(); err != nil {
		t.Fatal(err)
	}
	waitForLockFree(t, tool)
	if _, err := tool.MarkHandled(ctx, "$tool-none-active", t0); err != nil {
		t.Errorf("a tool's write while no instance is active: %v", err)
	}
	if handled(t, tool, "$tool-while-active") || !handled(t, tool, "$tool-none-active") {
		t.Error("the tool's writes: the refused one committed or the allowed one did not")
	}

	// The next instance migrates (a new version row on a fenced table)
	// under the office in force, then takes it.
	b := dialInstance(t, url, "b", zerolog.Nop())
	if err := b.lead.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.DB.Exec(ctx, `UPDATE `+VersionTable+` SET version = version - 1, compat = compat - 1`); !fencedByDatabase(err) {
		t.Fatalf("b's write before it took office: %v, want the fence's refusal", err)
	}
	// b is a newer binary: one more migration, which writes to fenced
	// tables (its own and the version table).
	b.st.db.UpgradeTable = newerBinary(func(ctx context.Context, db *dbutil.Database) error {
		_, err := db.Exec(ctx, `UPDATE handled_events SET prunable = TRUE WHERE event_id = '$active'`)
		return err
	})
	if err := b.st.Upgrade(ctx); err != nil {
		t.Fatalf("b's migrations: %v", err)
	}
	if epoch, err := b.lead.TakeOffice(ctx, t0); err != nil || epoch != 2 {
		t.Fatalf("b's office: %d %v", epoch, err)
	}
	if unfenced, err := b.st.unfenced(ctx); err != nil || !slices.Equal(unfenced, []string{"leader"}) {
		t.Errorf("tables without the fence: %v %v", unfenced, err)
	}
	if _, err := a.st.MarkHandled(ctx, "$a-after", t0); !fencedByDatabase(err) && !errors.Is(err, ErrFenced) {
		t.Errorf("the old instance's write: %v, want refused", err)
	}
	if _, err := b.st.MarkHandled(ctx, "$b", t0); err != nil {
		t.Errorf("b's write: %v", err)
	}
	var prunable bool
	if err := b.st.DB.QueryRow(ctx, `SELECT prunable FROM handled_events WHERE event_id = '$active'`).Scan(&prunable); err != nil || !prunable {
		t.Errorf("b's migration did not write: %v %v", prunable, err)
	}
}

// newerBinary is secbot's migrations and one more (as a newer binary has).
func newerBinary(fn func(ctx context.Context, db *dbutil.Database) error) dbutil.UpgradeTable {
	n := len(upgradeTable)
	return append(slices.Clone(upgradeTable), dbutil.WrapUpgrade(n, n+1, 0, "a newer binary's migration", dbutil.TxnModeOn, fn))
}

// copy-db writes into an empty PostgreSQL database on which no instance
// took office: nothing is fenced there yet (it writes as a tool, while no
// instance is active). The first instance to take office on the copy
// fences every table, mautrix's included, in its epoch's first
// transaction; from then on the tool's writes are refused.
func TestACopiedDatabaseIsFencedOnceAnInstanceTakesOffice(t *testing.T) {
	ctx := context.Background()
	src, _ := openTest(t, sqliteDB)
	solo := src.Elector(Election{Instance: "solo"})
	if _, err := solo.TakeOffice(ctx, t0); err != nil {
		t.Fatal(err)
	}
	srcCrypto, _ := mautrixStores(t, src)
	account := crypto.NewOlmAccount()
	if err := srcCrypto.PutAccount(ctx, account); err != nil {
		t.Fatal(err)
	}
	url := pgShared(t)
	dst, err := OpenPostgres(ctx, url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	mautrixStores(t, dst)
	counts, err := src.CopyInto(ctx, dst)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if counts["leader"] != 1 || counts["crypto_account"] != 1 {
		t.Errorf("copied %v", counts)
	}
	unfenced, err := dst.unfenced(ctx)
	if err != nil || !slices.Contains(unfenced, "crypto_account") {
		t.Errorf("before any office on the copy: unfenced %v %v", unfenced, err)
	}

	a := dialInstance(t, url, "a", zerolog.Nop())
	if epoch := a.start(t); epoch != 2 {
		t.Errorf("the first office on the copy has epoch %d, want 2 (the file's 1, plus one)", epoch)
	}
	if unfenced, err := a.st.unfenced(ctx); err != nil || !slices.Equal(unfenced, []string{"leader"}) {
		t.Errorf("tables without the fence: %v %v, want only leader", unfenced, err)
	}
	aCrypto, _ := mautrixStores(t, a.st)
	got, err := aCrypto.GetAccount(ctx)
	if err != nil || got == nil || got.IdentityKey() != account.IdentityKey() {
		t.Fatalf("the copied account: %v %v", got, err)
	}
	if err := aCrypto.PutAccount(ctx, got); err != nil {
		t.Errorf("the active instance's crypto store on the copy: %v", err)
	}
	if _, err := dst.MarkHandled(ctx, "$tool", t0); !fencedByDatabase(err) {
		t.Errorf("the tool's write while an instance is active: %v, want the fence's refusal", err)
	}
}

// waitForLockFree returns once no session holds the election's lock (the
// server ended the closed lock connection's session).
func waitForLockFree(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var held bool
		if err := s.DB.RawDB.QueryRow(`SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::text::bigint = $1)`, LockKey).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if !held {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling the server's state, not waiting for time to pass
	}
	t.Fatal("the lock is still held")
}
