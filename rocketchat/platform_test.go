package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// recorder is the core as a channel sees it: it keeps what it is handed.
type recorder struct {
	mu      sync.Mutex
	msgs    []chat.Message
	invites []chat.Invite
	changed chan struct{}
	fail    func(chat.Message) error
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) HandleMessage(_ context.Context, m chat.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.signal()
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return err
		}
	}
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) HandleInvite(_ context.Context, inv chat.Invite) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invites = append(r.invites, inv)
	r.signal()
	return nil
}

func (r *recorder) HandleUndecryptable(context.Context, chat.Message, string)           {}
func (r *recorder) HandleEmail(context.Context, chat.Message) error                     { return nil }
func (r *recorder) HandleGitHubAdvisories(context.Context, []chat.GitHubAdvisory) error { return nil }

// waitText waits for a message with the text and returns every message
// handed over so far.
func (r *recorder) waitText(t *testing.T, ctx context.Context, text string) []chat.Message {
	t.Helper()
	for {
		r.mu.Lock()
		msgs := append([]chat.Message(nil), r.msgs...)
		r.mu.Unlock()
		for _, m := range msgs {
			if m.Text == text {
				return msgs
			}
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			t.Fatalf("no message %q handed over; got %+v", text, msgs)
		}
	}
}

// platformEnv is a stand-in, a store and the platform of its user secbot.
type platformEnv struct {
	*env
	st    *store.Store
	p     *Platform
	lanes int
}

func newPlatformEnv(t *testing.T, srv rctest.Options) *platformEnv {
	t.Helper()
	e := newEnv(t, srv, Options{})
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &platformEnv{env: e, st: st, p: e.platform(t, st)}
}

