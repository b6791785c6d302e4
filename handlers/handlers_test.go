package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

// fakeChat is the chat platform the handlers need (Matrix), recording
// nothing: the effects they decide are read back from the outbox.
type fakeChat struct {
	left *[]string
	// members, if it names a room, is how many members it has now.
	members map[string]int
}

func (fakeChat) Name() disclosure.Platform              { return disclosure.Matrix }
func (fakeChat) Self() disclosure.Person                { return "matrix:@secbot:x" }
func (fakeChat) Vouching() chat.Vouching                { return chat.VouchesForDevices }
func (fakeChat) Executors() map[string]outbox.Executor  { return nil }
func (fakeChat) RoomLink(room string) string            { return "https://matrix.to/#/" + chat.Native(room) }
func (fakeChat) JoinRoom(context.Context, string) error { return nil }
func (fakeChat) ParsePerson(s string) (disclosure.Person, bool) {
	_, _, err := id.UserID(s).Parse()
	return disclosure.PersonOn(disclosure.Matrix, s), err == nil && strings.HasPrefix(s, "@")
}
func (f fakeChat) LeaveRoom(_ context.Context, room, _ string) error {
	if f.left != nil {
		*f.left = append(*f.left, room)
	}
	return nil
}
func (fakeChat) HasEncryption(_ context.Context, user disclosure.Person) (bool, error) {
	return !strings.HasPrefix(chat.Native(string(user)), "@plain"), nil
}
func (f fakeChat) JoinedMemberCount(_ context.Context, room string) (int, error) {
	if n, ok := f.members[room]; ok {
		return n, nil
	}
	if strings.HasPrefix(chat.Native(room), "!public") {
		return 40, nil // a public room: many members
	}
	if strings.HasPrefix(chat.Native(room), "!crowded") {
		return 3, nil // a "direct chat" someone invited a third person to
	}
	return 2, nil
}

type world struct {
	t      *testing.T
	h      *Handlers
	store  *store.Store
	clock  *clockwork.FakeClock
	timers *timers.Timers
	policy *disclosure.InForce
	n      int
	// unsigned makes the team's messages come from devices their
	// identity did not sign.
	unsigned bool
	// published overrides a member's published identity (default
	// "KEY-" and their ID).
	published map[disclosure.Person]string
}

// identity is what the chat says of sender's device: team members write
// from devices signed by their pinned identity, unless w.unsigned.
func (w *world) identity(sender disclosure.Person) *disclosure.Identity {
	if !w.policy.Get().IsTeam(sender) {
		return nil
	}
	key := "KEY-" + string(sender)
	if k, ok := w.published[sender]; ok {
		key = k
	}
	return &disclosure.Identity{Current: key, DeviceSigned: !w.unsigned}
}

// Identity is the chat's word on who's published identity.
func (w *world) Identity(_ context.Context, who disclosure.Person) (disclosure.Identity, error) {
	if id := w.identity(who); id != nil {
		return disclosure.Identity{Current: id.Current}, nil
	}
	return disclosure.Identity{}, nil
}

func (w *world) TrustChanged(context.Context, disclosure.Person) {}

// withIdentities is a platform that publishes identities, as ids tells.
type withIdentities struct {
	fakeChat
	ids chat.Identities
}

func (p withIdentities) Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error) {
	return p.ids.Identity(ctx, who)
}
func (p withIdentities) TrustChanged(ctx context.Context, member disclosure.Person) {
	p.ids.TrustChanged(ctx, member)
}

// useIdentities makes the world's chat publish the world's identities.
func (w *world) useIdentities() { w.h.platforms = chat.NewPlatforms(withIdentities{ids: w}) }

const (
	alice    disclosure.Person = "matrix:@alice:x"
	bob      disclosure.Person = "matrix:@bob:x"
	carol    disclosure.Person = "matrix:@carol:x"
	reporter disclosure.Person = "matrix:@reporter:x"
	dmRoom   string            = "matrix:!dm:x"
	caseRoom string            = "matrix:!case:x"
	teamRoom string            = "matrix:!team:x"
)

