package rocketchat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/rocketchat"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

// The core as main.go wires it (handlers, outbox, timers, store, the
// chat router), with the Rocket.Chat platform as its only one, on the
// stand-in: a reporter's DM opens a case, whose room is a private group
// with the reporter and the team, where a team member's claim counts.
func TestAReportByRocketChatDMRunsThroughTheCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := rctest.Start(t, rctest.Options{})
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	botID, botToken := s.AddUser("secbot")
	s.SetRoles(botID, "bot")
	var logs syncBuffer
	logger := zerolog.New(&logs).Level(zerolog.DebugLevel)
	client := func(id, token string) *rocketchat.Client {
		c, err := rocketchat.New(s.URL(), id, token, rocketchat.Options{Log: &logger})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aliceID, aliceToken := s.AddUser("alice")
	bobID, _ := s.AddUser("bob")
	ritaID, ritaToken := s.AddUser("rita")
	// The team's private group, set up by a team member.
	if _, err := client(aliceID, aliceToken).CreatePrivateGroup(ctx, "security-team", []string{"secbot", "bob"}); err != nil {
		t.Fatal(err)
	}

	dbPath := filepath.Join(t.TempDir(), "secbot.db")
	st, err := store.Open(ctx, dbPath, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p, err := rocketchat.NewPlatform(ctx, rocketchat.PlatformConfig{Client: client(botID, botToken), Store: st, Secret: []byte("this installation's secret"), Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	teamRoom, err := p.ResolveRoom(ctx, "rocketchat:security-team")
	if err != nil {
		t.Fatal(err)
	}
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
	notify, err := disclosure.ParseNotify("coordinator")
	if err != nil {
		t.Fatal(err)
	}
	cal, err := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, rita := disclosure.PersonOn(disclosure.RocketChat, "alice"), disclosure.PersonOn(disclosure.RocketChat, "bob"), disclosure.PersonOn(disclosure.RocketChat, "rita")
	policy := disclosure.NewInForce(disclosure.Policy{
		SLA:      disclosure.SLA{Acknowledge: span("48h"), DetailedResponse: span("96h"), UpdateInterval: span("5 working days"), RemindBefore: span("12h"), RepeatEvery: span("24h")},
		Calendar: cal, Ladder: disclosure.Ladder{{After: span("0s"), Notify: notify}},
		TeamRoom: teamRoom, Team: []disclosure.Person{alice, bob}, Coordinator: alice, Backup: bob, CommandPrefix: "!sec",
	})
	clock := clockwork.NewRealClock()
	runner := outbox.New(st, clock, zerolog.Nop(), func(err error) bool { return errors.Is(err, chat.ErrPermanent) }, func(err error) bool { return errors.Is(err, chat.ErrNotReady) })
	platforms := chat.NewPlatforms(p)
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
	h := handlers.New(policy, st, platforms, tmpl, clock, runner.Kick)
	tm := timers.NewTimers(st, clock, policy, h, zerolog.Nop(), runner.Kick)
	in := chat.Dispatch{In: h, Log: logger, CommandOf: h.CommandOf}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = runner.Run(runCtx) })
	wg.Go(func() { _ = p.Run(runCtx, in, policy.Get().IsTeam) })
	t.Cleanup(func() { stop(); wg.Wait() })
	if err := s.WaitSubscribed(ctx, botID, 1); err != nil {
		t.Fatal(err)
	}

	said := func(roomID string, parts ...string) bool { return len(s.Said(roomID, botID, parts...)) > 0 }
	dump := func() string {
		var b strings.Builder
		for _, id := range []string{chat.Native(teamRoom)} {
			for _, m := range s.Messages(id) {
				fmt.Fprintf(&b, "%s %s: %q\n", id, m.Username, m.Text)
			}
		}
		return b.String()
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := s.Wait(ctx, cond); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, dump())
		}
	}

	// The reporter writes to the bot.
	dm, err := client(ritaID, ritaToken).CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAs(ritaID, dm.ID, "I want to report a security issue", ""); err != nil {
		t.Fatal(err)
	}
	wait("the reporter's answer", func() bool { return said(dm.ID, "SR-2026-0001") })
	var c *store.Case
	wait("the case group", func() bool {
		c, err = st.Case(ctx, disclosure.CaseID{Year: 2026, Seq: 1})
		return err == nil && c.CaseRoom != ""
	})
	if c.Reporter != rita || disclosure.RoomPlatform(c.CaseRoom) != disclosure.RocketChat {
		t.Fatalf("the case: %+v", c)
	}
	group, ok := s.RoomByID(chat.Native(c.CaseRoom))
	if !ok || group.Type != "p" || group.Name != "security-report-sr-2026-0001" || !slices.Equal(group.Owners, []string{botID}) {
		t.Fatalf("the case room: %+v", group)
	}
	for _, who := range []string{ritaID, aliceID, bobID} {
		if !slices.Contains(group.Members, who) {
			t.Errorf("%s is not in the case group: %v", who, group.Members)
		}
	}
	wait("the team told", func() bool { return said(chat.Native(teamRoom), "New security report", "SR-2026-0001") })
	wait("the case group's welcome", func() bool { return said(group.ID, "SR-2026-0001") })

	// What the bot says reads as Rocket.Chat shows it: no backslashes
	// of Matrix's escapes.
	for _, id := range []string{dm.ID, group.ID, chat.Native(teamRoom)} {
		for _, m := range s.Messages(id) {
			if m.UserID == botID && strings.Contains(m.Text, `\:`) {
				t.Errorf("a message shows Matrix's escapes: %q", m.Text)
			}
		}
	}

	// A team member claims it in the case group: the case is theirs, and
	// the group hears so.
	if _, err := s.SendAs(bobID, group.ID, "!sec claim", ""); err != nil {
		t.Fatal(err)
	}
	wait("the claim's answer", func() bool { return said(group.ID, "is handling it") })
	c, err = st.Case(ctx, c.ID)
	if err != nil || c.Handler != bob || c.Stage == disclosure.StageReceived {
		t.Fatalf("after bob's claim: %+v, %v", c, err)
	}
	// Bob's account was pinned as his identity on first sight.
	if ident, err := st.IdentityOf(ctx, bob); err != nil || ident.MasterKey != bobID {
		t.Errorf("bob's pinned identity: %+v, %v", ident, err)
	}
	// The reporter cannot act as the team. Messages are handled in
	// order: once alice's help is answered, rita's command was handled.
	if _, err := s.SendAs(ritaID, group.ID, "!sec reject nothing", ""); err != nil {
		t.Fatal(err)
	}
	before := len(s.Messages(group.ID))
	if _, err := s.SendAs(aliceID, group.ID, "!sec help", ""); err != nil {
		t.Fatal(err)
	}
	wait("the answer to help", func() bool {
		ms := s.Messages(group.ID)
		return len(ms) > before+1 && ms[len(ms)-1].UserID == botID
	})
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Case(ctx, c.ID); c.Stage == disclosure.StageRejected {
		t.Error("the reporter rejected their own case")
	}

	// Privacy: what the reporter writes in their DM is never logged and
	// never in a request secbot sends.
	const canary = "CANARY-details-7f3a91"
	if _, err := s.SendAs(ritaID, dm.ID, "the overflow is in parse_header(), "+canary, ""); err != nil {
		t.Fatal(err)
	}
	answered := len(s.Messages(dm.ID))
	wait("the answer to the details", func() bool {
		ms := s.Messages(dm.ID)
		return len(ms) > answered && ms[len(ms)-1].UserID == botID
	})
	if strings.Contains(logs.String(), canary) {
		t.Error("the reporter's text is in the log")
	}
	for _, f := range []string{dbPath, dbPath + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(canary)) {
			t.Errorf("the reporter's text is in %s", filepath.Base(f))
		}
	}
	for _, r := range s.Requests() {
		if r.UserID == botID && (strings.Contains(string(r.Body), canary) || strings.Contains(r.Query, canary)) {
			t.Errorf("the reporter's text is in a request secbot sent: %s %s", r.Route, r.Body)
		}
	}

	// A request in a public channel the bot is in: a pointer in a thread
	// of the request, everything else in a DM the bot opens.
	carolID, _ := s.AddUser("carol")
	// The bot alone in it before carol: with her, two members, which the
	// core would take for a private chat if a public channel counted so.
	general := s.CreateChannel("general", botID)
	root, err := s.SendAs(carolID, general, "I want to report a security issue", "")
	if err != nil {
		t.Fatal(err)
	}
	wait("the pointer in the thread", func() bool {
		for _, m := range s.Messages(general) {
			if m.UserID == botID && m.ThreadID == root && strings.Contains(m.Text, "direct message") {
				return true
			}
		}
		return false
	})
	carol := disclosure.PersonOn(disclosure.RocketChat, "carol")
	var carolDM string
	wait("the DM the bot opened", func() bool {
		carolDM, err = st.DMRoom(ctx, carol)
		return err == nil && said(chat.Native(carolDM), "SR-2026-0002")
	})
	if r, ok := s.RoomByID(chat.Native(carolDM)); !ok || r.Type != "d" || !slices.Contains(r.Members, carolID) {
		t.Errorf("carol's DM: %+v", r)
	}
	for _, m := range s.Messages(general) {
		if m.UserID == botID && m.ThreadID != root {
			t.Errorf("the bot spoke in the public channel outside the thread: %q", m.Text)
		}
	}

	// Who is who: bob's username is given to another account. A command
	// under it is an identity change: the team room is told, and the
	// command does not count.
	s.RenameUser(bobID, "bob-old")
	newBobID, _ := s.AddUser("bob")
	if err := client(aliceID, aliceToken).InviteToGroup(ctx, chat.Native(teamRoom), newBobID); err != nil {
		t.Fatal(err)
	}
	told := len(s.Messages(chat.Native(teamRoom)))
	if _, err := s.SendAs(newBobID, chat.Native(teamRoom), "!sec reject SR-2026-0001 not a bug", ""); err != nil {
		t.Fatal(err)
	}
	wait("the team told of the new account", func() bool {
		for _, m := range s.Messages(chat.Native(teamRoom))[told:] {
			if m.UserID == botID && strings.Contains(m.Text, "now belongs to another account") && strings.Contains(m.Text, newBobID) {
				return true
			}
		}
		return false
	})
	// Handled in order: once alice's help is answered, so was that.
	helped := len(s.Messages(chat.Native(teamRoom)))
	if _, err := s.SendAs(aliceID, chat.Native(teamRoom), "!sec help", ""); err != nil {
		t.Fatal(err)
	}
	wait("the answer to help in the team room", func() bool {
		ms := s.Messages(chat.Native(teamRoom))
		return len(ms) > helped+1 && ms[len(ms)-1].UserID == botID
	})
	if c, _ := st.Case(ctx, c.ID); c.Stage == disclosure.StageRejected {
		t.Error("another account under bob's username rejected the case")
	}
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