func (e *env) platform(t *testing.T, st *store.Store) *Platform {
	t.Helper()
	p, err := NewPlatform(context.Background(), PlatformConfig{Client: e.c, Store: st, Secret: []byte("installation secret for tests"),
		MinBackoff: 500 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// user adds a user with a client of their own.
func (e *platformEnv) user(t *testing.T, name string) (string, *Client) {
	t.Helper()
	id, token := e.s.AddUser(name)
	c, err := New(e.s.URL(), id, token, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return id, c
}

// run runs the platform's inbound side until the test ends, and waits
// for its subscription.
func (e *platformEnv) run(t *testing.T, p *Platform, rec *recorder, team ...disclosure.Person) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx, chat.Dispatch{In: rec, Log: zerolog.Nop()}, func(who disclosure.Person) bool {
			for _, m := range team {
				if m == who {
					return true
				}
			}
			return false
		})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := e.s.WaitSubscribed(wctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	return stop
}

func TestADirectMessageReachesTheCoreQualifiedWithTheSendersAccount(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	aliceID, alice := e.user(t, "alice")
	carolID, _ := e.user(t, "carol")
	rec := newRecorder()
	e.run(t, e.p, rec, person("alice"))

	dm, err := alice.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "hello secbot", ""); err != nil {
		t.Fatal(err)
	}
	msgs := rec.waitText(t, ctx, "hello secbot")
	m := msgs[len(msgs)-1]
	if m.Room != "rocketchat:"+dm.ID || m.Sender != "rocketchat:alice" || m.ID == "" || m.Sent.IsZero() || m.Attachment {
		t.Errorf("the message as the core got it: %+v", m)
	}
	if m.Identity == nil || m.Identity.Current != aliceID || !m.Identity.DeviceSigned {
		t.Errorf("a team member's message carries %+v, want their user ID %s", m.Identity, aliceID)
	}
	rec.mu.Lock()
	invites := append([]chat.Invite(nil), rec.invites...)
	rec.mu.Unlock()
	if len(invites) != 1 || invites[0] != (chat.Invite{Room: "rocketchat:" + dm.ID, Sender: "rocketchat:alice", Direct: true}) {
		t.Errorf("the new DM as an invitation: %+v", invites)
	}

	// The bot's own message, and a system message (carol joining a public
	// channel by posting in it), are not handed over; carol's message is,
	// without an identity (she is not on the team), and a file as an
	// attachment without its text.
	if _, err := e.c.SendMessage(ctx, Message{ID: "own-message-1", RoomID: dm.ID, Text: "the bot speaking"}); err != nil {
		t.Fatal(err)
	}
	general := e.s.CreateChannel("general", aliceID, e.botID)
	if _, err := e.s.SendAs(carolID, general, "hi all", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendFileAs(aliceID, dm.ID, "poc.py", "the proof"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "marker", ""); err != nil {
		t.Fatal(err)
	}
	msgs = rec.waitText(t, ctx, "marker")
	var texts []string
	for _, m := range msgs {
		texts = append(texts, fmt.Sprintf("%s/%s/%q/%v", m.Sender.Native(), m.Room, m.Text, m.Attachment))
		if m.Sender == "rocketchat:secbot" {
			t.Errorf("the bot's own message was handed over: %+v", m)
		}
		if m.Text == "carol" {
			t.Errorf("a system message was handed over: %+v", m)
		}
		if m.Sender == "rocketchat:carol" && m.Identity != nil {
			t.Errorf("a message from outside the team carries an identity: %+v", m)
		}
	}
	want := []string{
		fmt.Sprintf("alice/rocketchat:%s/%q/false", dm.ID, "hello secbot"),
		fmt.Sprintf("carol/rocketchat:%s/%q/false", general, "hi all"),
		fmt.Sprintf("alice/rocketchat:%s/%q/true", dm.ID, ""),
		fmt.Sprintf("alice/rocketchat:%s/%q/false", dm.ID, "marker"),
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("handed over:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
}

func TestAMessageSentWhileTheSocketWasDownIsHandedOverOnceAfterTheReconnect(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, rita := e.user(t, "rita")
	rec := newRecorder()
	e.run(t, e.p, rec)
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "before the outage", ""); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "before the outage")

	if n := e.s.DropConnections(); n != 1 {
		t.Fatalf("%d realtime connections dropped", n)
	}
	// The client waits at least its backoff before it comes back: this is
	// said while it is away, and only the catch-up can find it.
	if _, err := e.s.SendAs(ritaID, dm.ID, "during the outage", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.s.WaitSubscribed(ctx, e.botID, 1); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "during the outage")
	if _, err := e.s.SendAs(ritaID, dm.ID, "after the outage", ""); err != nil {
		t.Fatal(err)
	}
	msgs := rec.waitText(t, ctx, "after the outage")
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, " | "); got != "before the outage | during the outage | after the outage" {
		t.Errorf("handed over: %s", got)
	}
	if connects := countRequests(e.s, "method login"); connects < 2 {
		t.Errorf("the realtime connection logged in %d times; the drop was not a drop", connects)
	}
}

func countRequests(s *rctest.Server, route string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Route == route {
			n++
		}
	}
	return n
}

// A restart reads from the stored position: what was said while secbot
// was down is handed over, what it had handled before is not.
func TestARestartCatchesUpFromTheStoredPosition(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, rita := e.user(t, "rita")
	rec := newRecorder()
	stop := e.run(t, e.p, rec)
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "first", ""); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "first")
	stop()
	if _, err := e.s.SendAs(ritaID, dm.ID, "while secbot was down", ""); err != nil {
		t.Fatal(err)
	}
	again := newRecorder()
	e.run(t, e.platform(t, e.st), again)
	msgs := again.waitText(t, ctx, "while secbot was down")
	// "first" may come again (the catch-up reads a few seconds before the
	// position; the core's handled IDs make that harmless); what was said
	// while secbot was down comes once.
	n := 0
	for _, m := range msgs {
		if m.Text == "while secbot was down" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("after the restart: %+v", msgs)
	}
}

// A message the core failed on is handed over again, and the position
// does not pass it meanwhile.
func TestAMessageTheCoreFailedOnIsHandedOverAgain(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, rita := e.user(t, "rita")
	rec := newRecorder()
	failed := 0
	rec.fail = func(m chat.Message) error {
		if m.Text == "flaky" && failed == 0 {
			failed++
			return errors.New("database is locked")
		}
		return nil
	}
	e.run(t, e.p, rec)
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "flaky", ""); err != nil {
		t.Fatal(err)
	}
	msgs := rec.waitText(t, ctx, "flaky")
	if len(msgs) != 1 || failed != 1 {
		t.Errorf("after one failure: %d handed over, %d failures", len(msgs), failed)
	}
}

