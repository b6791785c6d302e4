package chat_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

// toy is a second chat platform, in this test only: proof that the port
// is all the core needs. Its people are toy:NAME, its rooms toy:ROOM; it
// has no end-to-end encryption and vouches for accounts, not devices. It
// keeps what the core made it say, by room.
type toy struct {
	st   *store.Store
	name disclosure.Platform

	mu      sync.Mutex
	said    map[string][]string
	members map[string][]disclosure.Person
	rooms   int
}

const toyName disclosure.Platform = "toy"

func newToy(st *store.Store, name disclosure.Platform) *toy {
	return &toy{st: st, name: name, said: map[string][]string{}, members: map[string][]disclosure.Person{}}
}

func (p *toy) Name() disclosure.Platform { return p.name }
func (p *toy) Self() disclosure.Person   { return disclosure.PersonOn(p.name, "secbot") }
func (p *toy) Vouching() chat.Vouching   { return chat.VouchesForAccount }

func (p *toy) JoinRoom(context.Context, string) error          { return nil }
func (p *toy) LeaveRoom(context.Context, string, string) error { return nil }

// JoinedMemberCount: a DM is the reporter and the bot; the team room is
// the team.
func (p *toy) JoinedMemberCount(_ context.Context, room string) (int, error) {
	if strings.HasPrefix(chat.Native(room), "dm-") {
		return 2, nil
	}
	return 5, nil
}

func (p *toy) ParsePerson(s string) (disclosure.Person, bool) {
	name, ok := strings.CutPrefix(s, "~")
	return disclosure.PersonOn(p.name, name), ok && name != ""
}

func (p *toy) RoomLink(room string) string { return "toy://" + chat.Native(room) }

func (p *toy) Executors() map[string]outbox.Executor {
	return map[string]outbox.Executor{
		outbox.KindSend:           p.send,
		outbox.KindCreateCaseRoom: p.createCaseRoom,
		outbox.KindOpenDM:         p.openDM,
		outbox.KindInvite:         p.invite,
		outbox.KindReact:          func(context.Context, store.Effect) (any, error) { return nil, nil },
		outbox.KindKick:           func(context.Context, store.Effect) (any, error) { return nil, nil },
	}
}

// resolve is the room a target names, as the Matrix bot finds it.
func (p *toy) resolve(ctx context.Context, t outbox.Target) (string, error) {
	switch {
	case t.Room != "":
		return t.Room, nil
	case t.CaseRoomOf != "":
		id, err := disclosure.ParseCaseID(t.CaseRoomOf)
		if err != nil {
			return "", err
		}
		c, err := p.st.Case(ctx, id)
		if err != nil || c.CaseRoom == "" {
			return "", chat.ErrNotReady
		}
		return c.CaseRoom, nil
	default:
		room, err := p.st.DMRoom(ctx, t.DMWith)
		if errors.Is(err, store.ErrNotFound) {
			return "", chat.ErrNotReady
		}
		return room, err
	}
}

func (p *toy) send(ctx context.Context, e store.Effect) (any, error) {
	var s outbox.SendEffect
	if err := e.Decode(&s); err != nil {
		return nil, err
	}
	room, err := p.resolve(ctx, s.To)
	if err != nil {
		return nil, err
	}
	if disclosure.RoomPlatform(room) != p.name {
		return nil, fmt.Errorf("the toy was handed %q", room)
	}
	p.mu.Lock()
	p.said[room] = append(p.said[room], templates.Unescape(s.Markdown))
	p.mu.Unlock()
	return nil, nil
}

func (p *toy) createCaseRoom(ctx context.Context, e store.Effect) (any, error) {
	var c outbox.CreateCaseRoomEffect
	if err := e.Decode(&c); err != nil {
		return nil, err
	}
	id, err := disclosure.ParseCaseID(c.CaseID)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.rooms++
	room := disclosure.On(p.name, fmt.Sprintf("case-%d", p.rooms))
	p.members[room] = c.Invite
	p.mu.Unlock()
	return nil, p.st.SetCaseRoom(ctx, id, room, time.Now())
}

