package bot

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// A message synced from scratch (the first start, cut short by a crash,
// started again) whose key comes in the next batch is handled once the
// key is there: mautrix waits for late keys only in syncs that have a
// position, and gave it up at once (seen in CI: a team command sent while
// the bot was down was never answered).
func TestAMessageSyncedFromScratchWaitsForItsLateKey(t *testing.T) {
	const room = id.RoomID("!team:x")
	b, h, alice := newEncryptedRoom(t, room, "@alice:x", "ALICEDEV")
	ctx := context.Background()
	handled := make(chan *event.Event, 1)
	b.handler = handlerFunc(func(_ context.Context, evt *event.Event) error { handled <- evt; return nil })

	// alice's client encrypts her command; its key is on its way to the
	// bot's device, not there yet.
	mach := alice.Crypto.(*cryptohelper.CryptoHelper).Machine()
	if err := mach.ShareGroupSession(ctx, room, []id.UserID{botID, "@alice:x"}); err != nil {
		t.Fatal(err)
	}
	// (Read now: the bot's request for the key writes to the inbox too.)
	keys := append([]event.Event(nil), h.DeviceInbox[botID]["BOTDEV"]...)
	content := event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "!sec list"}}
	encrypted, err := mach.EncryptMegolmEvent(ctx, room, event.EventMessage, &content)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(encrypted)
	if err != nil {
		t.Fatal(err)
	}
	evt := &event.Event{ID: "$command", RoomID: room, Sender: "@alice:x", Type: event.EventEncrypted, Timestamp: time.Now().UnixMilli(), Content: event.Content{VeryRaw: raw}}
	if err := evt.Content.ParseRaw(evt.Type); err != nil {
		t.Fatal(err)
	}

	// The batch from scratch: decrypting fails, and mautrix says so at once.
	b.syncingFromScratch.Store(true)
	b.onDecryptError(evt, cryptohelper.NoSessionFound)
	b.syncingFromScratch.Store(false)
	select {
	case got := <-handled:
		t.Fatalf("handled %s before its key came", got.ID)
	case <-time.After(100 * time.Millisecond):
	}

	// The next batch brings the key.
	if len(keys) == 0 {
		t.Fatal("alice's client sent the bot no key")
	}
	for i := range keys {
		keys[i].ToUserID, keys[i].ToDeviceID = botID, "BOTDEV"
		b.crypto.Machine().HandleToDeviceEvent(ctx, &keys[i])
	}
	select {
	case got := <-handled:
		if got.ID != "$command" || got.Content.AsMessage().Body != "!sec list" {
			t.Errorf("handled %s %q", got.ID, got.Content.AsMessage().Body)
		}
	case <-time.After(keyWait):
		t.Fatal("the message was not handled once its key came")
	}
}

// handlerFunc is a function as the bot's event handler.
type handlerFunc func(ctx context.Context, evt *event.Event) error

func (f handlerFunc) HandleEvent(ctx context.Context, evt *event.Event) error { return f(ctx, evt) }
func (f handlerFunc) HandleUndecryptable(context.Context, *event.Event)       {}