func span(t *testing.T, s string) disclosure.Span {
	sp, err := disclosure.ParseSpan(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func newWorld(t *testing.T, start time.Time) *world {
	st := openStore(t)
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cal, _ := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	notify, _ := disclosure.ParseNotify("coordinator")
	backup, _ := disclosure.ParseNotify("backup")
	team, _ := disclosure.ParseNotify("team")
	policy := disclosure.NewInForce(disclosure.Policy{
		SLA:      disclosure.SLA{Acknowledge: span(t, "48h"), DetailedResponse: span(t, "96h"), UpdateInterval: span(t, "5 working days"), RemindBefore: span(t, "12h"), RepeatEvery: span(t, "24h")},
		Calendar: cal, Ladder: disclosure.Ladder{{After: span(t, "0s"), Notify: notify}, {After: span(t, "24h"), Notify: backup}, {After: span(t, "48h"), Notify: team}},
		TeamRoom: string(teamRoom), Team: []disclosure.Person{alice, bob, carol}, Coordinator: alice, Backup: bob, CommandPrefix: "!sec",
	})
	clock := clockwork.NewFakeClockAt(start)
	h := New(policy, st, chat.NewPlatforms(fakeChat{}), tmpl, clock, nil)
	timers := timers.NewTimers(st, clock, policy, h, zerolog.Nop(), nil)
	for _, m := range policy.Get().Team {
		if err := st.PinIdentity(context.Background(), store.Identity{Member: m, MasterKey: "KEY-" + string(m), PinnedAt: start}); err != nil {
			t.Fatal(err)
		}
	}
	return &world{t: t, h: h, store: st, clock: clock, timers: timers, policy: policy}
}

// say delivers a text message and returns the bot's newest answer.
func (w *world) say(room string, sender disclosure.Person, text string) string {
	w.t.Helper()
	w.n++
	msg := chat.Message{ID: string(fmt.Sprintf("$e%d", w.n)), Room: room, Sender: sender, Sent: w.clock.Now(), Text: text, Identity: w.identity(sender)}
	before := w.sends()
	if err := w.h.HandleMessage(context.Background(), msg); err != nil {
		w.t.Fatalf("%s: %v", text, err)
	}
	after := w.sends()
	if len(after) == len(before) {
		return ""
	}
	return after[len(after)-1]
}

// tick runs the timers once and returns how many firings they made.
func (w *world) tick() int {
	w.t.Helper()
	n, err := w.timers.Tick(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// sends is what the bot said, as people read it (escapes dropped).
func (w *world) sends() []string {
	out := w.rawSends()
	for i := range out {
		out[i] = templates.Unescape(out[i])
	}
	return out
}

// rawSends is what the bot said, as the Markdown it sends.
func (w *world) rawSends() []string {
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]string, len(effects))
	for i, e := range effects {
		var p outbox.SendEffect
		_ = e.Decode(&p)
		out[i] = p.Markdown
	}
	return out
}

func (w *world) deadline(kind disclosure.DeadlineKind) *store.Deadline {
	w.t.Helper()
	d, err := w.store.Deadline(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1}, kind)
	if err != nil {
		w.t.Fatalf("%s deadline: %v", kind, err)
	}
	return d
}

// openCase has the reporter ask in the DM and gives the case its room.
func (w *world) openCase() {
	w.t.Helper()
	w.say(dmRoom, reporter, "I want to report a security issue")
	if err := w.store.SetCaseRoom(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1}, caseRoom, w.clock.Now()); err != nil {
		w.t.Fatal(err)
	}
}

var monday = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestEscalateIsAllowedOnlyWhenThePolicySaysSo(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "Nothing is overdue yet") || !strings.Contains(got, "2026-11-27 10:00") {
		t.Errorf("before the detailed response is due: %q", got)
	}
	// A missed acknowledgement alone does not open !escalate: the policy
	// names the detailed response and the updates.
	w.clock.Advance(50 * time.Hour)
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "Nothing is overdue yet") {
		t.Errorf("after a missed acknowledgement: %q", got)
	}
	w.clock.Advance(50 * time.Hour) // past the detailed response
	// The bot's own ladder has not run yet: its first step is due, so the
	// reporter hears it is on its way, and nothing is fired twice.
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "on its way to the security coordinator, @alice:x") {
		t.Errorf("after a missed detailed response: %q", got)
	}
	w.tick()
	// The ladder told the coordinator: the reporter's escalation reaches
	// the next contact, the backup, at once (not in 24 hours).
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "escalated the overdue detailed response to the backup contact, @bob:x,") {
		t.Errorf("after the ladder told the coordinator: %q", got)
	}
	if n := w.tick(); n != 1 {
		t.Errorf("the reporter's escalation fired %d steps, want 1", n)
	}
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "to the whole security team") {
		t.Errorf("after the backup was told: %q", got)
	}
	w.tick()
	if got := w.say(caseRoom, reporter, "!escalate"); !strings.Contains(got, "Everyone on the escalation ladder has been told") {
		t.Errorf("after every step was used: %q", got)
	}
	if n := w.tick(); n != 0 {
		t.Errorf("an exhausted ladder fired %d more steps at once", n)
	}
	if got := w.say(dmRoom, "matrix:@stranger:x", "!escalate"); !strings.Contains(got, "no open report") {
		t.Errorf("someone without a case: %q", got)
	}
}

func TestTheUpdateClockRestartsOnEachUpdate(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	if _, err := w.store.Deadline(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1}, disclosure.DeadlineUpdate); err == nil {
		t.Fatal("the update clock runs before the detailed response")
	}
	w.clock.Advance(3 * time.Hour)
	w.say(caseRoom, alice, "!sec respond We reproduced it; next steps follow.")
	if ack := w.deadline(disclosure.DeadlineAcknowledge); !ack.Met() {
		t.Error("the detailed response does not count as acknowledgement")
	}
	first := w.deadline(disclosure.DeadlineUpdate)
	if want := time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC); !first.DueAt.Equal(want) {
		t.Errorf("first update due %s, want %s (5 working days)", first.DueAt, want)
	}
	w.clock.Advance(4 * 24 * time.Hour) // Friday 13:00
	w.say(caseRoom, bob, "Quick note: the fix is under review.")
	second := w.deadline(disclosure.DeadlineUpdate)
	if want := time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC); !second.DueAt.Equal(want) || second.Generation <= first.Generation {
		t.Errorf("after a team message the update is due %s (generation %d), want %s and a new generation", second.DueAt, second.Generation, want)
	}
	w.clock.Advance(24 * time.Hour)
	w.say(teamRoom, alice, "!sec update SR-2026-0001 A release is planned for next week.")
	if third := w.deadline(disclosure.DeadlineUpdate); !third.DueAt.After(second.DueAt) {
		t.Errorf("!sec update did not restart the clock: %s", third.DueAt)
	}
	// The reporter's own messages do not count as the team's word.
	before := w.deadline(disclosure.DeadlineUpdate)
	w.clock.Advance(time.Hour)
	w.say(caseRoom, reporter, "Any news?")
	if after := w.deadline(disclosure.DeadlineUpdate); !after.DueAt.Equal(before.DueAt) {
		t.Error("a reporter's message restarted the team's update clock")
	}
}