func (p *toy) openDM(ctx context.Context, e store.Effect) (any, error) {
	var d outbox.OpenDMEffect
	if err := e.Decode(&d); err != nil {
		return nil, err
	}
	room := disclosure.On(p.name, "dm-"+d.User.Native())
	if err := p.st.SetDMRoomOf(ctx, d.User, room, time.Now()); err != nil {
		return nil, err
	}
	if d.CaseID == "" {
		return nil, nil
	}
	id, err := disclosure.ParseCaseID(d.CaseID)
	if err != nil {
		return nil, err
	}
	return nil, p.st.SetDMRoom(ctx, id, room, time.Now())
}

func (p *toy) invite(ctx context.Context, e store.Effect) (any, error) {
	var i outbox.InviteEffect
	if err := e.Decode(&i); err != nil {
		return nil, err
	}
	room, err := p.resolve(ctx, i.To)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.members[room] = append(p.members[room], i.User)
	p.mu.Unlock()
	return nil, nil
}

// heard reports whether the toy said something containing all of parts
// in room.
func (p *toy) heard(room string, parts ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, text := range p.said[room] {
		for _, part := range parts {
			if !strings.Contains(text, part) {
				continue next
			}
		}
		return true
	}
	return false
}

func (p *toy) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%q", p.said)
}

