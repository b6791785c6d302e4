package handlers

import (
	"context"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/format"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// deliver hands one message to the handlers as the channel would and
// returns how many answers it got.
func (w *world) deliver(msg chat.Message) int {
	w.t.Helper()
	if msg.Identity == nil {
		msg.Identity = w.identity(msg.Sender)
	}
	before := len(w.sends())
	if err := w.h.HandleMessage(context.Background(), msg); err != nil {
		w.t.Fatalf("%s: %v", msg.Text, err)
	}
	return len(w.sends()) - before
}

func (w *world) updatesPosted() int {
	n := 0
	for _, s := range w.sends() {
		if strings.Contains(s, "Update from the security team") {
			n++
		}
	}
	return n
}

// A homeserver may deliver a month-old command again: its handled ID
// outlives the retention, so it does nothing at all, not even a refusal.
func TestAHandledCommandIsNeverHandledAgain(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	w.say(caseRoom, alice, "!sec respond We reproduced it.")
	update := chat.Message{ID: "$update", Room: caseRoom, Sender: alice, Sent: w.clock.Now(), Text: "!sec update A fix is under review."}
	w.deliver(update)
	if n := w.updatesPosted(); n != 1 {
		t.Fatalf("%d updates posted", n)
	}
	w.timers.SetRetention(30 * 24 * time.Hour)
	w.clock.Advance(40 * 24 * time.Hour)
	w.tick() // prunes finished work older than the retention
	if n := w.deliver(update); n != 0 {
		t.Errorf("the update delivered again 40 days later got %d answers: %q", n, w.sends()[len(w.sends())-n:])
	}
	if n := w.updatesPosted(); n != 1 {
		t.Errorf("the update delivered again was posted to the reporter again: %d updates", n)
	}
}

// A team command sent longer ago than the bound is refused and audited,
// without its text, whatever it asked for.
func TestAnOldTeamCommandIsRefused(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	const canary = "CANARY-old-command"
	sent := w.clock.Now()
	w.clock.Advance(DefaultCommandMaxAge + time.Minute)
	w.deliver(chat.Message{ID: "$old", Room: teamRoom, Sender: alice, Sent: sent, Text: "!sec reject SR-2026-0001 " + canary})
	got := w.sends()[len(w.sends())-1]
	if !strings.Contains(got, "Refused") || !strings.Contains(got, "more than 6h ago") {
		t.Errorf("an old command's answer: %q", got)
	}
	if cs, _ := w.store.Case(ctx, case1); cs.Stage != disclosure.StageReceived {
		t.Errorf("the old command ran: the case is %s", cs.Stage)
	}
	entries, _ := w.store.AuditBy(ctx, alice)
	if len(entries) == 0 || entries[len(entries)-1].Allowed || !strings.Contains(entries[len(entries)-1].Detail, "more than 6h ago") {
		t.Fatalf("the refusal is not audited: %+v", entries)
	}
	for _, e := range entries {
		if strings.Contains(e.Action+e.Detail, canary) {
			t.Errorf("the audit log keeps the command's text: %+v", e)
		}
	}
	// The bound is configurable; a fresh command runs.
	w.h.SetCommandMaxAge(24 * time.Hour)
	w.deliver(chat.Message{ID: "$fresh", Room: teamRoom, Sender: alice, Sent: sent, Text: "!sec claim SR-2026-0001"})
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != alice {
		t.Errorf("a command within the configured bound did not run: handler %q", cs.Handler)
	}
}

// A team command sent before the last one that ran in its room comes out
// of order (a replay, or a key given up on) and is refused; a little clock
// skew is allowed, a clock ahead holds nothing back, and rooms are apart.
func TestATeamCommandOlderThanTheRoomsLastIsRefused(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	now := w.clock.Now()
	w.deliver(chat.Message{ID: "$claim", Room: teamRoom, Sender: alice, Sent: now, Text: "!sec claim SR-2026-0001"})
	w.deliver(chat.Message{ID: "$early", Room: teamRoom, Sender: bob, Sent: now.Add(-10 * time.Minute), Text: "!sec assign SR-2026-0001 @bob:x"})
	if got := w.sends()[len(w.sends())-1]; !strings.Contains(got, "out of order") {
		t.Errorf("an earlier command after a later one: %q", got)
	}
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != alice {
		t.Errorf("the out-of-order command ran: handler %s", cs.Handler)
	}
	w.deliver(chat.Message{ID: "$skewed", Room: teamRoom, Sender: bob, Sent: now.Add(-CommandSkew / 2), Text: "!sec assign SR-2026-0001 @bob:x"})
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != bob {
		t.Errorf("a command within the clock skew did not run: handler %s", cs.Handler)
	}
	// Another room has its own order.
	w.deliver(chat.Message{ID: "$caseroom", Room: caseRoom, Sender: alice, Sent: now.Add(-10 * time.Minute), Text: "!sec claim"})
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != alice {
		t.Errorf("a case room's command was held to the team room's order: handler %s", cs.Handler)
	}
	// A server whose clock runs an hour ahead does not hold back the rest.
	w.deliver(chat.Message{ID: "$ahead", Room: teamRoom, Sender: carol, Sent: w.clock.Now().Add(time.Hour), Text: "!sec list"})
	w.clock.Advance(time.Minute)
	w.deliver(chat.Message{ID: "$after", Room: teamRoom, Sender: bob, Sent: w.clock.Now(), Text: "!sec assign SR-2026-0001 @bob:x"})
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != bob {
		t.Errorf("a command after one from a clock ahead was refused: handler %s; %q", cs.Handler, w.sends()[len(w.sends())-1])
	}
}

// The coordinator's trust names the key it pins: typed without it, nothing
// is pinned, and the answer says where to copy it from. So a `trust`
// delivered again can only pin the key the coordinator saw.
func TestTrustNeedsTheKeyItPins(t *testing.T) {
	w := newWorld(t, monday)
	w.useIdentities()
	ctx := context.Background()
	w.published = map[disclosure.Person]string{bob: "KEY-HOMESERVER"}
	w.say(teamRoom, bob, "!sec list") // the team room is told of the change
	got := w.say(teamRoom, alice, "!sec trust @bob:x")
	if !strings.Contains(got, "Usage") || !strings.Contains(got, "copy") || !strings.Contains(got, "notice") {
		t.Errorf("a trust without the key: %q", got)
	}
	if i, _ := w.store.IdentityOf(ctx, bob); i.MasterKey != "KEY-matrix:@bob:x" {
		t.Errorf("a trust without the key pinned %s", i.MasterKey)
	}
	if got := w.say(teamRoom, alice, "!sec trust @bob:x `KEY-CHECKED`"); !strings.Contains(got, "not the KEY-CHECKED you checked") {
		t.Errorf("a trust of another key than the published one: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec trust @bob:x `KEY-HOMESERVER`"); !strings.Contains(got, "trusted") {
		t.Errorf("a trust with the key the notice showed: %q", got)
	}
	if i, _ := w.store.IdentityOf(ctx, bob); i.MasterKey != "KEY-HOMESERVER" {
		t.Errorf("pinned %s", i.MasterKey)
	}
}

// Someone outside the team is answered a few times a minute, whatever they
// send (team commands, reporter commands, chatter), then told once to slow
// down; their refusals are audited once a minute.
func TestAnOutsidersFloodIsAnsweredAndAuditedBoundedly(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	const mallory disclosure.Person = "matrix:@mallory:x"
	texts := []string{"!sec list", "help", "status", "!sec status SR-2026-0001", "!agree", "hello"}
	for _, room := range []string{"matrix:!public:x", "matrix:!mallorydm:x"} {
		before := len(w.sends())
		for i := range 150 {
			w.deliver(chat.Message{ID: fmt.Sprintf("$flood-%s-%d", room, i), Room: room, Sender: mallory, Sent: w.clock.Now(), Text: texts[i%len(texts)]})
		}
		if n := len(w.sends()) - before; n > ChatterBurst+1 {
			t.Errorf("150 messages in %s got %d answers, want at most %d", room, n, ChatterBurst+1)
		}
		w.clock.Advance(ChatterWindow)
	}
	entries, err := w.store.AuditBy(ctx, mallory)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 2 {
		t.Errorf("300 messages over two minutes wrote %d audit rows, want at most 2", len(entries))
	}
	// The reporter is limited the same way in their own case room.
	before := len(w.sends())
	for range 50 {
		w.say(caseRoom, reporter, "status")
	}
	if n := len(w.sends()) - before; n > ChatterBurst+1 {
		t.Errorf("50 status requests got %d answers", n)
	}
	// Undecryptable messages are answered within the same limit.
	w.clock.Advance(ChatterWindow)
	before = len(w.sends())
	for i := range 50 {
		w.h.HandleUndecryptable(ctx, chat.Message{ID: fmt.Sprintf("$undecryptable-%d", i), Room: dmRoom, Sender: reporter, Sent: w.clock.Now()}, fmt.Sprintf("session-%d", i))
	}
	if n := len(w.sends()) - before; n > ChatterBurst+1 {
		t.Errorf("50 undecryptable messages got %d answers", n)
	}
	// The team is not limited.
	before = len(w.sends())
	for range 20 {
		w.say(teamRoom, alice, "!sec list")
	}
	if n := len(w.sends()) - before; n != 20 {
		t.Errorf("20 team commands got %d answers", n)
	}
	// A minute later the outsider is answered again.
	w.clock.Advance(ChatterWindow)
	if n := w.deliver(chat.Message{ID: "$later", Room: "matrix:!public:x", Sender: mallory, Sent: w.clock.Now(), Text: "!sec list"}); n != 1 {
		t.Errorf("after the window: %d answers", n)
	}
}

// A reporter's ID is theirs to choose: in the team room's note of their
// report it shows as itself, never as a link.
func TestAReportersIDIsNoLinkInTheTeamRoom(t *testing.T) {
	w := newWorld(t, monday)
	w.email(disclosure.EmailPerson(`"[Verify](https://evil.example)"@evil.example`), chat.MailRef{})
	found := false
	for _, s := range w.rawSends() {
		if !strings.Contains(s, "New security report") {
			continue
		}
		found = true
		if out := format.RenderMarkdown(s, true, false).FormattedBody; strings.Contains(out, "<a ") || !strings.Contains(html.UnescapeString(out), `"[verify](https://evil.example)"@evil.example`) {
			t.Errorf("the team room's note: %s", out)
		}
	}
	if !found {
		t.Fatalf("no note of the report: %q", w.sends())
	}
}
