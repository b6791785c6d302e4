package bot

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

type downgrade struct {
	room, algorithm string
	by              disclosure.Person
}

// recordingWatcher records what the bot tells a watcher.
type recordingWatcher struct{ downgrades []downgrade }

func (w *recordingWatcher) TeamKey(context.Context, disclosure.Person) (string, bool, error) {
	return "", false, nil
}
func (w *recordingWatcher) IdentitySeen(context.Context, disclosure.Person, disclosure.Identity) error {
	return nil
}
func (w *recordingWatcher) DevicesSeen(context.Context, disclosure.Person, []chat.Device) error {
	return nil
}
func (w *recordingWatcher) OwnDeviceSeen(context.Context, disclosure.Person, string, string) error {
	return nil
}
func (w *recordingWatcher) EncryptionDowngraded(_ context.Context, room, algorithm string, by disclosure.Person) error {
	w.downgrades = append(w.downgrades, downgrade{room, algorithm, by})
	return nil
}

// stickyBot is a bot with the sticky state store over mautrix's SQL state
// store, both in one database, as New sets them up.
func stickyBot(t *testing.T, path string) (*Bot, *stickyState, *recordingWatcher) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	inner := sqlstatestore.NewSQLStateStore(st.DB, dbutil.NoopLogger, false)
	if err := inner.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	w := &recordingWatcher{}
	b := &Bot{Client: &mautrix.Client{UserID: "@bot:x"}, store: st, log: zerolog.Nop(), watcher: w}
	s := &stickyState{SQLStateStore: inner, b: b, known: map[id.RoomID]*event.EncryptionEventContent{}}
	if err := s.seed(ctx); err != nil {
		t.Fatal(err)
	}
	b.Client.StateStore = s
	return b, s, w
}

func encryptionEvent(room id.RoomID, algorithm id.Algorithm) *event.Event {
	return &event.Event{
		Type: event.StateEncryption, RoomID: room, StateKey: new(""), Sender: "@admin:x", ID: "$downgrade",
		Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: algorithm}},
	}
}

func encrypted(t *testing.T, s mautrix.StateStore, room id.RoomID) bool {
	t.Helper()
	ok, err := s.IsEncrypted(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestEncryptionIsSticky(t *testing.T) {
	ctx := context.Background()
	const room, lost, plain = id.RoomID("!case:x"), id.RoomID("!lost:x"), id.RoomID("!plain:x")
	path := filepath.Join(t.TempDir(), "secbot.db")
	b, s, w := stickyBot(t, path)

	// A synced downgrade of a room seen encrypted: not taken, told.
	mautrix.UpdateStateStore(ctx, s, encryptionEvent(room, id.AlgorithmMegolmV1))
	downgraded := encryptionEvent(room, "none")
	mautrix.UpdateStateStore(ctx, s, downgraded)
	b.sawEncryption(ctx, downgraded)
	if !encrypted(t, s, room) || !encrypted(t, s.SQLStateStore, room) {
		t.Error("a downgrade in the synced state turned encryption off")
	}
	if want := (downgrade{"matrix:" + room.String(), "none", "matrix:@admin:x"}); len(w.downgrades) != 1 || w.downgrades[0] != want {
		t.Errorf("the watcher was told %+v, want %+v", w.downgrades, want)
	}
	if errp := b.batchErr.Load(); errp != nil {
		t.Errorf("the batch failed: %v", *errp)
	}

	// A state store that lost a recorded room's encryption is mended.
	mautrix.UpdateStateStore(ctx, s, encryptionEvent(lost, id.AlgorithmMegolmV1))
	if err := s.SQLStateStore.SetEncryptionEvent(ctx, lost, &event.EncryptionEventContent{Algorithm: "none"}); err != nil {
		t.Fatal(err)
	}
	if !encrypted(t, s, lost) {
		t.Error("a room recorded encrypted counts as unencrypted once its state store lost it")
	}
	if !encrypted(t, s.SQLStateStore, lost) {
		t.Error("the state store was not mended")
	}
	if len(w.downgrades) != 2 || w.downgrades[1].room != "matrix:"+lost.String() || w.downgrades[1].by != "" {
		t.Errorf("the watcher was told %+v", w.downgrades)
	}

	// A room never seen encrypted is as its state says.
	mautrix.UpdateStateStore(ctx, s, encryptionEvent(plain, "none"))
	b.sawEncryption(ctx, encryptionEvent(plain, "none"))
	if encrypted(t, s, plain) || len(w.downgrades) != 2 {
		t.Errorf("a room never encrypted: encrypted %v, told %+v", encrypted(t, s, plain), w.downgrades)
	}

	// The record outlives the process.
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, again, _ := stickyBot(t, path)
	if err := again.SQLStateStore.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: "none"}); err != nil {
		t.Fatal(err)
	}
	if !encrypted(t, again, room) {
		t.Error("after a restart the room counts as unencrypted")
	}
}

// A database from before the record: the rooms its state store holds
// encrypted are recorded at start.
func TestEncryptedRoomsOfAnOlderDatabaseAreRecorded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "secbot.db")
	st, err := store.Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	inner := sqlstatestore.NewSQLStateStore(st.DB, dbutil.NoopLogger, false)
	if err := inner.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inner.SetEncryptionEvent(ctx, "!old:x", &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, s, _ := stickyBot(t, path)
	if _, ok, err := s.b.store.EncryptedRoom(ctx, "matrix:!old:x"); err != nil || !ok {
		t.Fatalf("the old room is not recorded: %v", err)
	}
	if err := s.SQLStateStore.SetEncryptionEvent(ctx, "!old:x", &event.EncryptionEventContent{Algorithm: "none"}); err != nil {
		t.Fatal(err)
	}
	if !encrypted(t, s, "!old:x") {
		t.Error("the old room lost its encryption")
	}
}