func TestRefusedCommandsChangeNothing(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	for _, text := range []string{"!sec claim", "!sec confirm 1.0", "!sec reject spam", "!sec embargo propose 2099-01-01", "!sec publish --force", "!sec close"} {
		if got := w.say(caseRoom, reporter, text); !strings.Contains(got, "Only the security team") {
			t.Errorf("%s by the reporter: %q", text, got)
		}
		w.clock.Advance(ChatterWindow) // each is answered, not limited
	}
	c, _ := w.store.Case(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1})
	if c.Stage != disclosure.StageReceived || c.Handler != "" {
		t.Errorf("the case changed: %s %s", c.Stage, c.Handler)
	}
	if e, _ := w.store.Embargo(context.Background(), c.ID); e.State != disclosure.EmbargoNone {
		t.Errorf("an embargo appeared: %+v", e)
	}
	// Out of order, even for the team: a one-line answer, no change.
	if got := w.say(caseRoom, alice, "!sec publish"); !strings.Contains(got, "Refused") || strings.Contains(got, "\n") {
		t.Errorf("publish before confirm: %q", got)
	}
	if got := w.say(caseRoom, alice, "!sec embargo propose 2020-01-01"); !strings.Contains(got, "not in the future") {
		t.Errorf("a past embargo date: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec status SR-2026-0099"); !strings.Contains(got, "no case SR-2026-0099") {
		t.Errorf("an unknown case: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec assign SR-2026-0001 @mallory:x"); !strings.Contains(got, "not on the security team") {
		t.Errorf("assigning an outsider: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec claim"); !strings.Contains(got, "which case?") {
		t.Errorf("a missing case: %q", got)
	}
}

func TestStatsCountKeptPromises(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	w.clock.Advance(2 * time.Hour)
	w.say(caseRoom, alice, "!sec claim")
	w.clock.Advance(120 * time.Hour) // the detailed response comes late
	w.say(caseRoom, alice, "!sec confirm 1.0")
	got := w.say(teamRoom, alice, "!sec stats 30")
	for _, want := range []string{"| acknowledgement | 100% (1/1) | 2h0m0s |", "| detailed response | 0% (0/1) | 122h0m0s |"} {
		if !strings.Contains(got, want) {
			t.Errorf("stats lack %q:\n%s", want, got)
		}
	}
}

func TestRotationSuggestsHandlersRoundRobin(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.Rotation = true
	w.policy.Set(p) // as a reload would, not by editing the policy in force
	want := []disclosure.Person{alice, bob, carol}
	for i, who := range want {
		w.say(string(fmt.Sprintf("matrix:!dm%d:x", i)), disclosure.Person(fmt.Sprintf("matrix:@r%d:x", i)), "I want to report a security issue")
		found := false
		for _, md := range w.sends() {
			if strings.Contains(md, fmt.Sprintf("SR-2026-%04d", i+1)) && strings.Contains(md, "Next handler in the rotation: "+who.String()) {
				found = true
			}
		}
		if !found {
			t.Errorf("case %d: no suggestion of %s in the team room", i+1, who)
		}
	}
}

func TestARequestLoopGetsOneCaseAndOneLimitMessage(t *testing.T) {
	w := newWorld(t, monday)
	before := len(w.sends())
	for range 50 {
		w.say(dmRoom, reporter, "I want to report a security issue")
	}
	replies := w.sends()[before:]
	limits := 0
	for _, md := range replies {
		if strings.Contains(md, "stay quiet for a minute") {
			limits++
		}
	}
	if limits != 1 {
		t.Errorf("%d limit messages, want 1", limits)
	}
	// The first request opens the case (answer, welcome, team note); then
	// a few pointers, one limit message and silence.
	if len(replies) > 3+ChatterBurst+1 {
		t.Errorf("50 requests got %d replies", len(replies))
	}
	cases, err := w.store.OpenCases(context.Background())
	if err != nil || len(cases) != 1 {
		t.Fatalf("open cases: %d, %v", len(cases), err)
	}
	// A minute later the reporter is answered again.
	w.clock.Advance(ChatterWindow)
	if got := w.say(dmRoom, reporter, "hello?"); !strings.Contains(got, "already have an open report") {
		t.Errorf("after the window: %q", got)
	}
}

func TestAReloadedTeamTakesEffect(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	const dave disclosure.Person = "matrix:@dave:x"
	if got := w.say(teamRoom, dave, "!sec list"); !strings.Contains(got, "Only the security team") {
		t.Fatalf("dave before joining the team: %q", got)
	}
	p := *w.policy.Get()
	p.Team = []disclosure.Person{alice, dave}
	w.policy.Set(p) // what SIGHUP does with the new config
	if got := w.say(teamRoom, dave, "!sec list"); !strings.Contains(got, "SR-2026-0001") {
		t.Errorf("dave after the reload: %q", got)
	}
	if got := w.say(teamRoom, bob, "!sec list"); !strings.Contains(got, "Only the security team") {
		t.Errorf("bob after leaving the team: %q", got)
	}
}

func TestFinishedCasesStayQuiet(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	open := func(n int) (disclosure.Person, string, disclosure.CaseID) {
		who, room := disclosure.Person(fmt.Sprintf("matrix:@r%d:x", n)), string(fmt.Sprintf("matrix:!case%d:x", n))
		w.say(string(fmt.Sprintf("matrix:!dm%d:x", n)), who, "I want to report a security issue")
		caseID := disclosure.CaseID{Year: 2026, Seq: n}
		if err := w.store.SetCaseRoom(ctx, caseID, room, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		return who, room, caseID
	}
	r1, published, _ := open(1)
	r2, rejected, _ := open(2)
	r3, closed, _ := open(3)
	for _, text := range []string{"!sec claim", "!sec confirm 1.0", "!sec audit start", "!sec audit done", "!sec publish"} {
		w.say(published, alice, text)
	}
	w.say(rejected, alice, "!sec reject Not a vulnerability: the behaviour is documented.")
	w.say(closed, alice, "!sec reject Duplicate of an earlier report.")
	w.say(closed, alice, "!sec close")
	for caseRoom, want := range map[string]disclosure.Stage{published: disclosure.StagePublished, rejected: disclosure.StageRejected, closed: disclosure.StageClosed} {
		c, err := w.store.CaseByRoom(ctx, caseRoom)
		if err != nil || c.Stage != want {
			t.Fatalf("%s: stage %v (%v), want %s", caseRoom, c, err, want)
		}
	}
	before := len(w.sends())
	reporters := map[string]disclosure.Person{published: r1, rejected: r2, closed: r3}
	for day := range 30 {
		for room, reporter := range reporters {
			w.say(room, bob, fmt.Sprintf("Thanks again (day %d).", day))
			w.say(room, alice, "!sec update Nothing new.")
			w.say(room, reporter, "!escalate")
		}
		w.clock.Advance(24 * time.Hour)
		w.tick()
	}
	for _, md := range w.sends()[before:] {
		if strings.Contains(md, "Reminder for") || strings.Contains(md, "🚨") || strings.Contains(md, "escalated to the security team on your behalf") {
			t.Errorf("a finished case was chased: %q", md)
		}
	}
	next, err := w.store.NextDeadlineAt(ctx)
	if err != nil || !next.IsZero() {
		t.Errorf("a finished case has a running clock, due %s (%v)", next, err)
	}
	// And a published case can still be closed.
	if got := w.say(published, alice, "!sec close"); got != "" && strings.Contains(got, "Refused") {
		t.Errorf("closing the published case: %q", got)
	}
	if c, _ := w.store.CaseByRoom(ctx, published); c.Stage != disclosure.StageClosed {
		t.Errorf("the published case is %s after close", c.Stage)
	}
}

func TestOnlyTheCoordinatorEndsAnEmbargoEarly(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	for _, text := range []string{"!sec claim", "!sec confirm 1.0", "!sec embargo propose 2026-12-20"} {
		w.say(caseRoom, bob, text)
	}
	if got := w.say(caseRoom, reporter, "agree"); got != "" {
		t.Errorf("a bare \"agree\" was answered: %q", got)
	}
	if e, _ := w.store.Embargo(context.Background(), disclosure.CaseID{Year: 2026, Seq: 1}); e.State != disclosure.EmbargoProposed {
		t.Fatalf("a bare \"agree\" changed the embargo: %s", e.State)
	}
	w.say(caseRoom, reporter, "!agree")
	w.say(caseRoom, bob, "!sec audit start")
	w.say(caseRoom, bob, "!sec audit done")
	for _, text := range []string{"!sec embargo lift", "!sec publish --force", "!sec publish"} {
		if got := w.say(caseRoom, bob, text); !strings.Contains(got, "Refused") {
			t.Errorf("%s by a member: %q", text, got)
		}
	}
	id1 := disclosure.CaseID{Year: 2026, Seq: 1}
	if e, _ := w.store.Embargo(context.Background(), id1); e.State != disclosure.EmbargoActive {
		t.Fatalf("the embargo is %s after a member's refused commands", e.State)
	}
	if c, _ := w.store.Case(context.Background(), id1); c.Stage != disclosure.StageAuditDone {
		t.Fatalf("the case is %s after a refused publish", c.Stage)
	}
	before := len(w.sends())
	if got := w.say(caseRoom, alice, "!sec embargo lift"); !strings.Contains(got, "lifted") {
		t.Errorf("the coordinator's lift: %q", got)
	}
	told := false
	for _, md := range w.sends()[before:] {
		told = told || strings.Contains(md, "embargo") && strings.Contains(md, "SR-2026-0001") && !strings.Contains(md, "Refused")
	}
	if !told {
		t.Error("the reporter was not told the embargo ended")
	}
	if e, _ := w.store.Embargo(context.Background(), id1); e.State != disclosure.EmbargoExited {
		t.Errorf("the embargo is %s after the coordinator's lift", e.State)
	}
}

func TestAReloadMovesTeamNoticesToTheNewTeamRoom(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.TeamRoom = "matrix:!newteam:x"
	w.policy.Set(p)
	// What the GitHub effects read is the one policy in force.
	if got := w.policy.Get().TeamRoom; got != "matrix:!newteam:x" {
		t.Fatalf("team room in force: %s", got)
	}
	w.say(dmRoom, reporter, "I want to report a security issue")
	found := false
	effects, _, _ := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	for _, e := range effects {
		var s outbox.SendEffect
		_ = e.Decode(&s)
		if s.To.Room == "matrix:!newteam:x" {
			found = true
		}
		if s.To.Room == teamRoom {
			t.Errorf("a message went to the old team room: %q", s.Markdown)
		}
	}
	if !found {
		t.Error("nothing went to the new team room")
	}
}

func TestOnlyTheStepAReporterAskedForSaysSo(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	w.clock.Advance(97 * time.Hour) // the detailed response is overdue
	w.tick()                        // the ladder tells the coordinator
	w.say(caseRoom, reporter, "!escalate")
	before := len(w.sends())
	w.tick() // the backup, at the reporter's request
	asked := w.sends()[before:]
	if len(asked) == 0 || !strings.Contains(strings.Join(asked, "\n"), "asked for this with `!escalate`") {
		t.Fatalf("the reporter's escalation does not say so: %q", asked)
	}
	before = len(w.sends())
	w.clock.Advance(48 * time.Hour) // the ladder's own team step
	w.tick()
	for _, md := range w.sends()[before:] {
		if strings.Contains(md, "!escalate") {
			t.Errorf("the ladder's own step claims the reporter asked: %q", md)
		}
	}
	if len(w.sends()) == before {
		t.Error("the team step did not fire")
	}
}

func TestADirectChatWithThreeMembersIsLeftAndNotTrusted(t *testing.T) {
	w := newWorld(t, monday)
	var left []string
	const crowded = "matrix:!crowded-dm:x"
	members := map[string]int{crowded: 2}
	w.h.platforms = chat.NewPlatforms(fakeChat{left: &left, members: members})
	if err := w.h.HandleInvite(context.Background(), chat.Invite{Room: crowded, Sender: reporter, Direct: true}); err != nil {
		t.Fatal(err)
	}
	members[crowded] = 3
	// The inviter has since brought a third person in: nothing said there
	// is handled as a private chat, and the bot leaves.
	if got := w.say(crowded, reporter, "I want to report a security issue"); got != "" {
		t.Errorf("answered in a crowded direct chat: %q", got)
	}
	if got := w.say(crowded, alice, "!sec list"); !strings.Contains(got, "Refused") {
		t.Errorf("a team command answered in a crowded direct chat: %q", got)
	}
	if len(left) == 0 || left[0] != crowded {
		t.Errorf("left %v, want %s", left, crowded)
	}
	if cases, _ := w.store.OpenCases(context.Background()); len(cases) != 0 {
		t.Errorf("%d cases opened from a crowded direct chat", len(cases))
	}
	if _, err := w.store.DMRoom(context.Background(), reporter); err == nil {
		t.Error("the crowded room is still the reporter's direct chat")
	}
	entries, _ := w.store.AuditBy(context.Background(), reporter)
	if len(entries) == 0 || entries[len(entries)-1].Action != "direct-chat.leave" {
		t.Errorf("not audited: %+v", entries)
	}
}

func TestTheAuditLogKeepsNoTextOfOutsiders(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	const canary = "CANARY-heap-overflow-in-parser"
	for _, text := range []string{"!sec " + canary, "!sec status " + canary, "!sec update " + canary, "!sec reject " + canary} {
		w.say(caseRoom, reporter, text)
		w.say(teamRoom, "matrix:@mallory:x", text)
		w.clock.Advance(ChatterWindow) // outsiders' refusals are audited once a window
	}
	var rows []string
	for _, who := range []disclosure.Person{reporter, "matrix:@mallory:x"} {
		entries, err := w.store.AuditBy(context.Background(), who)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Allowed {
				rows = append(rows, e.Action+" "+e.Detail)
			}
		}
	}
	if len(rows) != 8 {
		t.Errorf("%d refusals audited, want 8", len(rows))
	}
	for _, row := range rows {
		if strings.Contains(row, "CANARY") {
			t.Errorf("the audit log keeps an outsider's text: %q", row)
		}
	}
}

func TestAReporterWhoLeftIsInvitedAgain(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	invites := func() []outbox.InviteEffect {
		effects, _, _ := w.store.EffectsOfKind(context.Background(), outbox.KindInvite)
		var out []outbox.InviteEffect
		for _, e := range effects {
			var p outbox.InviteEffect
			_ = e.Decode(&p)
			out = append(out, p)
		}
		return out
	}
	if got := w.say(dmRoom, reporter, "!invite"); !strings.Contains(got, "invited to the room of SR-2026-0001") {
		t.Errorf("the reporter's !invite: %q", got)
	}
	if got := invites(); len(got) != 1 || got[0].User != reporter || got[0].To.CaseRoomOf != "SR-2026-0001" {
		t.Errorf("invites %+v", got)
	}
	if got := w.say(dmRoom, reporter, "invite"); got == "" || strings.Contains(got, "invited") {
		t.Errorf("a bare \"invite\" invited: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec invite SR-2026-0001 @mallory:x"); !strings.Contains(got, "Refused") {
		t.Errorf("inviting a stranger: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec invite SR-2026-0001 @carol:x"); !strings.Contains(got, "@carol:x is invited") {
		t.Errorf("inviting a team member: %q", got)
	}
	if n := len(invites()); n != 2 {
		t.Errorf("%d invites, want 2", n)
	}
}

func TestCaseRoomsFollowTheTeam(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	if err := w.h.FollowTeam(ctx); err != nil { // the first start records the team
		t.Fatal(err)
	}
	w.openCase()
	before := len(w.sends())
	p := *w.policy.Get()
	p.Team = []disclosure.Person{alice, carol, "matrix:@dave:x"} // bob left, dave joined
	w.policy.Set(p)
	if err := w.h.FollowTeam(ctx); err != nil {
		t.Fatal(err)
	}
	invites, _, _ := w.store.EffectsOfKind(ctx, outbox.KindInvite)
	kicks, _, _ := w.store.EffectsOfKind(ctx, outbox.KindKick)
	var invite outbox.InviteEffect
	var kick outbox.KickEffect
	if len(invites) != 1 || invites[0].Decode(&invite) != nil || invite.User != "matrix:@dave:x" || invite.To.CaseRoomOf != "SR-2026-0001" {
		t.Errorf("invites %+v", invite)
	}
	if len(kicks) != 1 || kicks[0].Decode(&kick) != nil || kick.User != bob {
		t.Errorf("removals %+v", kick)
	}
	told := w.sends()[before:]
	if len(told) != 1 || !strings.Contains(told[0], "matrix:@dave:x is invited") || !strings.Contains(told[0], "matrix:@bob:x is removed") {
		t.Errorf("the team room was told %q", told)
	}
	// Again, with nothing changed: nothing more.
	if err := w.h.FollowTeam(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := w.store.EffectsOfKind(ctx, outbox.KindInvite); len(again) != 1 {
		t.Errorf("%d invites after a second look, want still 1", len(again))
	}
	entries, _ := w.store.AuditOf(ctx, "SR-2026-0001")
	if last := entries[len(entries)-1]; last.Action != "team.follow" {
		t.Errorf("not audited: %+v", last)
	}
}

func TestPublishedMeansGitHubPublishedIt(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.GitHub = true
	w.policy.Set(p)
	w.openCase()
	ctx := context.Background()
	id1 := disclosure.CaseID{Year: 2026, Seq: 1}
	for _, text := range []string{"!sec claim", "!sec confirm 1.0", "!sec audit start", "!sec audit done", "!sec summary Overflow", "!sec description An overflow.", "!sec publish"} {
		w.say(caseRoom, alice, text)
	}
	if c, _ := w.store.Case(ctx, id1); c.Stage != disclosure.StageAuditDone {
		t.Fatalf("the stage moved to %s before GitHub published", c.Stage)
	}
	if announces, _, _ := w.store.EffectsOfKind(ctx, outbox.KindAnnounce); len(announces) != 0 {
		t.Fatal("the announcement was queued before GitHub published")
	}
	confirmation := store.Effect{Kind: outbox.KindPublished, Payload: []byte(`{"case_id":"SR-2026-0001"}`)}
	for range 2 { // GitHub's confirmation, and a retry of it
		if _, err := w.h.Published(ctx, confirmation); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := w.store.Case(ctx, id1); c.Stage != disclosure.StagePublished {
		t.Errorf("after GitHub published, the stage is %s", c.Stage)
	}
	if announces, _, _ := w.store.EffectsOfKind(ctx, outbox.KindAnnounce); len(announces) != 1 {
		t.Errorf("%d announcements queued, want 1", len(announces))
	}
	if next, _ := w.store.NextDeadlineAt(ctx); !next.IsZero() {
		t.Errorf("a clock still runs after publishing: %s", next)
	}
}

func TestABurstOfReportsGetsAnswersAtOnceAndRoomsAsTheCapAllows(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.MaxNewCasesPerHour = 2
	w.policy.Set(p)
	ctx := context.Background()
	for i := range 4 {
		who := disclosure.Person(fmt.Sprintf("matrix:@burst%d:x", i))
		if got := w.say(string(fmt.Sprintf("matrix:!burstdm%d:x", i)), who, "I want to report a security issue"); got == "" {
			t.Errorf("reporter %d got no answer", i)
		}
	}
	rooms, _, _ := w.store.EffectsOfKind(ctx, outbox.KindCreateCaseRoom)
	if len(rooms) != 4 {
		t.Fatalf("%d case rooms recorded, want 4 (none lost)", len(rooms))
	}
	due, _ := w.store.DueEffects(ctx, w.clock.Now(), 100)
	now := 0
	for _, e := range due {
		if e.Kind == outbox.KindCreateCaseRoom {
			now++
		}
	}
	if now != 2 {
		t.Errorf("%d case rooms may be made now, want the cap of 2", now)
	}
	told := 0
	for _, md := range w.sends() {
		if strings.Contains(md, "More than 2 new reports came within an hour") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the team room was told %d times, want once", told)
	}
	w.clock.Advance(time.Hour)
	due, _ = w.store.DueEffects(ctx, w.clock.Now(), 100)
	later := 0
	for _, e := range due {
		if e.Kind == outbox.KindCreateCaseRoom {
			later++
		}
	}
	if later != 4 {
		t.Errorf("an hour later %d case rooms may be made, want all 4", later)
	}
}

// A two-person room is a reporter's DM in all but name, but not the place
// for team commands: others may join it later and read its history. Only
// a member's own direct chat shows every case.
func TestTeamCommandsShowEveryCaseOnlyInTheMembersOwnDirectChat(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	ctx := context.Background()
	if got := w.say("matrix:!two-people:x", alice, "!sec list"); !strings.Contains(got, "Refused") || strings.Contains(got, "SR-2026-0001") {
		t.Errorf("a two-person room that is not alice's direct chat: %q", got)
	}
	if err := w.store.SetDMRoomOf(ctx, alice, "matrix:!alice-dm:x", w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := w.say("matrix:!alice-dm:x", alice, "!sec list"); !strings.Contains(got, "SR-2026-0001") {
		t.Errorf("alice's own direct chat: %q", got)
	}
}

// A member who leaves the team but is on a case's need-to-know list stays
// in that case's room: the list is its own decision.
func TestLeavingTheTeamKeepsWhoNeedsToKnow(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	if err := w.h.FollowTeam(ctx); err != nil {
		t.Fatal(err)
	}
	w.openCase()
	if _, err := w.store.AddNeedToKnow(ctx, disclosure.CaseID{Year: 2026, Seq: 1}, bob, alice, "", w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	p := *w.policy.Get()
	p.Team = []disclosure.Person{alice, carol} // bob leaves the team
	w.policy.Set(p)
	if err := w.h.FollowTeam(ctx); err != nil {
		t.Fatal(err)
	}
	if kicks, _, _ := w.store.EffectsOfKind(ctx, outbox.KindKick); len(kicks) != 0 {
		t.Errorf("bob, on the need-to-know list, was removed from the case room (%d removals)", len(kicks))
	}
}

// GitHub publishing an advisory whose case was rejected meanwhile is told
// to the team, and nothing is announced.
func TestAPublicationAfterARejectionIsToldNotAnnounced(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.GitHub = true
	w.policy.Set(p)
	w.openCase()
	ctx := context.Background()
	for _, text := range []string{"!sec claim", "!sec confirm 1.0", "!sec audit start", "!sec audit done", "!sec summary Overflow", "!sec description An overflow.", "!sec publish", "!sec reject Not a vulnerability after all."} {
		w.say(caseRoom, alice, text)
	}
	before := len(w.sends())
	if _, err := w.h.Published(ctx, store.Effect{Kind: outbox.KindPublished, Payload: []byte(`{"case_id":"SR-2026-0001"}`)}); err != nil {
		t.Fatal(err)
	}
	if announces, _, _ := w.store.EffectsOfKind(ctx, outbox.KindAnnounce); len(announces) != 0 {
		t.Error("a rejected case was announced")
	}
	told := w.sends()[before:]
	if len(told) != 1 || !strings.Contains(told[0], "rejected while GitHub was publishing") {
		t.Errorf("the team was told %q", told)
	}
	if c, _ := w.store.Case(ctx, disclosure.CaseID{Year: 2026, Seq: 1}); c.Stage != disclosure.StageRejected {
		t.Errorf("the stage is %s", c.Stage)
	}
}

// An is_direct invite to a room with a third member pulls the bot in only
// for as long as it takes to count them: it leaves at once, without
// waiting for anyone to write, and the room is no one's direct chat.
func TestADirectInviteToAGroupRoomIsLeftAtOnce(t *testing.T) {
	w := newWorld(t, monday)
	var left []string
	w.h.platforms = chat.NewPlatforms(fakeChat{left: &left})
	const crowded = "matrix:!crowded-invite:x"
	if err := w.h.HandleInvite(context.Background(), chat.Invite{Room: crowded, Sender: reporter, Direct: true}); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != crowded {
		t.Errorf("left %v, want [%s]", left, crowded)
	}
	if _, err := w.store.DMRoom(context.Background(), reporter); err == nil {
		t.Error("the group room became the reporter's direct chat")
	}
	entries, _ := w.store.AuditBy(context.Background(), reporter)
	if len(entries) == 0 || entries[len(entries)-1].Action != "direct-chat.leave" {
		t.Errorf("not audited: %+v", entries)
	}
	// A real direct chat (two members) is kept.
	if err := w.h.HandleInvite(context.Background(), chat.Invite{Room: "matrix:!dm-ok:x", Sender: reporter, Direct: true}); err != nil {
		t.Fatal(err)
	}
	if dm, err := w.store.DMRoom(context.Background(), reporter); err != nil || dm != "matrix:!dm-ok:x" {
		t.Errorf("the two-member direct chat is not the reporter's: %q %v", dm, err)
	}
	if len(left) != 1 {
		t.Errorf("left a two-member direct chat: %v", left)
	}
}

// The same invite seen twice, first with two members and then with a
// third who joined in between, leaves the room and forgets it as the
// inviter's direct chat (seen once in CI on Dendrite).
func TestAnInviteSeenAgainWithAThirdMemberForgetsTheDirectChat(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	var left []string
	const room = "matrix:!grows:x"
	members := map[string]int{room: 2}
	w.h.platforms = chat.NewPlatforms(fakeChat{left: &left, members: members})
	invite := chat.Invite{Room: room, Sender: reporter, Direct: true}
	if err := w.h.HandleInvite(ctx, invite); err != nil {
		t.Fatal(err)
	}
	if dm, err := w.store.DMRoom(ctx, reporter); err != nil || dm != room {
		t.Fatalf("the two-member room is not the direct chat: %q %v", dm, err)
	}
	members[room] = 3
	if err := w.h.HandleInvite(ctx, invite); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != room {
		t.Errorf("left %v, want [%s]", left, room)
	}
	if dm, err := w.store.DMRoom(ctx, reporter); err == nil {
		t.Errorf("the crowded room is still the reporter's direct chat: %q", dm)
	}
}

// The configured team room is joined whoever invites the bot there (a
// reload may name a room a non-member of the team set up); other group
// rooms only on the team's invitation.
func TestTheTeamRoomIsJoinedWhoeverInvites(t *testing.T) {
	w := newWorld(t, monday)
	var left []string
	w.h.platforms = chat.NewPlatforms(fakeChat{left: &left})
	if err := w.h.HandleInvite(context.Background(), chat.Invite{Room: teamRoom, Sender: "matrix:@helper:x"}); err != nil {
		t.Fatal(err)
	}
	if err := w.h.HandleInvite(context.Background(), chat.Invite{Room: "matrix:!other:x", Sender: "matrix:@helper:x"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"matrix:!other:x"}) {
		t.Errorf("declined %v, want only !other:x", left)
	}
}

// A case room the platform cannot make for good (a server that encrypts
// private groups against bots) is told to the team room once and the
// reporter is answered in their direct chat, however often it is told.
func TestAnUnusableCaseRoomIsToldOnce(t *testing.T) {
	w := newWorld(t, monday)
	w.say(dmRoom, reporter, "I want to report a security issue")
	e := store.Effect{Kind: outbox.KindCreateCaseRoom, Payload: []byte(`{"case_id":"SR-2026-0001"}`)}
	for range 2 {
		if err := w.h.CaseRoomUnusable(context.Background(), e, "the server encrypts private groups"); err != nil {
			t.Fatal(err)
		}
	}
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	team, dm := 0, 0
	for _, e := range effects {
		var s outbox.SendEffect
		if err := e.Decode(&s); err != nil {
			t.Fatal(err)
		}
		switch {
		case s.To.Room == teamRoom && strings.Contains(s.Markdown, "cannot be used"):
			team++
		case s.To.DMWith == reporter && strings.Contains(s.Markdown, "cannot be used"):
			dm++
		}
	}
	if team != 1 || dm != 1 {
		t.Errorf("told the team room %d times and the reporter %d times, want once each", team, dm)
	}
	entries, _ := w.store.AuditOf(context.Background(), "SR-2026-0001")
	if last := entries[len(entries)-1]; last.Action != "case-room.unusable" || last.Allowed {
		t.Errorf("audited %+v", last)
	}
}

// A reporter who cannot be in their case room (it proved unusable here;
// on another chat than theirs the same holds) is never pointed to it, nor
// shown its link: asking again, or writing what looks like details, they
// are pointed to their private area, the advisory or the security
// address.
func TestAReporterWhoCannotBeInTheCaseRoomIsPointedToTheirPrivateArea(t *testing.T) {
	w := newWorld(t, monday)
	p := w.policy.Get()
	p.Email, p.GitHub = "security@example.org", true
	w.policy.Set(*p)
	w.openCase()
	e := store.Effect{Kind: outbox.KindCreateCaseRoom, Payload: []byte(`{"case_id":"SR-2026-0001"}`)}
	if err := w.h.CaseRoomUnusable(context.Background(), e, "the server encrypts private groups"); err != nil {
		t.Fatal(err)
	}
	before := len(w.sends())
	w.say(dmRoom, reporter, "I want to report a security issue")
	w.say(dmRoom, reporter, "More about it: https://example.org/poc")
	answers := w.sends()[before:]
	if len(answers) != 3 {
		t.Fatalf("%d answers, want the pointer, then the warning and the pointer: %q", len(answers), answers)
	}
	for _, a := range answers {
		if !strings.Contains(a, "SR-2026-0001") || !strings.Contains(a, "!github NAME") || !strings.Contains(a, "security@example.org") {
			t.Errorf("an answer does not name the private area: %q", a)
		}
		for _, not := range []string{chat.Native(caseRoom), "matrix.to", "!invite", "inviting you", "private room"} {
			if strings.Contains(a, not) {
				t.Errorf("an answer says %q: %q", not, a)
			}
		}
	}
	if !strings.Contains(answers[1], "share nothing more here") {
		t.Errorf("the details warning: %q", answers[1])
	}
}
