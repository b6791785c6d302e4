package bot

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// orderHandler records the order in which events reach it.
type orderHandler struct {
	mu      sync.Mutex
	handled []id.EventID
	unread  []id.EventID
}

func (h *orderHandler) HandleEvent(_ context.Context, evt *event.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handled = append(h.handled, evt.ID)
	return nil
}

func (h *orderHandler) HandleUndecryptable(_ context.Context, evt *event.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unread = append(h.unread, evt.ID)
}

func (h *orderHandler) got() (handled, unread []id.EventID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.handled), slices.Clone(h.unread)
}

const orderRoom = id.RoomID("!team:x")

// orderWorld is a bot whose crypto store has the keys of the events named
// in keys, and whose noted events are those the test admits.
type orderWorld struct {
	t    *testing.T
	b    *Bot
	st   *store.Store
	h    *orderHandler
	keys map[id.EventID]bool
	mu   sync.Mutex
}

func newOrderWorld(t *testing.T) *orderWorld {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cli, err := mautrix.NewClient("http://127.0.0.1:1", "@bot:x", "token")
	if err != nil {
		t.Fatal(err)
	}
	cli.StateStore = mautrix.NewMemoryStateStore()
	for _, u := range []id.UserID{"@bot:x", "@alice:x", "@bob:x"} {
		_ = cli.StateStore.SetMembership(ctx, orderRoom, u, event.MembershipJoin)
	}
	w := &orderWorld{t: t, st: st, h: &orderHandler{}, keys: map[id.EventID]bool{}}
	w.b = &Bot{Client: cli, store: st, log: zerolog.Nop(), handler: w.h}
	w.b.lines.keyHere = func(evt *event.Event) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.keys[evt.ID]
	}
	return w
}

// arrive is an encrypted event coming in with the sync: noted, then given
// its place; with its key here, it is decrypted at once.
func (w *orderWorld) arrive(evtID id.EventID, keyHere bool) *event.Event {
	w.t.Helper()
	return w.arriveFrom("@alice:x", evtID, keyHere)
}

func (w *orderWorld) arriveFrom(sender id.UserID, evtID id.EventID, keyHere bool) *event.Event {
	w.t.Helper()
	return w.arriveSent(sender, evtID, keyHere, time.Now())
}

func (w *orderWorld) arriveSent(sender id.UserID, evtID id.EventID, keyHere bool, sent time.Time) *event.Event {
	w.t.Helper()
	w.mu.Lock()
	w.keys[evtID] = keyHere
	w.mu.Unlock()
	evt := &event.Event{ID: evtID, RoomID: orderRoom, Sender: sender, Type: event.EventEncrypted, Timestamp: sent.UnixMilli(),
		Content: event.Content{Parsed: &event.EncryptedEventContent{Algorithm: id.AlgorithmMegolmV1, SessionID: id.SessionID("s" + evtID)}}}
	w.b.noteEncrypted(context.Background(), evt)
	if keyHere {
		w.decrypted(evtID)
	}
	return evt
}

// decrypted is the event's key having come: mautrix decrypts and passes it on.
func (w *orderWorld) decrypted(evtID id.EventID) {
	w.b.afterDecrypt(context.Background(), &event.Event{ID: evtID, RoomID: orderRoom, Sender: "@alice:x", Type: event.EventMessage,
		Content: event.Content{Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "!sec …"}}})
}

