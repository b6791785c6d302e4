package e2e

import (
	"encoding/json"
	"testing"

	"github.com/enarx/secbot/internal/testenv/testbed"
)

// A message an older secbot queued under the kind's former name
// (matrix.send, before the kinds were neutral) is sent by the upgraded
// bot after its restart, once, and its row ends done.
func TestAMessageQueuedBeforeTheUpgradeIsSentOnce(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "upgradebot", testbed.BotOptions{})
	reporter := newUser(t, ctx, "upgradereporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I need to report a security problem")
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	bed.Settle(t, ctx, bot, reporter)

	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	const text = "Queued by the secbot before the upgrade."
	payload, err := json.Marshal(map[string]any{"to": map[string]string{"room": room.String()}, "markdown": text})
	if err != nil {
		t.Fatal(err)
	}
	id, err := bot.QueueRaw(ctx, "room:"+room.String(), "matrix.send", string(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, text)
	bed.Settle(t, ctx, bot, reporter)
	n := 0
	for _, body := range messagesFrom(reporter, room, bot.UserID) {
		if body == text {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the old row's message arrived %d times, want once", n)
	}
	if state, err := bot.EffectState(ctx, id); err != nil || state != "done" {
		t.Errorf("the old row is %q (%v), want done", state, err)
	}
}
