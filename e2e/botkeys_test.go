package e2e

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// A second device logged in to the bot's own account with its password
// (as a homeserver, or anyone holding the password, could) gets no room
// keys: it cannot read what the bot says in a case room or the team room,
// while a team member can. The team room is told once, naming the device,
// and the audit log keeps it.
func TestABotDeviceItsIdentityDidNotSignGetsNoRoomKeys(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "keysbot", servedOptions(t, testbed.BotOptions{}))
	if err := bot.WaitMetric(ctx, "secbot_matrix_up", 1, wait); err != nil {
		t.Fatal(err)
	}
	reporter, caseID, room := openCase(t, bot, "keysreporter")

	intruder, err := matrixtest.Login(ctx, bed.Server, bot.UserID.Localpart(), "password-"+bot.UserID.Localpart(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(intruder.Close)
	device := intruder.Client.DeviceID
	// Its first sync tells it the rooms are encrypted; the notice says the
	// bot has seen its keys.
	if err := intruder.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, device.String())

	// The bot speaks in the case room and in the team room.
	say(t, ctx, reporter, room, "status")
	inCase := waitMessage(t, ctx, bed.Alice, room, bot.UserID, caseID)
	inTeam := ask(t, ctx, bed.Alice, bed.TeamRoom, bot, "!sec status "+caseID)
	if err := intruder.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	for _, evt := range intruder.Events() {
		if evt.Type == event.EventMessage && (evt.ID == inCase.ID || evt.ID == inTeam.ID) {
			body, _ := matrixtest.Body(evt)
			t.Errorf("the bot's unsigned device decrypted %q", body)
		}
	}
	// It did get the events, encrypted: the homeserver delivered them.
	for _, want := range []*event.Event{inCase, inTeam} {
		wire(t, ctx, intruder, want)
	}

	// Told once, also after a restart; audited.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	ask(t, ctx, bed.Alice, bed.TeamRoom, bot, "!sec list")
	if err := bot.WaitOutboxEmpty(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if err := bed.Alice.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	if told := botSaid(bed.Alice, bed.TeamRoom, bot, device.String()); told != 1 {
		t.Errorf("the team room was told about the device %d times", told)
	}
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	audited(t, ctx, bot, person(bot.UserID), "bot.device", device.String())
}

// ask has u say text in room and waits for the bot's answer to it.
func ask(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, bot *testbed.Bot, text string) *event.Event {
	t.Helper()
	asked := say(t, ctx, u, room, text)
	answer, err := u.Wait(ctx, wait, "the answer to "+text, func(evt *event.Event) bool {
		return evt.Sender == bot.UserID && evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplyTo() == asked
	})
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// wire checks that an event went over the wire encrypted, as u's client
// fetches it raw from the homeserver.
func wire(t *testing.T, ctx context.Context, u *matrixtest.User, evt *event.Event) {
	t.Helper()
	raw, err := u.RawEvent(ctx, wait, evt.RoomID, evt.ID)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Type != event.EventEncrypted {
		t.Errorf("the bot's message %s went out as %s: %v", evt.ID, raw.Type.Type, raw.Content.Raw)
	}
}

// botSaid counts the messages from the bot in room that u saw and that
// contain substr.
func botSaid(u *matrixtest.User, room id.RoomID, bot *testbed.Bot, substr string) int {
	n := 0
	for _, body := range messagesFrom(u, room, bot.UserID) {
		if strings.Contains(body, substr) {
			n++
		}
	}
	return n
}

// audited checks that the bot's audit log has an action by actor whose
// detail names what.
func audited(t *testing.T, ctx context.Context, bot *testbed.Bot, actor disclosure.Person, action, what string) {
	t.Helper()
	st, err := bot.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditBy(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range entries {
		if a.Action == action && strings.Contains(a.Detail, what) {
			return
		}
	}
	t.Errorf("no %s audit entry by %s naming %s: %+v", action, actor, what, entries)
}

// The bot pins its own identity: when the homeserver, while the bot is
// down, adds a device to the bot's account and publishes another identity
// for it (signing the bot's device and its own with it), the bot's next
// start gives that device no room keys and names it in the team room.
func TestAnIdentityPublishedForTheBotByOthersSignsNoDeviceIn(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "forgedbot", servedOptions(t, testbed.BotOptions{}))
	if err := bot.WaitMetric(ctx, "secbot_matrix_up", 1, wait); err != nil {
		t.Fatal(err)
	}
	devices, master := botDevices(t, ctx, bot)
	if len(devices) != 1 {
		t.Fatalf("the bot has devices %v", devices)
	}
	var botDevice id.DeviceID
	for did := range devices {
		botDevice = did
	}
	ask(t, ctx, bed.Alice, bed.TeamRoom, bot, "!sec list")
	// While the bot is down, the homeserver adds a device and an identity.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	intruder, err := matrixtest.Login(ctx, bed.Server, bot.UserID.Localpart(), "password-"+bot.UserID.Localpart(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(intruder.Close)
	forged, err := intruder.CrossSign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := intruder.SignDevice(ctx, botDevice); err != nil {
		t.Fatal(err)
	}
	if _, now := botDevices(t, ctx, bot); now != forged || now == master {
		t.Fatalf("the published identity is %s, want the forged %s", now, forged)
	}
	restart(t, bot)
	if err := bot.WaitMetric(ctx, "secbot_matrix_up", 1, wait); err != nil {
		t.Fatal(err)
	}
	if err := intruder.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	// The bot fetched its account's devices at start, before it answers.
	answer := ask(t, ctx, bed.Alice, bed.TeamRoom, bot, "!sec list")
	if err := intruder.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	for _, evt := range intruder.Events() {
		if evt.ID == answer.ID && evt.Type == event.EventMessage {
			t.Error("a device the forged identity signed decrypted the bot's answer")
		}
	}
	wire(t, ctx, intruder, answer)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, intruder.Client.DeviceID.String())
	if !strings.Contains(bot.Log(), "not the one it first had") {
		t.Error("the bot did not log that its published identity changed")
	}
}