func (w *orderWorld) noted() int {
	w.t.Helper()
	noted, err := w.st.AwaitingEvents(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return len(noted)
}

// A message whose key comes late holds the later ones of its room; they
// are handled in timeline order once it is decrypted.
func TestLaterMessagesWaitForAnEarlierOnesKey(t *testing.T) {
	w := newOrderWorld(t)
	w.arrive("$first", false)
	w.arrive("$second", true)
	w.arrive("$third", true)
	if handled, _ := w.h.got(); len(handled) != 0 {
		t.Fatalf("handled %v before the first message's key came", handled)
	}
	if n := w.noted(); n != 3 {
		t.Errorf("%d events noted while held, want 3 (a crash must not lose them)", n)
	}
	w.decrypted("$first")
	handled, _ := w.h.got()
	if want := []id.EventID{"$first", "$second", "$third"}; !slices.Equal(handled, want) {
		t.Errorf("handled %v, want %v", handled, want)
	}
	if n := w.noted(); n != 0 {
		t.Errorf("%d events still noted after they were handled", n)
	}
	// The room's line is gone: the next message is handled at once.
	w.arrive("$fourth", true)
	if handled, _ := w.h.got(); len(handled) != 4 {
		t.Errorf("a message after the line drained was held: %v", handled)
	}
}

// A message whose key never comes is given up on when mautrix gives up
// (or the bound passes): the later ones are handled in order, the room is
// told which one was skipped, and a key that comes after all changes nothing.
func TestAMessageGivenUpOnLetsTheLaterOnesGoAndTheRoomIsTold(t *testing.T) {
	for _, how := range []string{"mautrix gives up", "the bound passes"} {
		t.Run(how, func(t *testing.T) {
			w := newOrderWorld(t)
			if how == "the bound passes" {
				w.b.lines.bound = 20 * time.Millisecond
			}
			first := w.arrive("$first", false)
			w.arrive("$second", true)
			if how == "mautrix gives up" {
				w.b.onDecryptError(first, errors.New("no session"))
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				if handled, _ := w.h.got(); len(handled) > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			handled, unread := w.h.got()
			if !slices.Equal(handled, []id.EventID{"$second"}) || !slices.Equal(unread, []id.EventID{"$first"}) {
				t.Fatalf("handled %v and unreadable %v, want [$second] and [$first]", handled, unread)
			}
			effects, err := w.st.DueEffects(context.Background(), time.Now().Add(time.Hour), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(effects) != 1 || !strings.Contains(string(effects[0].Payload), "I could not read the message @alice:x sent at") {
				t.Errorf("the room was not told once which message was skipped: %+v", effects)
			}
			w.decrypted("$first") // its key, after all
			if handled, _ := w.h.got(); len(handled) != 1 {
				t.Errorf("a message given up on was handled after the later ones: %v", handled)
			}
			if n := w.noted(); n != 0 {
				t.Errorf("%d events still noted", n)
			}
		})
	}
}

// Messages from before the bot joined (history, whose keys were never
// meant for it) hold nothing up.
func TestHistoryBeforeTheBotsJoinHoldsNothing(t *testing.T) {
	w := newOrderWorld(t)
	w.arrive("$history", false)
	prev := &event.Content{Raw: map[string]any{"membership": "invite"}}
	join := &event.Event{ID: "$join", RoomID: orderRoom, Sender: "@bot:x", Type: event.StateMember, StateKey: new("@bot:x"),
		Content:  event.Content{Raw: map[string]any{"membership": "join"}, Parsed: &event.MemberEventContent{Membership: event.MembershipJoin}},
		Unsigned: event.Unsigned{PrevContent: prev}, Mautrix: event.MautrixInfo{EventSource: event.SourceJoin | event.SourceTimeline}}
	w.b.dispatch(context.Background(), join)
	w.arrive("$after", true)
	handled, _ := w.h.got()
	if !slices.Contains(handled, "$after") {
		t.Errorf("a message after the bot's join waited for history: handled %v", handled)
	}
}

// An outsider's message whose key never comes holds up no one: only a
// team member's late message makes the later ones wait.
func TestAnOutsidersLateKeyHoldsNothingUp(t *testing.T) {
	w := newOrderWorld(t)
	w.b.IsTeam = func(who disclosure.Person) bool { return who == "matrix:@alice:x" }
	w.arriveFrom("@mallory:x", "$withheld", false)
	w.arrive("$command", true)
	if handled, _ := w.h.got(); !slices.Equal(handled, []id.EventID{"$command"}) {
		t.Errorf("handled %v, want the team's command at once", handled)
	}
	// Behind a team member's late message, an outsider's readable one
	// waits its turn (it may answer the command), an unreadable one does
	// not make the line longer.
	w.arrive("$late", false)
	w.arriveFrom("@reporter:x", "$answer", true)
	w.arriveFrom("@mallory:x", "$withheld2", false)
	w.arrive("$next", true)
	w.decrypted("$late")
	if handled, _ := w.h.got(); !slices.Equal(handled, []id.EventID{"$command", "$late", "$answer", "$next"}) {
		t.Errorf("handled %v, want [$command $late $answer $next]", handled)
	}
}

// A message already older than the bound when it arrives (history, or one
// noted before a restart whose key never came) holds nothing up.
func TestAStaleMessageHoldsNothingUp(t *testing.T) {
	w := newOrderWorld(t)
	w.arriveSent("@alice:x", "$old", false, time.Now().Add(-time.Hour))
	w.arrive("$new", true)
	if handled, _ := w.h.got(); !slices.Equal(handled, []id.EventID{"$new"}) {
		t.Errorf("handled %v, want [$new] at once", handled)
	}
}