// effect queues an effect of kind and returns it as the outbox hands it
// to an executor.
func (e *platformEnv) effect(t *testing.T, kind string, payload any) store.Effect {
	t.Helper()
	ctx := context.Background()
	e.lanes++
	id, err := outbox.Enqueue(ctx, e.st, fmt.Sprintf("test-%d", e.lanes), kind, payload, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	due, err := e.st.DueEffects(ctx, time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.ID == id {
			d.Attempts = 1
			return d
		}
	}
	t.Fatalf("effect %d is not due", id)
	return store.Effect{}
}

func (e *platformEnv) exec(t *testing.T, eff store.Effect) (any, error) {
	t.Helper()
	return e.p.Executors()[eff.Kind](context.Background(), eff)
}

func TestASendPostsInItsThreadAndARetryPostsNothingMore(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, _ := e.user(t, "rita")
	general := e.s.CreateChannel("general", ritaID, e.botID)
	root, err := e.s.SendAs(ritaID, general, "I want to report a security issue", "")
	if err != nil {
		t.Fatal(err)
	}
	eff := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:" + general}, Markdown: "Please write to me **directly**.", ThreadRoot: root})
	for attempt := 1; attempt <= 3; attempt++ {
		eff.Attempts = attempt
		if _, err := e.exec(t, eff); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	var mine []rctest.Message
	for _, m := range e.s.Messages(general) {
		if m.UserID == e.botID {
			mine = append(mine, m)
		}
	}
	if len(mine) != 1 || mine[0].ThreadID != root || mine[0].Text != "Please write to me **directly**." || mine[0].ID != e.p.MessageID(eff) {
		t.Fatalf("the bot's messages after three tries: %+v", mine)
	}

	// Another installation's row of the same number (a fresh database)
	// gets another ID: it posts, instead of taking the first for its own.
	other := &Platform{secret: []byte("another installation's secret")}
	if other.MessageID(eff) == e.p.MessageID(eff) {
		t.Error("two installations derive the same message ID for a row")
	}
	later := eff
	later.CreatedAt = eff.CreatedAt.Add(time.Hour)
	if e.p.MessageID(later) == e.p.MessageID(eff) {
		t.Error("a row of the same number queued at another time gets the same message ID")
	}

	// By name (#general), and to a DM not opened yet: not ready.
	byName := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:#general"}, Markdown: "Announcement"})
	if _, err := e.exec(t, byName); err != nil {
		t.Fatal(err)
	}
	if ms := e.s.Messages(general); ms[len(ms)-1].Text != "Announcement" {
		t.Errorf("the announcement by name: %+v", ms[len(ms)-1])
	}
	// By its bare name, as the config writes a channel.
	bare := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:general"}, Markdown: "Announcement by the bare name"})
	if _, err := e.exec(t, bare); err != nil {
		t.Fatal(err)
	}
	if ms := e.s.Messages(general); ms[len(ms)-1].Text != "Announcement by the bare name" {
		t.Errorf("the announcement by the bare name: %+v", ms[len(ms)-1])
	}
	toDM := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{DMWith: "rocketchat:rita"}, Markdown: "hi"})
	if _, err := e.exec(t, toDM); !errors.Is(err, chat.ErrNotReady) {
		t.Errorf("a send to a DM not opened yet: %v, want not ready", err)
	}
	// A room the server does not know: permanent.
	nowhere := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:NOSUCHROOM"}, Markdown: "hi"})
	if _, err := e.exec(t, nowhere); !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("a send to no room: %v, want permanent", err)
	}
	_ = ctx
}