// A platform the core has never heard of, registered beside nothing else,
// takes a report by DM, gets its case room, the team's ladder when the
// team is late, and runs a team command: through the real dispatch,
// handlers, domain, store, timers and outbox, with nothing changed outside
// this test.
func TestASecondPlatformRunsTheWholeFlowThroughThePort(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	span := func(s string) disclosure.Span {
		sp, err := disclosure.ParseSpan(s)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	notify := func(s string) disclosure.Notify {
		n, err := disclosure.ParseNotify(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cal, err := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := disclosure.PersonOn(toyName, "alice"), disclosure.PersonOn(toyName, "bob")
	rita := disclosure.PersonOn(toyName, "rita")
	team, ritaDM := disclosure.On(toyName, "team"), disclosure.On(toyName, "dm-rita")
	policy := disclosure.NewInForce(disclosure.Policy{
		SLA:      disclosure.SLA{Acknowledge: span("48h"), DetailedResponse: span("96h"), UpdateInterval: span("5 working days"), RemindBefore: span("12h"), RepeatEvery: span("24h")},
		Calendar: cal, Ladder: disclosure.Ladder{{After: span("0s"), Notify: notify("coordinator")}, {After: span("24h"), Notify: notify("backup")}},
		TeamRoom: team, Team: []disclosure.Person{alice, bob}, Coordinator: alice, Backup: bob, CommandPrefix: "!sec",
	})
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) // a Monday
	platform, other := newToy(st, toyName), newToy(st, "other")
	platforms := chat.NewPlatforms(platform, other)
	runner := outbox.New(st, clock, zerolog.Nop(), func(err error) bool { return errors.Is(err, chat.ErrPermanent) }, func(err error) bool { return errors.Is(err, chat.ErrNotReady) })
	router := chat.Router{Platforms: platforms, CaseRoom: func(ctx context.Context, id disclosure.CaseID) (string, error) {
		c, err := st.Case(ctx, id)
		if err != nil {
			return "", err
		}
		return c.CaseRoom, nil
	}}
	for kind, ex := range router.Executors() {
		runner.Register(kind, ex)
	}
	h := handlers.New(policy, st, platforms, tmpl, clock, nil)
	tm := timers.NewTimers(st, clock, policy, h, zerolog.Nop(), nil)
	in := chat.Dispatch{In: h, Log: zerolog.Nop(), CommandOf: h.CommandOf}
	drain := func() {
		t.Helper()
		for range 20 {
			n, err := runner.RunDue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			clock.Advance(time.Minute) // past a not-ready effect's short wait
		}
	}
	n := 0
	say := func(room string, who disclosure.Person, text string) {
		t.Helper()
		n++
		msg := chat.Message{ID: fmt.Sprintf("toy-%d", n), Room: room, Sender: who, Sent: clock.Now(), Text: text,
			Identity: &disclosure.Identity{Current: "account-" + who.Native(), DeviceSigned: true}}
		if err := in.Message(ctx, msg); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		drain()
	}

	// Intake by DM: the answer in the DM, the case room on the toy with
	// the reporter and the team in it, the team told.
	say(ritaDM, rita, "I want to report a security issue")
	if !platform.heard(ritaDM, "SR-2026-0001") {
		t.Fatalf("the reporter got no answer in their DM: %s", platform.dump())
	}
	c, err := st.Case(ctx, disclosure.CaseID{Year: 2026, Seq: 1})
	if err != nil || c.Reporter != rita || disclosure.RoomPlatform(c.CaseRoom) != toyName {
		t.Fatalf("the case: %+v, %v", c, err)
	}
	if got := fmt.Sprint(platform.members[c.CaseRoom]); !strings.Contains(got, string(rita)) || !strings.Contains(got, string(alice)) || !strings.Contains(got, string(bob)) {
		t.Errorf("the case room's people: %s", got)
	}
	if !platform.heard(team, "New security report", "SR-2026-0001") || !platform.heard(c.CaseRoom, "Security report SR-2026-0001") {
		t.Errorf("the team room or the case room was not told: %s", platform.dump())
	}

	// The ladder: nobody acknowledged. A reminder 12h before the
	// deadline; past it, the coordinator, a day later the backup, each in
	// their DM, and the reporter told the team was chased.
	tick := func(to time.Duration) {
		t.Helper()
		clock.Advance(to - clock.Since(c.CreatedAt))
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	tick(36*time.Hour + time.Minute)
	if !platform.heard(team, "Reminder for **SR-2026-0001**", "acknowledgement") {
		t.Errorf("the team room got no reminder: %s", platform.dump())
	}
	tick(48*time.Hour + time.Minute)
	if !platform.heard(disclosure.On(toyName, "dm-alice"), "SR-2026-0001", "You are the security coordinator") {
		t.Errorf("the coordinator was not told of the missed acknowledgement: %s", platform.dump())
	}
	if !platform.heard(c.CaseRoom, "I have escalated") {
		t.Errorf("the reporter was not told of the escalation: %s", platform.dump())
	}
	if platform.heard(disclosure.On(toyName, "dm-bob"), "SR-2026-0001") {
		t.Errorf("the backup was told before their step: %s", platform.dump())
	}
	tick(72*time.Hour + 2*time.Minute)
	if !platform.heard(disclosure.On(toyName, "dm-bob"), "SR-2026-0001", "You are the backup contact") {
		t.Errorf("the backup was not told: %s", platform.dump())
	}

	// A team command in the case room, from the toy's own account trust.
	say(c.CaseRoom, bob, "!sec claim")
	c, err = st.Case(ctx, c.ID)
	if err != nil || c.Handler != bob || c.Stage == disclosure.StageReceived {
		t.Fatalf("after bob's claim: %+v, %v; said %s", c, err, platform.dump())
	}
	if !platform.heard(c.CaseRoom, "toy:bob is handling it") {
		t.Errorf("the case room did not hear who handles it: %s", platform.dump())
	}
	// Someone not on the team changes nothing.
	say(c.CaseRoom, rita, "!sec reject nothing")
	if c, _ := st.Case(ctx, c.ID); c.Stage == disclosure.StageRejected {
		t.Error("the reporter rejected their own case")
	}
	// A reporter on another platform than the team's gets their case, is
	// told in their DM where their private area is, is not in the case
	// room, and reads the team's response in that DM.
	olga, olgaDM := disclosure.PersonOn("other", "olga"), disclosure.On("other", "dm-olga")
	say(olgaDM, olga, "I want to report a security issue")
	if !other.heard(olgaDM, "SR-2026-0002", "another chat") {
		t.Errorf("the other platform's reporter was not told where to go: %s", other.dump())
	}
	c2, err := st.Case(ctx, disclosure.CaseID{Year: 2026, Seq: 2})
	if err != nil || disclosure.RoomPlatform(c2.CaseRoom) != toyName || slices.Contains(platform.members[c2.CaseRoom], olga) {
		t.Fatalf("the second case: %+v, %v, room people %v", c2, err, platform.members[c2.CaseRoom])
	}
	say(c2.CaseRoom, alice, "!sec respond We can reproduce it; a fix is on its way.")
	if !other.heard(olgaDM, "We can reproduce it") {
		t.Errorf("the response did not reach the reporter's DM: %s", other.dump())
	}
}
