package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/enarx/secbot/disclosure"
)

func countContaining(sends []string, substr string) int {
	n := 0
	for _, s := range sends {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func auditActions(t *testing.T, w *world, actor disclosure.Person, action string) int {
	t.Helper()
	entries, err := w.store.AuditBy(context.Background(), actor)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range entries {
		if a.Action == action {
			n++
		}
	}
	return n
}

func TestAnUnsignedDeviceOfTheBotIsToldOnce(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	for range 3 {
		if err := w.h.OwnDeviceSeen(ctx, "matrix:@secbot:x", "INTRUDER", "[Verify](https://evil.example)"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.h.OwnDeviceSeen(ctx, "matrix:@secbot:x", "SECOND", ""); err != nil {
		t.Fatal(err)
	}
	sends := w.sends()
	if n := countContaining(sends, "INTRUDER"); n != 1 {
		t.Errorf("the device was told %d times: %q", n, sends)
	}
	if n := countContaining(sends, "SECOND"); n != 1 {
		t.Errorf("a second device was told %d times: %q", n, sends)
	}
	if strings.Contains(strings.Join(w.rawSends(), "\n"), "[Verify](https://evil.example)") {
		t.Errorf("the device's name reached the team room as markup: %q", sends)
	}
	if n := auditActions(t, w, "matrix:@secbot:x", "bot.device"); n != 2 {
		t.Errorf("%d bot.device audit entries, want 2", n)
	}
}

func TestADowngradedRoomIsToldOncePerRoom(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	const stranger = "matrix:!strangers-own:x"
	for _, room := range []string{caseRoom, teamRoom, dmRoom, stranger} {
		if err := w.store.RecordEncrypted(ctx, room, `{"algorithm":"m.megolm.v1.aes-sha2"}`, monday); err != nil {
			t.Fatal(err)
		}
	}
	before := len(w.sends())
	for range 2 {
		for _, room := range []string{caseRoom, dmRoom, stranger} {
			if err := w.h.EncryptionDowngraded(ctx, room, "none", ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.h.EncryptionDowngraded(ctx, teamRoom, "none", alice); err != nil {
			t.Fatal(err)
		}
	}
	sends := w.sends()[before:]
	if len(sends) != 3 || countContaining(sends, "the direct chat of SR-2026-0001") != 1 || countContaining(sends, stranger) != 0 {
		t.Errorf("want one notice each for the case room, the case's direct chat and the team room, none for a stranger's room: %q", sends)
	}
	if n := countContaining(sends, "the room of SR-2026-0001"); n != 1 {
		t.Errorf("the case room's downgrade was told %d times: %q", n, sends)
	}
	if n := countContaining(sends, "this team room"); n != 1 {
		t.Errorf("the team room's downgrade was told %d times: %q", n, sends)
	}
	audit, err := w.store.AuditOf(ctx, "SR-2026-0001")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range audit {
		found = found || (a.Action == "encryption.downgrade" && strings.Contains(a.Detail, caseRoom))
	}
	if !found {
		t.Errorf("the case's audit log has no downgrade: %+v", audit)
	}
	if n := auditActions(t, w, "matrix:@secbot:x", "encryption.downgrade"); n != 2 {
		t.Errorf("%d downgrade audit entries by the bot, want 2 (the case's rooms)", n)
	}
	if n := auditActions(t, w, alice, "encryption.downgrade"); n != 1 {
		t.Errorf("%d downgrade audit entries by alice, want 1", n)
	}
}
