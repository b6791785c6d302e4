package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// steppedPolicy shrinks the policy's days to minutes, for the tests that
// step the bot's clock (Advance) from one rung of the ladder to the next
// instead of waiting: real time never reaches a rung during a test, so each
// falls due exactly when the test steps to it. A test's steps add up to
// less than three hours, well under the six hours after which a team
// command counts as too old.
var steppedPolicy = testbed.BotOptions{
	SLA: map[string]string{
		"acknowledge":       `"40m"`,
		"detailed_response": `"48h"`,
		"remind_before":     `"20m"`,
		"repeat_every":      `"30m"`,
	},
	Extra: `
[[escalation]]
after = "0s"
notify = "coordinator"
[[escalation]]
after = "20m"
notify = "backup"
[[escalation]]
after = "40m"
notify = "team"
`,
}

// newTeam signs in a team of the test's own (see testbed.Team), so that
// the test can run in parallel with the others.
func newTeam(t *testing.T, ctx context.Context) *testbed.Team {
	t.Helper()
	tm, err := bed.NewTeam(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tm.Close)
	return tm
}

// onTeam is opts with the bot on team tm.
func onTeam(opts testbed.BotOptions, tm *testbed.Team) testbed.BotOptions {
	opts.Team = tm
	return opts
}

// advance steps the bot's clock forward by d.
func advance(t *testing.T, ctx context.Context, bot *testbed.Bot, d time.Duration) {
	t.Helper()
	if err := bot.Advance(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// escalationTo waits for the bot's escalation DM to u about caseID, as
// role, on the bed's team.
func escalationTo(t *testing.T, u *matrixtest.User, bot id.UserID, caseID, role string, timeout time.Duration) *event.Event {
	t.Helper()
	return escalationIn(t, bed.TeamRoom, u, bot, caseID, role, timeout)
}

// escalationIn is escalationTo on the team whose room is teamRoom.
func escalationIn(t *testing.T, teamRoom id.RoomID, u *matrixtest.User, bot id.UserID, caseID, role string, timeout time.Duration) *event.Event {
	t.Helper()
	evt, err := u.Wait(testContext(t), timeout, "an escalation about "+caseID, func(evt *event.Event) bool {
		if evt.Type != event.EventMessage || evt.Sender != bot || evt.RoomID == teamRoom {
			return false
		}
		body, err := matrixtest.Body(evt)
		return err == nil && strings.Contains(body, caseID) && strings.Contains(body, "You are the "+role)
	})
	if err != nil {
		t.Fatal(err)
	}
	return evt
}

// countFrom counts the bot's messages u has seen containing substr (outside the given room if not empty).
func countFrom(u *matrixtest.User, bot id.UserID, room id.RoomID, substr string) int {
	n := 0
	for _, evt := range u.Events() {
		if evt.Type != event.EventMessage || evt.Sender != bot || (room != "" && evt.RoomID != room) {
			continue
		}
		if body, err := matrixtest.Body(evt); err == nil && strings.Contains(body, substr) {
			n++
		}
	}
	return n
}

// waitCountFrom waits until u has seen n of the bot's messages containing
// substr (in room if not empty).
func waitCountFrom(t *testing.T, u *matrixtest.User, bot id.UserID, room id.RoomID, substr string, n int, timeout time.Duration) {
	t.Helper()
	seen := 0
	_, err := u.Wait(testContext(t), timeout, fmt.Sprintf("%d messages containing %q", n, substr), func(evt *event.Event) bool {
		if evt.Type != event.EventMessage || evt.Sender != bot || (room != "" && evt.RoomID != room) {
			return false
		}
		if body, err := matrixtest.Body(evt); err == nil && strings.Contains(body, substr) {
			seen++
		}
		return seen >= n
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnansweredReportEscalatesUpTheLadder(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "ladderbot", onTeam(steppedPolicy, tm))
	quiet := newUser(t, ctx, "quiet")
	answered := newUser(t, ctx, "answered")

	_, caseID := report(t, ctx, quiet, bot.UserID)
	room := caseInvite(t, ctx, quiet, bot.UserID)
	if err := quiet.Join(ctx, room); err != nil {
		t.Fatal(err)
	}

	// A second case, claimed in time: its ladder never starts.
	_, caseID2 := report(t, ctx, answered, bot.UserID)
	say(t, ctx, tm.Bob, tm.Room, "!sec claim "+caseID2)
	waitMessage(t, ctx, tm.Bob, tm.Room, bot.UserID, "is now the handler of "+caseID2)

	// Nobody answers the first: the team room is reminded, then the
	// coordinator, the backup and the team are chased, in that order,
	// each when the clock reaches its rung.
	advance(t, ctx, bot, 20*time.Minute)
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "Reminder for **"+caseID)
	advance(t, ctx, bot, 20*time.Minute)
	coord := escalationIn(t, tm.Room, tm.Alice, bot.UserID, caseID, "security coordinator", 30*time.Second)
	if body, _ := matrixtest.Body(coord); !strings.Contains(body, "acknowledgement") {
		t.Errorf("the coordinator's escalation does not say what was missed: %q", body)
	}
	advance(t, ctx, bot, 20*time.Minute)
	backup := escalationIn(t, tm.Room, tm.Bob, bot.UserID, caseID, "backup contact", 30*time.Second)
	advance(t, ctx, bot, 20*time.Minute)
	teamStep := waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "**"+caseID+"**: the acknowledgement was due")
	if coord.Timestamp > backup.Timestamp || backup.Timestamp > teamStep.Timestamp {
		t.Errorf("ladder out of order: coordinator %d, backup %d, team %d", coord.Timestamp, backup.Timestamp, teamStep.Timestamp)
	}
	waitMessage(t, ctx, quiet, room, bot.UserID, "escalated to the security team")

	// Escalations name the case only: nothing the reporter wrote.
	for _, body := range botBodies(tm.Alice.Events(), bot) {
		if strings.Contains(body, "I want to report") {
			t.Errorf("an escalation carries the reporter's words: %q", body)
		}
	}
	if n := countFrom(tm.Alice, bot.UserID, "", caseID2+"**: the"); n != 0 {
		t.Errorf("the claimed case %s was escalated %d times", caseID2, n)
	}

	// The last step repeats until someone answers; an answer stops it.
	advance(t, ctx, bot, 30*time.Minute)
	waitCountFrom(t, tm.Alice, bot.UserID, tm.Room, "**"+caseID+"**: the acknowledgement was due", 2, 30*time.Second)
	say(t, ctx, tm.Alice, tm.Room, "!sec claim "+caseID)
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "is now the handler of "+caseID)
	// A step that fell due before the claim was handled may still be on
	// its way: it counts as sent before the claim.
	bed.SettleWith(t, ctx, bot, tm.Marker(), tm.Alice)
	stopped := countFrom(tm.Alice, bot.UserID, tm.Room, "**"+caseID+"**: the acknowledgement was due")
	// The clock steps past the next repeat (30 min): it falls due unless
	// the claim stopped the ladder. A third case, opened just before the
	// step, is reminded in it: the proof that the deadlines were checked
	// after the step. The barrier then makes sure a repeat that fired is
	// seen.
	control := newUser(t, ctx, "control")
	_, controlID := report(t, ctx, control, bot.UserID)
	advance(t, ctx, bot, 40*time.Minute)
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "Reminder for **"+controlID)
	bed.SettleWith(t, ctx, bot, tm.Marker(), tm.Alice)
	if got := countFrom(tm.Alice, bot.UserID, tm.Room, "**"+caseID+"**: the acknowledgement was due"); got != stopped {
		t.Errorf("the ladder went on after the claim: %d team escalations, want %d", got, stopped)
	}
}

