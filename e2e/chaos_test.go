package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	ghsatest "github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// TestKillAnywhereLosesNothingAndDoublesNothing kills secbot (SIGKILL) at
// random moments while reporters open cases, GitHub advisories are
// drafted, the team claims cases and the deadlines' reminders and
// escalations fall due, restarting it each time. Afterwards every report
// has exactly one case room, one welcome, one DM answer and one advisory;
// every claim got one answer; every unclaimed case one reminder and one
// escalation to the coordinator, and no case more than one of either.
// SECBOT_CHAOS_SEED replays a run; SECBOT_CHAOS_KILLS sets how many kills.
func TestKillAnywhereLosesNothingAndDoublesNothing(t *testing.T) {
	ctx := testContext(t)
	rng, kills := chaosRun(t, 50)
	gh, err := testbed.NewGitHub(false)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	// Deadlines in seconds, so they fall due while the kills go on; the
	// ladder's second step lies beyond the test.
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "chaosbot", testbed.BotOptions{
		GitHub: gh,
		SLA:    map[string]string{"acknowledge": `"15s"`, "detailed_response": `"600s"`, "remind_before": `"5s"`, "repeat_every": `"1h"`},
		Extra:  "\n[[escalation]]\nafter = \"0s\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"1h\"\nnotify = \"backup\"\n",
	})

	const reporters = 10
	var users []*matrixtest.User
	var dms []id.RoomID
	for i := range reporters {
		u := newUser(t, ctx, fmt.Sprintf("chaos%d-", i))
		users = append(users, u)
		dms = append(dms, openDM(t, ctx, u, bot.UserID))
	}
	const claimed = reporters / 2 // the first half are claimed midway
	caseIDs := make([]string, reporters)
	next := 0
	for k := range kills {
		if k == kills/2 {
			for i := range claimed {
				ack := waitMessage(t, ctx, users[i], dms[i], bot.UserID, "Thank you for reaching out")
				caseIDs[i] = caseIDPattern.FindString(ack.Content.AsMessage().Body)
				say(t, ctx, bed.Bob, bed.TeamRoom, "!sec claim "+caseIDs[i])
			}
		}
		// Some reporters ask (the first time, or again) while the bot runs.
		for range 1 + rng.IntN(2) {
			u := users[next%reporters]
			say(t, ctx, u, dms[next%reporters], "I want to report a security issue")
			next++
		}
		// Not a quiet-period wait: a random moment to kill at, the scenario.
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		if err := bot.Kill(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if err := bot.Start(); err != nil {
			t.Fatalf("restart %d: %v", k, err)
		}
	}
	// Let everything settle: every reporter gets a room and a welcome.
	// Effects cut off by a kill wait before they are retried, so this can
	// take a while after fifty kills.
	const settle = 90 * time.Second
	rooms := make([]id.RoomID, reporters)
	for i, u := range users {
		invite, err := u.WaitInvite(ctx, settle, bot.UserID, func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect })
		if err != nil {
			t.Fatal(err)
		}
		rooms[i] = invite.RoomID
		if err := u.Join(ctx, rooms[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := u.WaitMessage(ctx, settle, rooms[i], bot.UserID, "Security report"); err != nil {
			// A second room of the case (made again after a kill) has no
			// welcome: say so rather than only that none came.
			t.Fatalf("%v (invited to %d case rooms)", err, len(invitesFrom(u, bot.UserID)))
		}
	}
	for i := claimed; i < reporters; i++ {
		ack := waitMessage(t, ctx, users[i], dms[i], bot.UserID, "Thank you for reaching out")
		caseIDs[i] = caseIDPattern.FindString(ack.Content.AsMessage().Body)
		escalationTo(t, bed.Alice, bot.UserID, caseIDs[i], "security coordinator", settle)
	}
	for i := range claimed {
		waitMessage(t, ctx, bed.Bob, bed.TeamRoom, bot.UserID, "is now the handler of "+caseIDs[i])
	}
	// Every request, claim and advisory has been handled and made, and
	// everyone has seen all the bot sent: nothing is still on its way.
	bed.Settle(t, ctx, bot, append([]*matrixtest.User{bed.Alice, bed.Bob}, users...)...)
	for i, caseID := range caseIDs {
		reminders := countFrom(bed.Alice, bot.UserID, bed.TeamRoom, "Reminder for **"+caseID)
		escalations := 0
		for _, evt := range bed.Alice.Events() {
			if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot.UserID && evt.RoomID != bed.TeamRoom &&
				strings.Contains(body, caseID) && strings.Contains(body, "You are the security coordinator") {
				escalations++
			}
		}
		switch {
		case i < claimed:
			if n := countFrom(bed.Bob, bot.UserID, bed.TeamRoom, "is now the handler of "+caseID); n != 1 {
				t.Errorf("the claim of %s was answered %d times, want 1", caseID, n)
			}
			if reminders > 1 || escalations > 1 {
				t.Errorf("claimed %s: %d reminders and %d escalations, want at most one of each", caseID, reminders, escalations)
			}
		case reminders != 1 || escalations != 1:
			t.Errorf("unclaimed %s: %d reminders and %d escalations to the coordinator, want one of each", caseID, reminders, escalations)
		}
	}
	// One room a case: the team is invited to every case room.
	if n := len(invitesFrom(bed.Alice, bot.UserID)); n != reporters {
		t.Errorf("the team was invited to %d case rooms, want %d", n, reporters)
	}
	for i, u := range users {
		if n := len(invitesFrom(u, bot.UserID)); n != 1 {
			t.Errorf("%s was invited to %d case rooms, want 1", u.ID(), n)
		}
		welcomes := 0
		for _, body := range messagesFrom(u, rooms[i], bot.UserID) {
			if strings.HasPrefix(body, "**Security report SR-") {
				welcomes++
			}
		}
		if welcomes != 1 {
			t.Errorf("%s saw %d welcomes, want 1", u.ID(), welcomes)
		}
		acks := 0
		for _, body := range messagesFrom(u, dms[i], bot.UserID) {
			if strings.Contains(body, "Thank you for reaching out") {
				acks++
			}
		}
		if acks != 1 {
			t.Errorf("%s got %d first answers in the DM, want 1", u.ID(), acks)
		}
	}
	oneAdvisoryACase(t, gh, reporters)
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// chaosRun is a chaos test's random source and number of kills, from
// SECBOT_CHAOS_SEED (else the time) and SECBOT_CHAOS_KILLS (else
// defaultKills), logged so that a run can be replayed.
func chaosRun(t *testing.T, defaultKills int) (*rand.Rand, int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("SECBOT_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	kills := defaultKills
	if k, err := strconv.Atoi(os.Getenv("SECBOT_CHAOS_KILLS")); err == nil {
		kills = k
	}
	t.Logf("chaos seed %d, %d kills (rerun with SECBOT_CHAOS_SEED=%d)", seed, kills, seed)
	return rand.New(rand.NewPCG(seed, seed>>1)), kills
}

// oneAdvisoryACase checks that gh holds advisories for cases cases, told
// apart by their summaries, and no summary twice.
func oneAdvisoryACase(t *testing.T, gh *ghsatest.Server, cases int) {
	t.Helper()
	summaries := map[string]int{}
	for _, a := range gh.Advisories() {
		summaries[a.Summary]++
	}
	if len(summaries) != cases {
		t.Errorf("advisories for %d cases, want %d", len(summaries), cases)
	}
	for s, n := range summaries {
		if n != 1 {
			t.Errorf("%d advisories named %q, want 1", n, s)
		}
	}
}