func TestACaseGroupIsMadeOnceAndAdoptedAfterACrash(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, _ := e.user(t, "rita")
	aliceID, _ := e.user(t, "alice")
	bobID, _ := e.user(t, "bob")
	now := time.Now()
	reporters := 0
	newCase := func() *store.Case {
		reporters++
		c, err := e.st.CreateCase(ctx, disclosure.PersonOn(disclosure.RocketChat, fmt.Sprintf("reporter%d", reporters)), "", "", now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	payload := func(c *store.Case) outbox.CreateCaseRoomEffect {
		return outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Name: "Security report " + c.ID.String(),
			Invite: []disclosure.Person{"rocketchat:rita", "rocketchat:alice", "rocketchat:bob", "matrix:@carol:example.org"},
			Team:   []disclosure.Person{"rocketchat:alice", "rocketchat:bob"}, Platform: disclosure.RocketChat}
	}

	// First try: a private group, neutrally named, the bot its owner,
	// reporter and team in it, nothing to read but its name.
	c1 := newCase()
	res, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, payload(c1)))
	if err != nil {
		t.Fatal(err)
	}
	name := "security-report-" + strings.ToLower(c1.ID.String())
	g, ok := e.s.RoomByName(name)
	if !ok || g.Type != "p" || g.ReadOnly || fmt.Sprint(g.Owners) != fmt.Sprint([]string{e.botID}) {
		t.Fatalf("the case group %s: %+v", name, g)
	}
	if got, want := fmt.Sprint(g.Members), fmt.Sprint([]string{e.botID, ritaID, aliceID, bobID}); got != want {
		t.Errorf("its members: %s, want %s", got, want)
	}
	if stored, _ := e.st.Case(ctx, c1.ID); stored.CaseRoom != "rocketchat:"+g.ID || res.(RoomResult).Room != stored.CaseRoom {
		t.Errorf("the case room recorded: %q, result %+v", stored.CaseRoom, res)
	}
	for _, r := range e.s.Requests() {
		if r.Route == "groups.create" && (strings.Contains(string(r.Body), "topic") || strings.Contains(string(r.Body), "description") || strings.Contains(string(r.Body), "Security report")) {
			t.Errorf("groups.create says more than the name: %s", r.Body)
		}
	}

	// A crash after the group was made, before it was recorded: the
	// retry adopts that group (found by name and its mark), makes none.
	c2 := newCase()
	name2 := caseGroupName(c2.ID, 1)
	retry := e.effect(t, outbox.KindCreateCaseRoom, payload(c2))
	crashAt(t, "rocketchat.case_room_created", func() { _, _ = e.exec(t, retry) })
	made, ok := e.s.RoomByName(name2)
	if stored, _ := e.st.Case(ctx, c2.ID); !ok || stored.CaseRoom != "" {
		t.Fatalf("before the crash: group %+v, case room %q", made, stored.CaseRoom)
	}
	retry.Attempts = 2
	if _, err := e.exec(t, retry); err != nil {
		t.Fatal(err)
	}
	if stored, _ := e.st.Case(ctx, c2.ID); stored.CaseRoom != "rocketchat:"+made.ID {
		t.Errorf("after the retry the case room is %q, want the group made before the crash %s", stored.CaseRoom, made.ID)
	}
	if g, _ := e.s.RoomByID(made.ID); len(g.Members) != 4 {
		t.Errorf("the adopted group's members: %v", g.Members)
	}
	if _, ok := e.s.RoomByName(name2 + "-2"); ok {
		t.Error("the retry made a second group")
	}
	// Once recorded, another run changes nothing.
	if _, err := e.exec(t, retry); err != nil || countRequests(e.s, "groups.create") != 2 {
		t.Errorf("a run after the group was recorded: %v, %d groups.create", err, countRequests(e.s, "groups.create"))
	}

	// A group of the name that is not this installation's (an earlier
	// one's, or someone's trap) is not adopted: the case gets the next name.
	c3 := newCase()
	trap := caseGroupName(c3.ID, 1)
	if _, err := e.c.CreatePrivateGroup(ctx, trap, []string{"rita"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, payload(c3))); err != nil {
		t.Fatal(err)
	}
	next, ok := e.s.RoomByName(trap + "-2")
	if stored, _ := e.st.Case(ctx, c3.ID); !ok || stored.CaseRoom != "rocketchat:"+next.ID {
		t.Errorf("the case beside a foreign group of its name has room %q (next: %+v)", stored.CaseRoom, next)
	}
}