func TestLadderSurvivesKillMidway(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "killladderbot", onTeam(steppedPolicy, tm))
	reporter := newUser(t, ctx, "killladder")
	_, caseID := report(t, ctx, reporter, bot.UserID)

	// The clock steps to the coordinator's rung, and the bot is killed as
	// soon as that step has fired (its log line), not when the DM reaches
	// alice: the DM may or may not be out when the bot dies.
	advance(t, ctx, bot, 40*time.Minute)
	const fired = `"deadline":"acknowledge","step":0,"reminder":false`
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(bot.Log(), fired) {
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator's step did not fire:\n%s", tail(bot.Log(), 20))
		}
		time.Sleep(20 * time.Millisecond) // polls the log file, no quiet-period wait
	}
	if err := bot.Kill(); err != nil {
		t.Fatal(err)
	}
	// The backup's step (20 min after the coordinator's) and the team's
	// fall due while secbot is down, which is the scenario: the clock
	// moves on while the bot is dead, and the bot starts at the new time.
	advance(t, ctx, bot, 40*time.Minute)
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	// The coordinator's DM, recorded before the kill, goes out now if it
	// had not yet.
	escalationIn(t, tm.Room, tm.Alice, bot.UserID, caseID, "security coordinator", 30*time.Second)
	late := escalationIn(t, tm.Room, tm.Bob, bot.UserID, caseID, "backup contact", 30*time.Second)
	if body, _ := matrixtest.Body(late); !strings.Contains(body, "late") {
		t.Errorf("a step that fell due during downtime is not marked late: %q", body)
	}
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "**"+caseID+"**: the acknowledgement was due")
	bed.SettleWith(t, ctx, bot, tm.Marker(), tm.Alice, tm.Bob)
	coordDMs := 0
	for _, evt := range tm.Alice.Events() {
		if evt.Type == event.EventMessage && evt.Sender == bot.UserID && evt.RoomID != tm.Room {
			if body, _ := matrixtest.Body(evt); strings.Contains(body, caseID) && strings.Contains(body, "security coordinator") {
				coordDMs++
			}
		}
	}
	if coordDMs != 1 {
		t.Errorf("the coordinator got %d escalation DMs for %s, want exactly 1", coordDMs, caseID)
	}
	if n := countFrom(tm.Bob, bot.UserID, "", "You are the backup contact"); n != 1 {
		t.Errorf("the backup got %d escalation DMs, want exactly 1", n)
	}
}

