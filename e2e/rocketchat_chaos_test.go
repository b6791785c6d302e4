package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/crashpoint"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"github.com/enarx/secbot/rocketchat"
)

// rcWorld is a Rocket.Chat stand-in served from the test process, with
// a team all on it (alice the coordinator and bob the backup, with the
// bot, in the private group security-team) and secbot on it alone, as a
// process of its own (no Matrix: the config has no [matrix]), so a test
// can kill it as a crash would.
type rcWorld struct {
	t      *testing.T
	s      *rctest.Server
	bot    *testbed.Bot
	botID  string
	alice  string
	bob    string
	team   string
	tokens map[string]string // user ID → personal access token
}

// rcSettle bounds the waits for what a restarted bot owes: an effect cut
// off by a kill waits out its retry backoff first.
const rcSettle = 90 * time.Second

// newRCWorld starts the world: bot's SLA and Extra go into secbot's config
// (with the cap on new cases lifted), env into its process.
func newRCWorld(t *testing.T, ctx context.Context, name string, opts rctest.Options, bot testbed.RocketChatOptions, env ...string) *rcWorld {
	t.Helper()
	s := rctest.Start(t, opts)
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	w := &rcWorld{t: t, s: s, tokens: map[string]string{}}
	var token string
	w.botID, token = s.AddUser("secbot")
	s.SetRoles(w.botID, "bot")
	w.alice = w.addUser("alice")
	w.bob = w.addUser("bob")
	team, err := w.client(w.alice).CreatePrivateGroup(ctx, "security-team", []string{"secbot", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	w.team = team.ID
	// (A directory of the test's own: a run of -count=N starts afresh.)
	bot.Server, bot.UserID, bot.Token = s.URL(), w.botID, token
	bot.Team = `room = "rocketchat:security-team"
members = ["rocketchat:alice", "rocketchat:bob"]
coordinator = "rocketchat:alice"
backup = "rocketchat:bob"`
	bot.Extra = uncapped + bot.Extra
	w.bot, err = testbed.NewRocketChatBot(bed.Binary, t.TempDir(), name, bot)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.bot.Start(env...); err != nil {
		t.Fatal(err)
	}
	// The first start notes where secbot came in (what was said before
	// is not its to answer): the reports come after it.
	if err := s.WaitSubscribed(ctx, w.botID, 1); err != nil {
		t.Fatal(err, tail(w.bot.Log(), 20))
	}
	t.Cleanup(func() {
		_ = w.bot.Stop()
		if t.Failed() {
			t.Logf("secbot log (%s):\n%s", w.bot.LogPath, tail(w.bot.Log(), 40))
		}
	})
	return w
}

// addUser signs up a user and keeps their token.
func (w *rcWorld) addUser(name string) string {
	id, token := w.s.AddUser(name)
	w.tokens[id] = token
	return id
}

func (w *rcWorld) client(userID string) *rocketchat.Client {
	c, err := rocketchat.New(w.s.URL(), userID, w.tokens[userID], rocketchat.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// reporter signs up a user and opens their DM with the bot (im.create,
// as their client would); nothing is said yet.
func (w *rcWorld) reporter(ctx context.Context, name string) (userID, dmID string) {
	w.t.Helper()
	userID = w.addUser(name)
	dm, err := w.client(userID).CreateDM(ctx, "secbot")
	if err != nil {
		w.t.Fatal(err)
	}
	return userID, dm.ID
}

func (w *rcWorld) say(userID, roomID, text string) string {
	w.t.Helper()
	id, err := w.s.SendAs(userID, roomID, text, "")
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *rcWorld) said(roomID string, parts ...string) int {
	return len(w.s.Said(roomID, w.botID, parts...))
}

func (w *rcWorld) wait(ctx context.Context, what string, cond func() bool) {
	w.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, rcSettle)
	defer cancel()
	if err := w.s.Wait(wctx, cond); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// settle is the barrier before counting: alice's `!sec help` in the team
// group is answered, twice (the second sent once the first is answered,
// so everything said before the first was handled), and then the bot's
// outbox has no pending row (read from its database): every effect it
// decided is made, and the stand-in, in this process, holds all of it.
func (w *rcWorld) settle(ctx context.Context) {
	w.t.Helper()
	for range 2 {
		before := len(w.s.Messages(w.team))
		w.say(w.alice, w.team, "!sec help")
		w.wait(ctx, "the answer to the marker", func() bool {
			for _, m := range w.s.Messages(w.team)[before:] {
				// The list of commands: no other message names help.
				if m.UserID == w.botID && strings.Contains(m.Text, "!sec help") {
					return true
				}
			}
			return false
		})
	}
	wctx, cancel := context.WithTimeout(ctx, testbed.SettleTimeout)
	defer cancel()
	if err := w.bot.WaitIdle(wctx, ""); err != nil {
		w.t.Fatal(err)
	}
}

// caseOf waits for the bot's answer in a reporter's DM naming their case
// and returns the case ID.
func (w *rcWorld) caseOf(ctx context.Context, dmID string) string {
	w.t.Helper()
	var caseID string
	w.wait(ctx, "the answer in the DM "+dmID, func() bool {
		for _, m := range w.s.Said(dmID, w.botID, "SR-") {
			caseID = caseIDPattern.FindString(m.Text)
			return caseID != ""
		}
		return false
	})
	return caseID
}

// caseGroup waits for a case's group and its welcome.
func (w *rcWorld) caseGroup(ctx context.Context, caseID string) rctest.Room {
	w.t.Helper()
	var g rctest.Room
	name := "security-report-" + strings.ToLower(caseID)
	w.wait(ctx, "the case group "+name+" and its welcome", func() bool {
		var ok bool
		g, ok = w.s.RoomByName(name)
		return ok && w.said(g.ID, "**Security report "+caseID) > 0
	})
	return g
}

// checkOnce asserts, after settle, that every outbox row is done and
// that nothing was posted twice: each made chat.send row's message is on
// the server once, the bot's messages (system messages aside) are exactly
// those rows' messages, and every _id the bot sent more than once (a
// retry after a kill) is one message. It returns how many _ids were sent
// more than once.
func (w *rcWorld) checkOnce(ctx context.Context) (retried int) {
	w.t.Helper()
	rows, err := w.bot.Outbox(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	sent := map[string]int64{} // message ID → the row that sent it
	kinds := map[string]int{}
	for _, r := range rows {
		kinds[r.Kind]++
		if r.State != "done" {
			w.t.Errorf("outbox row %d (%s, lane %s) is %s after %d attempts", r.ID, r.Kind, r.Lane, r.State, r.Attempts)
			continue
		}
		if r.Kind != "chat.send" {
			continue
		}
		var res rocketchat.SendResult
		if err := json.Unmarshal([]byte(r.Result), &res); err != nil || res.Message == "" {
			w.t.Errorf("outbox row %d (chat.send) keeps no message: %q", r.ID, r.Result)
			continue
		}
		if other, dup := sent[res.Message]; dup {
			w.t.Errorf("outbox rows %d and %d both made message %s", other, r.ID, res.Message)
		}
		sent[res.Message] = r.ID
	}
	posted := map[string]rctest.Message{}
	for _, room := range w.s.RoomsOf(w.botID) {
		for _, m := range w.s.Messages(room.ID) {
			if m.UserID != w.botID || m.Type != "" {
				continue
			}
			posted[m.ID] = m
			if _, ok := sent[m.ID]; !ok {
				w.t.Errorf("the bot posted %s in room %s (%s) that no done outbox row made: %q", m.ID, room.ID, room.Name, m.Text)
			}
		}
	}
	for id, row := range sent {
		if _, ok := posted[id]; !ok {
			w.t.Errorf("outbox row %d is done but its message %s is on no room of the bot's", row, id)
		}
	}
	tries := map[string]int{}
	for _, r := range w.s.Requests() {
		if r.UserID != w.botID || r.Route != "chat.sendMessage" {
			continue
		}
		var body struct {
			Message struct {
				ID string `json:"_id"`
			} `json:"message"`
		}
		if json.Unmarshal(r.Body, &body) == nil && body.Message.ID != "" {
			tries[body.Message.ID]++
		}
	}
	for id, n := range tries {
		if n > 1 {
			retried++
			if _, ok := posted[id]; !ok {
				w.t.Errorf("message %s, sent %d times, is not on the server", id, n)
			}
		}
	}
	w.t.Logf("%d outbox rows (%v), %d messages, %d of them sent again after a kill", len(rows), kinds, len(posted), retried)
	return retried
}

// checkReport asserts a DM reporter's one case: one first answer in the
// DM, and the case's one group (checkCase).
func (w *rcWorld) checkReport(userID, dmID, caseID string) {
	w.t.Helper()
	if got := w.said(dmID, "Thank you for reaching out"); got != 1 {
		w.t.Errorf("the reporter of %s got %d first answers in their DM, want 1", caseID, got)
	}
	w.checkCase(userID, caseID)
}

// checkCase asserts a case's one group with its reporter in it, one
// welcome, one team notice.
func (w *rcWorld) checkCase(userID, caseID string) {
	w.t.Helper()
	name := "security-report-" + strings.ToLower(caseID)
	g, ok := w.s.RoomByName(name)
	if !ok {
		w.t.Errorf("no case group %s", name)
		return
	}
	if _, ok := w.s.RoomByName(name + "-2"); ok {
		w.t.Errorf("a second case group was made for %s", caseID)
	}
	member := false
	for _, m := range g.Members {
		member = member || m == userID
	}
	if !member {
		w.t.Errorf("the reporter of %s is not in its group: %v", caseID, g.Members)
	}
	if got := w.said(g.ID, "**Security report "+caseID); got != 1 {
		w.t.Errorf("the group of %s holds %d welcomes, want 1", caseID, got)
	}
	if got := w.said(w.team, "New security report **"+caseID+"**"); got != 1 {
		w.t.Errorf("the team was told %d times of %s, want once", got, caseID)
	}
}

// A kill at each named point of a Rocket.Chat intake (the handler's
// decision before its commit; an effect made and not yet marked done:
// the message posted, the group created, the DM opened) loses nothing and
// doubles nothing after the restart: the reporter gets one answer, one
// case group with one welcome, and the team one notice.
func TestARocketChatIntakeSurvivesAKillAtEveryCrashPoint(t *testing.T) {
	for _, c := range []struct {
		point  string
		public bool // the report is made in a public channel
		// The server answers a repeated _id with MongoDB's duplicate-key
		// error (older servers, or two sends racing on 8.x).
		dupKey bool
	}{
		{point: "handler.before_commit"},
		{point: "rocketchat.sent"},
		{point: "rocketchat.sent", dupKey: true},
		{point: "outbox.after.chat.send"},
		{point: "rocketchat.case_room_created"},
		{point: "outbox.after.chat.create_case_room"},
		{point: "outbox.after.chat.open_dm", public: true},
		{point: "rocketchat.sent", public: true},
	} {
		name := c.point
		if c.public {
			name += "/public"
		}
		if c.dupKey {
			name += "/E11000"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			w := newRCWorld(t, ctx, "rccrash", rctest.Options{DuplicateKeyError: c.dupKey}, testbed.RocketChatOptions{}, crashpoint.Env+"="+c.point)
			var ritaID, dm, general, root string
			if c.public {
				ritaID = w.addUser("rita")
				general = w.s.CreateChannel("general", w.alice, w.botID)
				root = w.say(ritaID, general, "I want to report a security issue")
			} else {
				ritaID, dm = w.reporter(ctx, "rita")
				w.say(ritaID, dm, "I want to report a security issue")
			}
			crashedAt(t, w.bot, c.point)
			restart(t, w.bot)
			if c.public {
				w.wait(ctx, "the DM the bot opens", func() bool {
					r, ok := w.s.DirectRoom(w.botID, ritaID)
					dm = r.ID
					return ok && w.said(dm, "SR-") > 0
				})
			} else {
				w.wait(ctx, "the reporter's answer", func() bool { return w.said(dm, "Thank you for reaching out") > 0 })
			}
			caseID := w.caseOf(ctx, dm)
			w.caseGroup(ctx, caseID)
			w.settle(ctx)
			if c.public {
				pointers := 0
				for _, m := range w.s.Said(general, w.botID) {
					if m.ThreadID != root {
						t.Errorf("the bot spoke in the public channel outside the thread: %q", m.Text)
					}
					pointers++
				}
				if pointers != 1 {
					t.Errorf("the request in the channel got %d answers in its thread, want 1", pointers)
				}
				if got := len(w.s.Said(dm, w.botID)); got != 1 {
					t.Errorf("the reporter's DM holds %d messages of the bot, want the one answer", got)
				}
				w.checkCase(ritaID, caseID)
			} else {
				w.checkReport(ritaID, dm, caseID)
			}
			// A kill after a post and before its row was marked done
			// sends the post again, under the same _id.
			if retried := w.checkOnce(ctx); retried == 0 && (c.point == "rocketchat.sent" || c.point == "outbox.after.chat.send") {
				t.Errorf("no message was sent again after the kill at %s: the test missed its point", c.point)
			}
		})
	}
}

// TestKillingRocketChatSecbotAnywhereLosesNothing kills secbot (SIGKILL)
// at random moments while Rocket.Chat reporters report, in their DMs and
// in a public channel, and ask again, restarting it each time; midway the
// team claims half the cases and the clock steps past the others'
// acknowledgement, so their reminders and escalations fall due while the
// kills go on. Afterwards each reporter has exactly one first answer, one
// case group with one welcome and the team one notice; every claim got
// one answer; every unclaimed case one reminder in the team's group, one
// escalation in the coordinator's DM and one word to its reporter that
// the team was chased, and no claimed case any; every outbox row is done
// and nothing was posted twice (a chat.sendMessage retried after a kill
// carries the _id derived from its row, which the server keeps once).
// SECBOT_CHAOS_SEED replays a run; SECBOT_CHAOS_KILLS sets how many kills.
func TestKillingRocketChatSecbotAnywhereLosesNothing(t *testing.T) {
	ctx := testContext(t)
	rng, kills := chaosRun(t, 30)
	// The policy's days in minutes; the clock is stepped (Advance) past
	// the acknowledgement: the reminder (20 minutes before it) and the
	// coordinator's step (at it) fall due, the backup's lies beyond.
	w := newRCWorld(t, ctx, "rcchaos", rctest.Options{}, testbed.RocketChatOptions{
		SLA:   map[string]string{"acknowledge": `"40m"`, "detailed_response": `"48h"`, "remind_before": `"20m"`, "repeat_every": `"1h"`},
		Extra: "\n[[escalation]]\nafter = \"0s\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1h\"\nnotify = \"backup\"\n",
	})

	const reporters = 6 // the last reports in the public channel
	general := w.s.CreateChannel("general", w.alice, w.botID)
	users := make([]string, reporters)
	rooms := make([]string, reporters) // a DM, or the channel for the last
	for i := range reporters {
		name := fmt.Sprintf("reporter%d", i)
		if i == reporters-1 {
			users[i] = w.addUser(name)
			rooms[i] = general
			continue
		}
		users[i], rooms[i] = w.reporter(ctx, name)
	}
	ask := func(i int) {
		w.say(users[i], rooms[i], "I want to report a security issue")
	}
	asked := make([]int, reporters)
	dms := make([]string, reporters)   // each reporter's DM with the bot
	cases := make([]string, reporters) // and case
	// caseOf waits for reporter i's answer (in the DM the bot opened, for
	// the channel's reporter) and their case.
	caseOf := func(i int) {
		dms[i] = rooms[i]
		if rooms[i] == general {
			w.wait(ctx, "the DM the bot opens for the channel's reporter", func() bool {
				r, ok := w.s.DirectRoom(w.botID, users[i])
				dms[i] = r.ID
				return ok && w.said(dms[i], "SR-") > 0
			})
		}
		cases[i] = w.caseOf(ctx, dms[i])
	}
	const claimed = reporters / 2 // the first half are claimed midway
	next := 0
	for k := range kills {
		if k == kills/2 {
			// Everyone has reported; the first half are claimed, and the
			// clock steps past the others' acknowledgement.
			for i := range reporters {
				if asked[i] == 0 {
					ask(i)
					asked[i]++
				}
				caseOf(i)
			}
			for i := range claimed {
				w.say(w.bob, w.team, "!sec claim "+cases[i])
				w.wait(ctx, "the claim of "+cases[i], func() bool { return w.said(w.team, "is now the handler of "+cases[i]) > 0 })
			}
			if err := w.bot.Advance(ctx, 40*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// Some reporters ask (the first time, or again) while the bot
		// runs, or while it starts.
		for range 1 + rng.IntN(2) {
			i := next % reporters
			ask(i)
			asked[i]++
			next++
		}
		// Not a quiet-period wait: a random moment to kill at, the scenario.
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		if err := w.bot.Kill(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if err := w.bot.Start(); err != nil {
			t.Fatalf("restart %d: %v", k, err)
		}
	}
	if kills < 2 {
		t.Fatal("the scenario needs two kills at least")
	}
	// Everything the kills cut off is made again: every case's group and
	// welcome, every unclaimed case's reminder, escalation and word to
	// its reporter.
	groups := make([]rctest.Room, reporters)
	for i := range reporters {
		groups[i] = w.caseGroup(ctx, cases[i])
	}
	var coordDM string
	w.wait(ctx, "the coordinator's DM with the bot", func() bool {
		r, ok := w.s.DirectRoom(w.botID, w.alice)
		coordDM = r.ID
		return ok
	})
	escalated := func(i int) int { return w.said(coordDM, "**"+cases[i]+"**", "You are the security coordinator") }
	reminded := func(i int) int { return w.said(w.team, "Reminder for **"+cases[i]) }
	chased := func(i int) int { return w.said(groups[i].ID, "I have escalated to the security team") }
	for i := claimed; i < reporters; i++ {
		w.wait(ctx, "the ladder of "+cases[i], func() bool { return escalated(i) > 0 && reminded(i) > 0 && chased(i) > 0 })
	}
	w.settle(ctx)

	seen := map[string]bool{}
	for i := range reporters {
		caseID := cases[i]
		if seen[caseID] {
			t.Errorf("two reporters have case %s", caseID)
		}
		seen[caseID] = true
		if rooms[i] == general {
			if got := len(w.s.Said(general, w.botID)); got > asked[i] {
				t.Errorf("the channel's reporter asked %d times and got %d answers in the channel", asked[i], got)
			}
			w.checkCase(users[i], caseID)
		} else {
			w.checkReport(users[i], dms[i], caseID)
		}
		// One answer at most to each time they asked (the repeats may be
		// quieted by the chatter limit).
		if got := len(w.s.Said(dms[i], w.botID)); got > asked[i] {
			t.Errorf("reporter %d asked %d times and got %d answers in their DM", i, asked[i], got)
		}
		want := 1
		if i < claimed {
			want = 0
			if n := w.said(w.team, "is now the handler of "+caseID); n != 1 {
				t.Errorf("the claim of %s was answered %d times, want 1", caseID, n)
			}
		}
		if r, e, c := reminded(i), escalated(i), chased(i); r != want || e != want || c != want {
			t.Errorf("%s: %d reminders, %d escalations to the coordinator and %d words to the reporter, want %d of each", caseID, r, e, c, want)
		}
	}
	// (The series' year is the bot's: take it from a case ID.)
	if _, ok := w.s.RoomByName(fmt.Sprintf("security-report-%s%04d", strings.ToLower(cases[0][:len("SR-2026-")]), reporters+1)); ok {
		t.Errorf("more case groups than the %d reporters", reporters)
	}
	w.checkOnce(ctx)
}

// A kill at a crash point of an escalation step on Rocket.Chat (opening
// the coordinator's DM; a post made and not yet marked done) loses
// nothing and doubles nothing: after the restart the team's group has
// one reminder, the coordinator's DM one escalation and the case group
// one word to the reporter that the team was chased.
func TestARocketChatEscalationSurvivesAKillAtItsCrashPoints(t *testing.T) {
	for _, point := range []string{"outbox.after.chat.open_dm", "rocketchat.sent", "outbox.after.chat.send"} {
		t.Run(point, func(t *testing.T) {
			ctx := testContext(t)
			w := newRCWorld(t, ctx, "rcladdercrash", rctest.Options{}, testbed.RocketChatOptions{
				SLA:   map[string]string{"acknowledge": `"40m"`, "detailed_response": `"48h"`, "remind_before": `"20m"`, "repeat_every": `"1h"`},
				Extra: "\n[[escalation]]\nafter = \"0s\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1h\"\nnotify = \"backup\"\n",
			})
			ritaID, dm := w.reporter(ctx, "rita")
			w.say(ritaID, dm, "I want to report a security issue")
			caseID := w.caseOf(ctx, dm)
			group := w.caseGroup(ctx, caseID)
			w.settle(ctx)
			// Intake is done: the point armed now is met first by the
			// ladder's effects.
			if err := w.bot.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := w.bot.Start(crashpoint.Env + "=" + point); err != nil {
				t.Fatal(err)
			}
			if err := w.s.WaitSubscribed(ctx, w.botID, 1); err != nil {
				t.Fatal(err)
			}
			if err := w.bot.Advance(ctx, 40*time.Minute); err != nil {
				t.Fatal(err)
			}
			crashedAt(t, w.bot, point)
			restart(t, w.bot)
			var coordDM string
			w.wait(ctx, "the coordinator's escalation", func() bool {
				r, ok := w.s.DirectRoom(w.botID, w.alice)
				coordDM = r.ID
				return ok && w.said(coordDM, "**"+caseID+"**", "You are the security coordinator") > 0
			})
			w.wait(ctx, "the reminder and the word to the reporter", func() bool {
				return w.said(w.team, "Reminder for **"+caseID) > 0 && w.said(group.ID, "I have escalated to the security team") > 0
			})
			w.settle(ctx)
			for _, c := range []struct {
				where, room string
				parts       []string
			}{
				{"the team's group", w.team, []string{"Reminder for **" + caseID}},
				{"the coordinator's DM", coordDM, []string{"**" + caseID + "**", "You are the security coordinator"}},
				{"the case group", group.ID, []string{"I have escalated to the security team"}},
			} {
				if n := w.said(c.room, c.parts...); n != 1 {
					t.Errorf("%s holds %d of the bot's messages with %q, want 1", c.where, n, c.parts)
				}
			}
			if n := len(w.s.Said(coordDM, w.botID)); n != 1 {
				t.Errorf("the coordinator's DM holds %d messages of the bot, want the one escalation", n)
			}
			w.checkReport(ritaID, dm, caseID)
			w.checkOnce(ctx)
		})
	}
}