func TestAnEncryptedCaseGroupIsATypedPermanentError(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{ForceEncryptedPrivateGroups: true})
	ctx := ctxT(t)
	e.user(t, "rita")
	c, err := e.st.CreateCase(ctx, "rocketchat:rita", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"rocketchat:rita"}, Platform: disclosure.RocketChat}))
	var enc *EncryptedGroupError
	if !errors.As(err, &enc) || !errors.Is(err, ErrEncryptedGroup) || !errors.Is(err, chat.ErrPermanent) || enc.Case != c.ID {
		t.Fatalf("an encrypted case group: %v", err)
	}
	if stored, _ := e.st.Case(ctx, c.ID); stored.CaseRoom != enc.Room {
		t.Errorf("the group is not recorded: %q vs %q", stored.CaseRoom, enc.Room)
	}
}

func TestOpeningADMRecordsItForThePersonAndTheCase(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	e.user(t, "rita")
	c, err := e.st.CreateCase(ctx, "rocketchat:rita", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	eff := e.effect(t, outbox.KindOpenDM, outbox.OpenDMEffect{User: "rocketchat:rita", CaseID: c.ID.String()})
	for range 2 { // a retry finds the same DM
		if _, err := e.exec(t, eff); err != nil {
			t.Fatal(err)
		}
	}
	dm, err := e.st.DMRoom(ctx, "rocketchat:rita")
	if err != nil {
		t.Fatal(err)
	}
	r, ok := e.s.RoomByID(chat.Native(dm))
	if !ok || r.Type != "d" || len(r.Members) != 2 {
		t.Fatalf("the DM %s: %+v", dm, r)
	}
	stored, _ := e.st.Case(ctx, c.ID)
	if stored.DMRoom != dm {
		t.Errorf("the case's DM room: %q, want %q", stored.DMRoom, dm)
	}
	// Now a send to the DM with rita finds it.
	if _, err := e.exec(t, e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{DMWith: "rocketchat:rita"}, Markdown: "Thank you"})); err != nil {
		t.Fatal(err)
	}
	if ms := e.s.Messages(r.ID); len(ms) != 1 || ms[0].Text != "Thank you" {
		t.Errorf("the DM holds %+v", ms)
	}
}

func TestInviteKickAndReactInACaseGroup(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, _ := e.user(t, "rita")
	bobID, _ := e.user(t, "bob")
	c, err := e.st.CreateCase(ctx, "rocketchat:rita", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"rocketchat:rita"}, Platform: disclosure.RocketChat})); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.st.Case(ctx, c.ID)
	groupID := chat.Native(stored.CaseRoom)
	in := func() bool {
		g, _ := e.s.RoomByID(groupID)
		for _, m := range g.Members {
			if m == bobID {
				return true
			}
		}
		return false
	}
	invite := e.effect(t, outbox.KindInvite, outbox.InviteEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, User: "rocketchat:bob"})
	for range 2 {
		if _, err := e.exec(t, invite); err != nil {
			t.Fatal(err)
		}
	}
	if !in() {
		t.Fatal("bob was not added")
	}
	kick := e.effect(t, outbox.KindKick, outbox.KickEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, User: "rocketchat:bob", Reason: "removed from the team"})
	for range 2 { // the second finds him gone: done
		if _, err := e.exec(t, kick); err != nil {
			t.Fatal(err)
		}
	}
	if in() {
		t.Fatal("bob was not removed")
	}
	// Someone unknown to the server: permanent.
	if _, err := e.exec(t, e.effect(t, outbox.KindInvite, outbox.InviteEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, User: "rocketchat:nobody"})); !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("inviting an unknown user: %v", err)
	}

	msgID, err := e.s.SendAs(ritaID, groupID, "!sec quiet", "")
	if err != nil {
		t.Fatal(err)
	}
	react := e.effect(t, outbox.KindReact, outbox.ReactEffect{Room: stored.CaseRoom, Event: msgID, Key: "✅"})
	for range 2 {
		if _, err := e.exec(t, react); err != nil {
			t.Fatal(err)
		}
	}
	var body map[string]any
	for _, r := range e.s.Requests() {
		if r.Route == "chat.react" {
			_ = json.Unmarshal(r.Body, &body)
		}
	}
	if body["emoji"] != ":white_check_mark:" || body["shouldReact"] != true {
		t.Errorf("the reaction sent: %v", body)
	}
}