// A handover: the config names a new coordinator and backup, SIGHUP reloads
// it, and the next escalation goes to the new coordinator; nothing already
// sent is sent again. The same reload puts the team's own texts in force.
func TestReloadHandsTheLadderOver(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	bot := startBot(t, ctx, "handoverbot", onTeam(steppedPolicy, tm))
	reporter := newUser(t, ctx, "handover")
	_, caseID := report(t, ctx, reporter, bot.UserID)
	advance(t, ctx, bot, 40*time.Minute)
	escalationIn(t, tm.Room, tm.Alice, bot.UserID, caseID, "security coordinator", 30*time.Second)

	// Alice goes on leave: Bob becomes coordinator, Alice the backup; and
	// the team words its first answer its own way.
	if err := os.MkdirAll(filepath.Join(bot.Dir, "texts"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bot.Dir, "texts", "dm_ack.md"), []byte("Thanks! Your report is **{{.CaseID}}**; please do not share any details here.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := bot.Reload(func(cfg string) string {
		cfg = strings.Replace(cfg, fmt.Sprintf("coordinator = %q", tm.Alice.ID()), fmt.Sprintf("coordinator = %q", tm.Bob.ID()), 1)
		cfg = strings.Replace(cfg, fmt.Sprintf("backup = %q", tm.Bob.ID()), fmt.Sprintf("backup = %q", tm.Alice.ID()), 1)
		return cfg + "\n[templates]\ndir = \"texts\"\n"
	})
	if err != nil {
		t.Fatal(err)
	}
	say(t, ctx, tm.Alice, tm.Room, "!sec contacts")
	waitMessage(t, ctx, tm.Alice, tm.Room, bot.UserID, "coordinator "+tm.Bob.ID().String())
	// The ladder goes on from where it was: the backup step, which the
	// clock reaches only now, reaches Alice.
	advance(t, ctx, bot, 20*time.Minute)
	escalationIn(t, tm.Room, tm.Alice, bot.UserID, caseID, "backup contact", 30*time.Second)
	bed.SettleWith(t, ctx, bot, tm.Marker(), tm.Alice, tm.Bob)
	if n := countFrom(tm.Alice, bot.UserID, "", "You are the security coordinator"); n < 1 {
		t.Error("the first escalation is missing")
	}
	coordinatorDMs := 0
	for _, evt := range tm.Bob.Events() {
		if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot.UserID && strings.Contains(body, caseID) && strings.Contains(body, "You are the security coordinator") {
			coordinatorDMs++
		}
	}
	if coordinatorDMs != 0 {
		t.Errorf("the coordinator step was sent again after the reload (%d times to Bob)", coordinatorDMs)
	}
	next := newUser(t, ctx, "handover2")
	dm := openDM(t, ctx, next, bot.UserID)
	say(t, ctx, next, dm, "I want to report a security issue")
	waitMessage(t, ctx, next, dm, bot.UserID, "Thanks! Your report is")
}
