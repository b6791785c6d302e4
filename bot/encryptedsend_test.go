package bot

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
	globallog "github.com/rs/zerolog/log"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/outbox"
)

// In an encrypted room the notice goes out as ciphertext only, with the
// effect's marker outside it (a retry must find it without decrypting),
// and the room's member can read it.
func TestASendToAnEncryptedRoomIsCiphertextWithItsMarkerOutside(t *testing.T) {
	const room = id.RoomID("!enc:x")
	b, h, reporter := newEncryptedRoom(t, room, "@reporter:x", "REPDEV")
	ctx := context.Background()
	if _, err := b.execSend(ctx, effect(t, 11, 1, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: string(room)}, Markdown: "the reporter's secret"})); err != nil {
		t.Fatal(err)
	}
	if len(h.sends) != 1 {
		t.Fatalf("%d messages sent, want 1", len(h.sends))
	}
	s := h.sends[0]
	if s.Type != "m.room.encrypted" || s.Body["algorithm"] != string(id.AlgorithmMegolmV1) || s.Body["ciphertext"] == nil {
		t.Fatalf("sent %s %v, want megolm ciphertext", s.Type, s.Body)
	}
	for _, key := range []string{"body", "formatted_body", "msgtype"} {
		if v, ok := s.Body[key]; ok {
			t.Errorf("the encrypted message carries %s = %v in the clear", key, v)
		}
	}
	if s.Body[effectMarker] != float64(11) {
		t.Errorf("marker outside the ciphertext %v, want 11", s.Body[effectMarker])
	}
	// The reporter's device got the room key and reads the notice.
	keys := h.DeviceInbox["@reporter:x"]["REPDEV"]
	if len(keys) == 0 {
		t.Fatal("no room key was sent to the reporter's device")
	}
	for i := range keys {
		keys[i].ToUserID, keys[i].ToDeviceID = "@reporter:x", "REPDEV"
		reporter.Crypto.(*cryptohelper.CryptoHelper).Machine().HandleToDeviceEvent(ctx, &keys[i])
	}
	raw, err := json.Marshal(s.Body)
	if err != nil {
		t.Fatal(err)
	}
	evt := &event.Event{ID: s.ID, RoomID: room, Sender: botID, Type: event.EventEncrypted, Content: event.Content{VeryRaw: raw}}
	if err := evt.Content.ParseRaw(evt.Type); err != nil {
		t.Fatal(err)
	}
	decrypted, err := reporter.Crypto.Decrypt(ctx, evt)
	if err != nil {
		t.Fatal("the reporter cannot decrypt the notice:", err)
	}
	if msg := decrypted.Content.AsMessage(); msg.MsgType != event.MsgNotice || msg.Body != "the reporter's secret" {
		t.Errorf("decrypted %s %q, want the notice", msg.MsgType, msg.Body)
	}
}

// newEncryptedRoom is a bot with end-to-end encryption on mautrix's
// mockserver and a member's client with its own, both knowing room as an
// encrypted room of the two of them.
func newEncryptedRoom(t *testing.T, room id.RoomID, member id.UserID, device id.DeviceID) (*Bot, *hs, *mautrix.Client) {
	t.Helper()
	// mautrix's mockserver logs its clients' crypto to the global logger.
	oldLog := globallog.Logger
	globallog.Logger = zerolog.Nop()
	t.Cleanup(func() { globallog.Logger = oldLog })
	b, h, _ := newMockBot(t)
	ctx := context.Background()
	cli, _ := h.Login(t, ctx, botID, "BOTDEV")
	other, _ := h.Login(t, ctx, member, device)
	for _, c := range []*mautrix.Client{cli, other} {
		if err := c.StateStore.SetEncryptionEvent(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []id.UserID{botID, member} {
			if err := c.StateStore.SetMembership(ctx, room, u, event.MembershipJoin); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Client, b.crypto = cli, cli.Crypto.(*cryptohelper.CryptoHelper)
	return b, h, other
}