func TestThePlatformsNamesAndPeople(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	p := e.p
	if p.Name() != disclosure.RocketChat || p.Self() != "rocketchat:secbot" || p.Vouching() != chat.VouchesForAccount {
		t.Errorf("name %q, self %q, vouching %v", p.Name(), p.Self(), p.Vouching())
	}
	for in, want := range map[string]disclosure.Person{"@alice": "rocketchat:alice", "bob.smith": "rocketchat:bob.smith"} {
		if got, ok := p.ParsePerson(in); !ok || got != want {
			t.Errorf("ParsePerson(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"@alice:example.org", "", "@", "a b"} {
		if got, ok := p.ParsePerson(bad); ok {
			t.Errorf("ParsePerson(%q) = %q", bad, got)
		}
	}
	aliceID, _ := e.user(t, "alice")
	team, err := e.c.CreatePrivateGroup(ctx, "security-team", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := p.ResolveRoom(ctx, "rocketchat:security-team")
	if err != nil || room != "rocketchat:"+team.ID {
		t.Fatalf("ResolveRoom: %q, %v", room, err)
	}
	if link := p.RoomLink(room); link != e.s.URL()+"/group/security-team" {
		t.Errorf("RoomLink: %s", link)
	}
	if n, err := p.JoinedMemberCount(ctx, room); err != nil || n != 2 {
		t.Errorf("JoinedMemberCount: %d, %v", n, err)
	}
	// A public channel is read by anyone on the server: never a room of two.
	lobby := e.s.CreateChannel("lobby", e.botID, aliceID)
	if n, err := p.JoinedMemberCount(ctx, "rocketchat:"+lobby); err != nil || n <= 2 {
		t.Errorf("a public channel of two counts %d, %v", n, err)
	}
	// Added to a group by someone outside the team, the core may leave it.
	other := e.s.CreateChannel("elsewhere", aliceID, e.botID)
	if err := p.LeaveRoom(ctx, "rocketchat:"+other, "not a team room"); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.s.RoomByID(other); len(r.Members) != 1 {
		t.Errorf("after leaving: %v", r.Members)
	}
	_, alice := e.user(t, "alice2")
	group, err := alice.CreatePrivateGroup(ctx, "alices-group", []string{"secbot"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LeaveRoom(ctx, "rocketchat:"+group.ID, "not a team room"); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.s.RoomByID(group.ID); len(r.Members) != 1 {
		t.Errorf("after leaving the group: %v", r.Members)
	}
	// The last owner of a group may not leave it: a refusal for good.
	own, err := e.c.CreatePrivateGroup(ctx, "bots-group", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.LeaveRoom(ctx, "rocketchat:"+own.ID, ""); !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("the last owner leaving: %v", err)
	}
}

// Rocket.Chat adds the bot to rooms without asking: a new subscription is
// handed over as the invitation from who added it, and a room the bot
// made itself is none.
func TestBeingAddedToAGroupIsAnInvitationFromWhoAddedTheBot(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	aliceID, alice := e.user(t, "alice")
	_, carol := e.user(t, "carol")
	rec := newRecorder()
	e.run(t, e.p, rec)

	made, err := carol.CreatePrivateGroup(ctx, "carols-room", []string{"secbot"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := alice.CreatePrivateGroup(ctx, "alices-room", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.InviteToGroup(ctx, other.ID, e.botID); err != nil {
		t.Fatal(err)
	}
	c, err := e.st.CreateCase(ctx, "rocketchat:alice", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"rocketchat:alice"}, Platform: disclosure.RocketChat})); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.st.Case(ctx, c.ID)
	// Something said in each, and a marker after them all.
	for _, room := range []string{made.ID, other.ID, chat.Native(stored.CaseRoom)} {
		if _, err := e.s.SendAs(aliceID, room, "hello", ""); err != nil && room != made.ID {
			t.Fatal(err)
		}
	}
	dm, err := alice.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(aliceID, dm.ID, "marker", ""); err != nil {
		t.Fatal(err)
	}
	rec.waitText(t, ctx, "marker")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []chat.Invite{
		{Room: "rocketchat:" + other.ID, Sender: "rocketchat:alice"},
		{Room: "rocketchat:" + dm.ID, Sender: "rocketchat:alice", Direct: true},
	}
	got := map[string]chat.Invite{}
	for _, inv := range rec.invites {
		got[inv.Room] = inv
	}
	if carols, ok := got["rocketchat:"+made.ID]; !ok || carols.Sender != "rocketchat:carol" || carols.Direct {
		t.Errorf("being made a member of carol's new group: %+v", carols)
	}
	for _, w := range want {
		if got[w.Room] != w {
			t.Errorf("invitation %+v: got %+v", w, got[w.Room])
		}
	}
	if inv, ok := got[stored.CaseRoom]; ok || len(rec.invites) != 3 {
		t.Errorf("the bot's own case group came as an invitation (%+v); all: %+v", inv, rec.invites)
	}
}

// A message longer than the server takes is sent in parts, each under an
// ID of its own derived from the row: a retry posts none of them again.
func TestALongMessageIsSentInPartsOnce(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ritaID, _ := e.user(t, "rita")
	general := e.s.CreateChannel("general", ritaID, e.botID)
	var paras []string
	for i := range 30 {
		paras = append(paras, fmt.Sprintf("Paragraph %d: %s", i, strings.Repeat("words ", 50)))
	}
	eff := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:" + general}, Markdown: strings.Join(paras, "\n\n")})
	for attempt := 1; attempt <= 2; attempt++ {
		eff.Attempts = attempt
		if _, err := e.exec(t, eff); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	var got []string
	for _, m := range e.s.Messages(general) {
		if m.UserID == e.botID {
			if len(m.Text) > maxMessage {
				t.Errorf("a part of %d bytes", len(m.Text))
			}
			got = append(got, m.Text)
		}
	}
	if len(got) < 2 || strings.Join(got, "\n\n") != strings.Join(paras, "\n\n") {
		t.Errorf("%d parts, which together are not the message", len(got))
	}
}

// The core's Markdown is escaped for Matrix's CommonMark; Rocket.Chat's
// parser reads only some escapes and would show the other backslashes.
func TestTheCoresMarkdownIsWhatRocketChatsParserReads(t *testing.T) {
	for in, want := range map[string]string{
		`Welcome, rocketchat\:rita\-smith.`:   `Welcome, rocketchat:rita-smith.`,
		`**SR\-2026\-0001** by \@bob`:         `**SR-2026-0001** by @bob`,
		`a\_b \*c\* d\.org \#1 \~e\~ \` + "`": `a\_b \*c\* d\.org \#1 \~e\~ \` + "`",
		`\[click\]\(http\://evil\) \<x\|y\>`:  `\[click\]\(http://evil\) \<x\|y\>`,
		`back\\slash\\\:`:                     `back\slash\:`,
	} {
		if got := rocketMarkdown(in); got != want {
			t.Errorf("rocketMarkdown(%q) = %q, want %q", in, got, want)
		}
	}
}

// crash is what a simulated crash panics with.
type crash struct{ point string }

// crashAt runs f, crashing it at the named point as a kill would: it
// stops there, and nothing after the point runs.
func crashAt(t *testing.T, point string, f func()) {
	t.Helper()
	old := hit
	hit = func(p string) {
		if p == point {
			panic(crash{p})
		}
	}
	defer func() { hit = old }()
	defer func() {
		if r := recover(); r != (crash{point}) {
			t.Fatalf("did not crash at %s: %v", point, r)
		}
	}()
	f()
}

func TestARetryAfterACrashBetweenPostingAndRecordingPostsNothingMore(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ritaID, _ := e.user(t, "rita")
	general := e.s.CreateChannel("general", ritaID, e.botID)
	eff := e.effect(t, outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:" + general}, Markdown: "Once only"})
	crashAt(t, "rocketchat.sent", func() { _, _ = e.exec(t, eff) })
	eff.Attempts = 2
	if _, err := e.exec(t, eff); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range e.s.Messages(general) {
		if m.UserID == e.botID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d messages posted by a send and its retry after a crash", n)
	}
}

// A team member's username taken by another account after a rename: the
// new holder is added to no case group and gets no DM from secbot.
func TestAUsernameTakenByAnotherAccountGetsNothingOfTheMembers(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	e.user(t, "rita")
	bobID, _ := e.user(t, "bob")
	if err := e.st.PinIdentity(ctx, store.Identity{Member: "rocketchat:bob", MasterKey: bobID, PinnedAt: time.Now(), PinnedBy: e.p.Self()}); err != nil {
		t.Fatal(err)
	}
	e.s.RenameUser(bobID, "bob-old")
	impostorID, _ := e.user(t, "bob")
	c, err := e.st.CreateCase(ctx, "rocketchat:rita", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(t, e.effect(t, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(),
		Invite: []disclosure.Person{"rocketchat:rita", "rocketchat:bob"}, Team: []disclosure.Person{"rocketchat:bob"}, Platform: disclosure.RocketChat})); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.st.Case(ctx, c.ID)
	g, _ := e.s.RoomByID(chat.Native(stored.CaseRoom))
	for _, m := range g.Members {
		if m == impostorID {
			t.Error("the new holder of bob's username is in the case group")
		}
	}
	_, err = e.exec(t, e.effect(t, outbox.KindInvite, outbox.InviteEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, User: "rocketchat:bob"}))
	if !errors.Is(err, ErrNotThePinnedAccount) || !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("inviting the username: %v", err)
	}
	_, err = e.exec(t, e.effect(t, outbox.KindOpenDM, outbox.OpenDMEffect{User: "rocketchat:bob"}))
	if !errors.Is(err, ErrNotThePinnedAccount) {
		t.Errorf("opening a DM with the username: %v", err)
	}
	if g, _ := e.s.RoomByID(chat.Native(stored.CaseRoom)); slices.Contains(g.Members, impostorID) {
		t.Error("the impostor was added")
	}
}

// A reporter's DM stays theirs: opening it again after their username
// passed to someone else finds the DM with the reporter's account.
func TestOpeningADMAgainKeepsTheReportersAccount(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, _ := e.user(t, "rita")
	if _, err := e.exec(t, e.effect(t, outbox.KindOpenDM, outbox.OpenDMEffect{User: "rocketchat:rita"})); err != nil {
		t.Fatal(err)
	}
	first, err := e.st.DMRoom(ctx, "rocketchat:rita")
	if err != nil {
		t.Fatal(err)
	}
	e.s.RenameUser(ritaID, "rita-renamed")
	e.user(t, "rita")
	if _, err := e.exec(t, e.effect(t, outbox.KindOpenDM, outbox.OpenDMEffect{User: "rocketchat:rita"})); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.st.DMRoom(ctx, "rocketchat:rita"); again != first {
		t.Errorf("the DM opened again is %s, not the reporter's %s", again, first)
	}
	if r, _ := e.s.RoomByID(chat.Native(first)); !slices.Contains(r.Members, ritaID) {
		t.Errorf("the DM's members: %v", r.Members)
	}
}

// A message the core asks to have later (a sender's limit) is handed over
// again when it says, not dropped.
func TestAMessageTheCoreDelaysIsHandedOverWhenItSays(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	ctx := ctxT(t)
	ritaID, rita := e.user(t, "rita")
	rec := newRecorder()
	delayed := 0
	rec.fail = func(m chat.Message) error {
		if m.Text == "later" && delayed == 0 {
			delayed++
			return &chat.LaterError{Until: time.Now().Add(200 * time.Millisecond)}
		}
		return nil
	}
	e.run(t, e.p, rec)
	dm, err := rita.CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "later", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SendAs(ritaID, dm.ID, "now", ""); err != nil {
		t.Fatal(err)
	}
	msgs := rec.waitText(t, ctx, "later")
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, " "); got != "now later" || delayed != 1 {
		t.Errorf("handed over: %s (delayed %d)", got, delayed)
	}
	// The position waited for it.
	pos, err := e.st.LastCommandSent(ctx, positionKey)
	if err != nil || pos.Before(msgs[1].Sent) {
		t.Errorf("the position after both: %v, %v", pos, err)
	}
}
