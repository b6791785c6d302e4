package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// The bot is cross-signed; a team member's commands count only from the
// devices their pinned identity signed, and only those devices get room
// keys; the reporter's unverified device reads their case; a reset
// identity waits for the coordinator; plaintext injected into an
// encrypted room is ignored; a restart keeps the identity and the pins,
// and a lost database comes back verified with the recovery key.
func TestTrust(t *testing.T) {
	ctx := testContext(t)
	carol := newUser(t, ctx, "carol")
	carol.SetAutoJoin(true)
	if _, err := carol.CrossSign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bed.Alice.Client.InviteUser(ctx, bed.TeamRoom, &mautrix.ReqInviteUser{UserID: carol.ID()}); err != nil {
		t.Fatal(err)
	}
	if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, carol.ID()); err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, ctx, "trustbot", servedOptions(t, testbed.BotOptions{Members: []id.UserID{carol.ID()}}))
	if err := bot.WaitMetric(ctx, "secbot_matrix_up", 1, wait); err != nil {
		t.Fatal(err)
	}

	// The bot's device is signed by its own identity, as a member's client
	// sees it.
	devices, botMaster := botDevices(t, ctx, bot)
	if len(devices) != 1 || botMaster == "" {
		t.Fatalf("the bot has devices %v and master key %q", devices, botMaster)
	}
	for did, trust := range devices {
		if trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("the bot's device %s is %s to alice's client, not cross-signed", did, trust)
		}
	}
	if info, err := os.Stat(filepath.Join(bot.Dir, "recovery-key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the recovery key file: %v, %v", info, err)
	}

	// carol's second device, which her identity never signed (as a
	// homeserver could add one).
	carol2, err := matrixtest.Login(ctx, bed.Server, carol.ID().Localpart(), matrixtest.Password(carol.ID().Localpart()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(carol2.Close)
	// Its first sync tells it the team room is encrypted.
	if err := carol2.WaitJoined(ctx, wait, bed.TeamRoom, carol.ID()); err != nil {
		t.Fatal(err)
	}
	reporter, caseID, room := openCase(t, bot, "trustreporter")
	if err := carol.WaitJoined(ctx, wait, room, carol.ID()); err != nil {
		t.Fatal(err)
	}
	say(t, ctx, carol2, bed.TeamRoom, "!sec list")
	waitMessage(t, ctx, carol, bed.TeamRoom, bot.UserID, "this device is not verified")
	say(t, ctx, carol2, room, "!sec claim")
	waitMessage(t, ctx, reporter, room, bot.UserID, "this device is not verified")
	// Waiting on the answer: a message from carol's signed device works.
	say(t, ctx, carol, bed.TeamRoom, "!sec status "+caseID)
	first := waitMessage(t, ctx, carol, bed.TeamRoom, bot.UserID, "**"+caseID+"**")
	if body, _ := matrixtest.Body(first); strings.Contains(body, "handler"+carol.ID().String()) {
		t.Errorf("the unverified device's claim made carol the handler: %q", body)
	}

	// The unsigned device gets no room key for what the bot says in the
	// case room; the signed one and the reporter's (never verified) do.
	say(t, ctx, reporter, room, "status")
	marker := waitMessage(t, ctx, reporter, room, bot.UserID, caseID)
	waitFor(t, ctx, carol, "the reporter's status answer", func(evt *event.Event) bool { return evt.ID == marker.ID && evt.Type == event.EventMessage })
	if err := carol2.CatchUp(ctx, wait); err != nil {
		t.Fatal(err)
	}
	for _, evt := range carol2.Events() {
		if evt.RoomID == room && evt.Sender == bot.UserID && evt.Type == event.EventMessage {
			body, _ := matrixtest.Body(evt)
			t.Errorf("carol's unsigned device decrypted the bot's %q", body)
		}
	}

	// Plaintext sent into the encrypted case room with carol's own token
	// (as a homeserver could) is not a command.
	plain, err := mautrix.NewClient(bed.Server.URL, carol.ID(), carol.Client.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	injected, err := plain.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "!sec reject Not a bug."})
	if err != nil {
		t.Fatal(err)
	}
	say(t, ctx, carol, room, "!sec status")
	waitMessage(t, ctx, carol, room, bot.UserID, "Timeline")

	// carol resets her identity: the team room is told, her commands wait,
	// and the coordinator's !sec trust restores them.
	reset, err := carol.CrossSign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	told := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, carol.ID().String()+"'s cross-signing identity changed")
	if body, _ := matrixtest.Body(told); !strings.Contains(body, reset.String()) {
		t.Errorf("the notice does not name the new key %s: %q", reset, body)
	}
	say(t, ctx, carol, bed.TeamRoom, "!sec claim "+caseID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "your cross-signing identity changed")
	say(t, ctx, bed.Bob, bed.TeamRoom, "!sec trust "+carol.ID().String()+" "+reset.String())
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "only the coordinator")
	// Without the key it pins nothing: a replay could only pin what was shown.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec trust "+carol.ID().String())
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "copy both from the team room's notice")
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec trust "+carol.ID().String()+" "+botMaster.String())
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "not the "+botMaster.String()+" you checked")
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec trust "+carol.ID().String()+" "+reset.String())
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, reset.String()+"` is trusted")
	say(t, ctx, carol, bed.TeamRoom, "!sec claim "+caseID)
	waitMessage(t, ctx, carol, bed.TeamRoom, bot.UserID, "is now the handler")

	// A restart keeps the bot's identity and the pins.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	say(t, ctx, carol2, bed.TeamRoom, "!sec help")
	waitMessage(t, ctx, carol, bed.TeamRoom, bot.UserID, "this device is not verified")
	asked := say(t, ctx, carol, bed.TeamRoom, "!sec status "+caseID)
	status, err := carol.Wait(ctx, wait, "the status answer", func(evt *event.Event) bool {
		return evt.Sender == bot.UserID && evt.Type == event.EventMessage && evt.Content.AsMessage().RelatesTo.GetReplyTo() == asked
	})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := matrixtest.Body(status); !strings.Contains(body, "handler"+carol.ID().String()) {
		t.Errorf("after a restart, the status: %q", body)
	}
	if _, master := botDevices(t, ctx, bot); master != botMaster {
		t.Errorf("the bot's identity changed on restart: %s, was %s", master, botMaster)
	}
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}

	// What the audit log kept, and that nothing of it happened twice.
	st, err := bot.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := st.Case(ctx, mustCaseID(t, caseID))
	if err != nil {
		t.Fatal(err)
	}
	if cs.Stage == disclosure.StageRejected {
		t.Error("the injected plaintext rejected the case")
	}
	audit, err := st.AuditOf(ctx, caseID)
	if err != nil {
		t.Fatal(err)
	}
	var plaintext, refusedClaim bool
	for _, a := range audit {
		plaintext = plaintext || a.Action == "plaintext.ignored"
		refusedClaim = refusedClaim || (a.Actor == person(carol.ID()) && !a.Allowed && strings.Contains(a.Detail, "not verified"))
	}
	if !plaintext || !refusedClaim {
		t.Errorf("audited: plaintext %v, the unverified claim %v", plaintext, refusedClaim)
	}
	for _, evt := range carol.Events() {
		if evt.Sender == bot.UserID && evt.Content.AsMessage().RelatesTo.GetReplyTo() == injected.EventID {
			t.Error("the bot answered the injected plaintext")
		}
	}
	st.Close()

	// A lost database: the bot logs in as a new device and signs it with
	// the recovery key.
	if err := bot.LoseDatabase(ctx); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	if err := bot.WaitMetric(ctx, "secbot_matrix_up", 1, wait); err != nil {
		t.Fatal(err)
	}
	devices, master := botDevices(t, ctx, bot)
	if master != botMaster || len(devices) != 2 {
		t.Fatalf("after a lost database: devices %v, master %s (was %s)", devices, master, botMaster)
	}
	for did, trust := range devices {
		if trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("the bot's device %s is %s after a lost database", did, trust)
		}
	}
}

func botDevices(t *testing.T, ctx context.Context, bot *testbed.Bot) (map[id.DeviceID]id.TrustState, id.Ed25519) {
	t.Helper()
	devices, master, err := bed.Alice.Devices(ctx, bot.UserID)
	if err != nil {
		t.Fatal(err)
	}
	return devices, master
}

func waitFor(t *testing.T, ctx context.Context, u *matrixtest.User, what string, match func(*event.Event) bool) {
	t.Helper()
	if _, err := u.Wait(ctx, wait, what, match); err != nil {
		t.Fatal(err)
	}
}

func mustCaseID(t *testing.T, s string) disclosure.CaseID {
	t.Helper()
	c, err := disclosure.ParseCaseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
