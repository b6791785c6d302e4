package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/maddy"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// How fast a takeover must be on the test machine (shared, loaded): the
// standby polls the lock every 500 ms and starts as after a crash (login
// from the stored device, sync from the stored position).
const (
	takeoverWithin = 10 * time.Second // kill → the standby's role=active
	answerWithin   = 30 * time.Second // kill → the first answer
)

// instances are the two secbot processes of one installation on one
// PostgreSQL database and one Matrix device: one active, one standing by.
// The test plays their supervisor: a killed instance is started again and
// comes back as the standby.
type instances struct {
	active, standby *testbed.Bot
	// takeovers counts the offices taken by a standby; toActive and
	// toAnswer are the times measured, kill → active and kill → answer.
	takeovers          int
	toActive, toAnswer []time.Duration
	// offices counts every office taken, the first one included.
	offices int
	// armed is the crash point the active instance (or the standby) is
	// armed with, "" if none.
	armed string
}

// startPair starts bot as the active instance and a second process of it
// as the standby.
func startPair(t testing.TB, ctx context.Context, bot *testbed.Bot) *instances {
	t.Helper()
	if _, err := bot.WaitRole(ctx, "active", 2*wait); err != nil {
		t.Fatal(err)
	}
	listen, err := matrixtest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	standby, err := bot.Standby("standby", listen)
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = standby.Stop()
		if t.Failed() {
			t.Logf("standby's log (%s):\n%s", standby.LogPath, tail(standby.Log(), 25))
		}
	})
	if _, err := standby.WaitRole(ctx, "standby", wait); err != nil {
		t.Fatal(err)
	}
	return &instances{active: bot, standby: standby, offices: 1}
}

// kill SIGKILLs the active instance and returns when it happened.
func (p *instances) kill(t testing.TB) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.active.Kill(); err != nil {
		t.Fatal(err)
	}
	return at
}

// takeOver waits for the standby to take office after the active one died
// (at since), then starts the dead one again (with env) as the standby. A
// standby armed with a crash point may crash as soon as it is active, on
// work left over: it took office all the same.
func (p *instances) takeOver(t testing.TB, ctx context.Context, since time.Time, env ...string) {
	t.Helper()
	if _, err := p.standby.WaitRole(ctx, "active", takeoverWithin); err != nil && (p.armed == "" || p.standby.Running()) {
		t.Fatalf("no takeover: %v", err)
	}
	d := time.Since(since)
	p.toActive = append(p.toActive, d)
	p.takeovers++
	p.offices++
	p.active, p.standby = p.standby, p.active
	t.Logf("takeover %d: %s active %s after the kill", p.takeovers, p.active.LogPath, d.Round(time.Millisecond))
	p.restartStandby(t, ctx, env...)
}

// restartStandby starts the stopped instance again, as the standby. If the
// active one crashed meanwhile (armed), it takes office at once instead.
func (p *instances) restartStandby(t testing.TB, ctx context.Context, env ...string) {
	t.Helper()
	if err := p.standby.Start(env...); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(wait); ; {
		switch role := p.standby.Role(); {
		case role == "standby":
			return
		case role == "active" && p.armed != "" && !p.active.Running():
			t.Logf("the armed instance crashed before %s stood by: it took office at once", p.standby.LogPath)
			p.crashedAt(t)
			p.offices++
			p.active, p.standby = p.standby, p.active
			p.restartStandby(t, ctx)
			return
		case time.Now().After(deadline):
			t.Fatalf("%s is %q, want standby", p.standby.LogPath, role)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// arm restarts the standby with a crash point armed: it crashes there
// once it is active and reaches it.
func (p *instances) arm(t testing.TB, ctx context.Context, point string) {
	t.Helper()
	if err := p.standby.Kill(); err != nil {
		t.Fatal(err)
	}
	p.restartStandby(t, ctx, crashpoint.Env+"="+point)
	p.armed = point
}

// crashed waits for the armed active instance to crash at its point (if
// it has not already) and for the standby to take over from it.
func (p *instances) crashed(t testing.TB, ctx context.Context) {
	t.Helper()
	if p.armed == "" {
		return // it crashed while the other was starting (restartStandby)
	}
	p.crashedAt(t)
	p.takeOver(t, ctx, time.Now())
}

// crashedAt waits for the active instance to stop at its armed crash point
// (exit 137).
func (p *instances) crashedAt(t testing.TB) {
	t.Helper()
	if code, err := p.active.Wait(wait); err != nil || code != 137 {
		t.Fatalf("the crash point %s was not reached (exit %d, %v)", p.armed, code, err)
	}
	p.armed = ""
}

// replied has u say text in room and returns when the bot's reply to it
// came, failing after answerWithin.
func replied(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, bot id.UserID, text string) time.Time {
	t.Helper()
	sent := say(t, ctx, u, room, text)
	if _, err := u.Wait(ctx, answerWithin, "the answer to "+text, func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == bot && ok && msg.RelatesTo != nil && msg.RelatesTo.GetReplyTo() == sent
	}); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// logged reports whether a line of the bot's log holds every one of parts.
func logged(bot *testbed.Bot, parts ...string) bool {
	for _, line := range strings.Split(bot.Log(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			return true
		}
	}
	return false
}

// effectMarkers maps the outbox row named by each of the bot's messages
// (org.secbot.effect) that the observers saw to the events that carry it.
func effectMarkers(bot id.UserID, observers ...*matrixtest.User) map[int64]map[id.EventID]bool {
	out := map[int64]map[id.EventID]bool{}
	for _, u := range observers {
		for _, evt := range u.Events() {
			if evt.Sender != bot || evt.Type != event.EventMessage {
				continue
			}
			v, ok := evt.Content.Raw["org.secbot.effect"].(float64)
			if !ok {
				continue
			}
			if out[int64(v)] == nil {
				out[int64(v)] = map[id.EventID]bool{}
			}
			out[int64(v)][evt.ID] = true
		}
	}
	return out
}

// TestFailoverUnderLoadLosesNothingAndDoublesNothing runs two secbot
// processes on one PostgreSQL database and one Matrix device, one active
// and one standing by, while reporters open cases on Matrix and by email
// and the team claims them. The active instance is SIGKILLed at random
// moments and crashes at named crash points (the standby armed with one
// before it takes over); the test, as the supervisor, starts each dead
// instance again as the standby. Every time the standby is active within
// takeoverWithin of the kill; after each random kill the team's command
// sent right after it is answered within answerWithin. Afterwards every reporter has one first answer, one
// case room and one welcome, every claim one answer, every email reporter
// one answer by mail; no outbox row is pending or failed and no two Matrix events
// carry the same row; the leader row counts the takeovers. Then the clock
// steps past the unclaimed cases' deadlines, the active instance is killed
// as soon as the coordinator's step fired, and each case is escalated
// exactly once; a reporter's encrypted message and a new reporter's report
// after the last takeover are decrypted and answered (the olm store came
// along), and so is a reporter's emailed follow-up. Every case has one
// GitHub advisory. SECBOT_FAILOVER_SEED replays the random kills;
// SECBOT_FAILOVER_KILLS sets how many there are.
func TestFailoverUnderLoadLosesNothingAndDoublesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("SECBOT_FAILOVER_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (rerun with SECBOT_FAILOVER_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	kills := 4
	if k, err := strconv.Atoi(os.Getenv("SECBOT_FAILOVER_KILLS")); err == nil {
		kills = k
	}

	tm := newTeam(t, ctx)
	tm.Alice.SetAutoJoin(true)
	tm.Bob.SetAutoJoin(true)
	mailers := []string{"failover1@" + mailtest.Domain, "failover2@" + mailtest.Domain}
	srv := startMail(t, ctx, false, mailers...)
	gh, err := testbed.NewGitHub(false)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	opts := servedOptions(t, onTeam(steppedPolicy, tm))
	opts.Postgres, opts.Mail, opts.GitHub = pgtest.Start(t), srv, gh
	p := startPair(t, ctx, startBot(t, ctx, "failoverbot", opts))
	bot := p.active.UserID

	// The reporters' DMs are open before the kills begin: the first four
	// report during the random kills, three more each trigger a crash
	// point, one is cut off while its room is made, one comes after the
	// last takeover.
	var users []*matrixtest.User
	var dms []id.RoomID
	for i := range 8 {
		u := newUser(t, ctx, fmt.Sprintf("failover%d-", i))
		u.SetAutoJoin(true)
		users = append(users, u)
		dms = append(dms, openDM(t, ctx, u, bot))
	}
	const early = 4
	caseIDs := make([]string, len(users))
	ackOf := func(i int) string {
		if caseIDs[i] == "" {
			ack := waitMessage(t, ctx, users[i], dms[i], bot, "Thank you for reaching out")
			caseIDs[i] = caseIDPattern.FindString(ack.Content.AsMessage().Body)
		}
		return caseIDs[i]
	}
	claimed := map[string]bool{}

	// Random kills under load: reporters write (first reports and
	// repeats), the first email arrives, the team claims.
	for k := range kills {
		for range 1 + rng.IntN(3) {
			i := rng.IntN(early)
			say(t, ctx, users[i], dms[i], "I want to report a security issue")
		}
		switch k {
		case 0:
			deliver(t, srv, mailers[0], email{from: mailers[0], subject: "a vulnerability in the parser", messageID: "failover1@" + mailtest.Domain, text: "a heap overflow"})
		case 1:
			for i := range 2 {
				say(t, ctx, users[i], dms[i], "I want to report a security issue")
				caseID := ackOf(i)
				say(t, ctx, tm.Bob, tm.Room, "!sec claim "+caseID)
				claimed[caseID] = true
			}
		}
		// Not a quiet-period wait: a random moment to kill at, the scenario.
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		killed := p.kill(t)
		// The team's command sent right after the kill is answered by
		// the new active instance.
		p.takeOver(t, ctx, killed)
		d := replied(t, ctx, tm.Alice, tm.Room, bot, "!sec help").Sub(killed)
		p.toAnswer = append(p.toAnswer, d)
		t.Logf("kill %d: answered %s after the kill", k, d.Round(time.Millisecond))
	}
	for i := range early {
		say(t, ctx, users[i], dms[i], "I want to report a security issue")
		ackOf(i)
	}

	// Crash points: the standby is armed, the active one killed; the armed
	// one takes over and crashes at the point when the trigger reaches it
	// (or at once, on work left over); the other takes over from it.
	next := early
	points := []struct {
		point   string
		trigger func()
	}{
		{"handler.before_commit", func() {
			say(t, ctx, users[next], dms[next], "I want to report a security issue")
			next++
		}},
		{"outbox.after.chat.create_case_room", func() {
			say(t, ctx, users[next], dms[next], "I want to report a security issue")
			next++
		}},
		{"decrypt.before_handle", func() {
			say(t, ctx, users[next], dms[next], "I want to report a security issue")
			next++
		}},
		{"outbox.after.chat.send", func() {
			caseID := ackOf(2)
			say(t, ctx, tm.Bob, tm.Room, "!sec claim "+caseID)
			claimed[caseID] = true
		}},
		{"outbox.after.mail.send", func() {
			deliver(t, srv, mailers[1], email{from: mailers[1], subject: "a second vulnerability", messageID: "failover2@" + mailtest.Domain, text: "a use after free"})
		}},
	}
	for _, cp := range points {
		// Idle first, so that the point is reached in the trigger's work.
		bed.SettleWith(t, ctx, p.active, tm.Marker())
		p.arm(t, ctx, cp.point)
		p.takeOver(t, ctx, p.kill(t))
		if p.armed != "" {
			cp.trigger()
		}
		p.crashed(t, ctx)
	}
	// A kill the moment a case is opened: its room is being created at
	// the homeserver while the standby takes over and retries.
	say(t, ctx, users[next], dms[next], "I want to report a security issue")
	for deadline := time.Now().Add(wait); !logged(p.active, `"message":"Opened case"`, `"sender":"matrix:`+users[next].ID().String()+`"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no case opened for %s:\n%s", users[next].ID(), tail(p.active.Log(), 20))
		}
		time.Sleep(5 * time.Millisecond) // polls the log file, no quiet-period wait
	}
	next++
	// Not a quiet-period wait: the moment to kill at, the scenario (the
	// case's effects, its room first, are on their way then).
	time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
	p.takeOver(t, ctx, p.kill(t))
	bed.SettleWith(t, ctx, p.active, tm.Marker())

	// After the takeovers: a reporter's next encrypted message is read and
	// answered, and so is a new reporter's first.
	say(t, ctx, users[0], dms[0], "hello again")
	waitMessage(t, ctx, users[0], dms[0], bot, "already have an open report with us: **"+ackOf(0))
	late := newUser(t, ctx, "failoverlate")
	late.SetAutoJoin(true)
	users, dms = append(users, late), append(dms, openDM(t, ctx, late, bot))
	caseIDs = append(caseIDs, "")
	say(t, ctx, late, dms[len(dms)-1], "I want to report a security issue")
	for i := range users {
		ackOf(i)
	}
	var mailCases []string
	for _, addr := range mailers {
		got := inbox(t, ctx, srv, addr, 1)
		mailCases = append(mailCases, caseIDPattern.FindString(got[0].subject))
	}
	// The first email reporter follows up in the thread: posted once in
	// the case room (the mail memory came along).
	ack := inbox(t, ctx, srv, mailers[0], 1)[0]
	followUp := canary("FOLLOW-UP")
	deliver(t, srv, mailers[0], email{from: mailers[0], subject: "Re: " + ack.subject, messageID: "failover1b@" + mailtest.Domain, inReplyTo: ack.messageID, text: "More: " + followUp + "\n"})
	waitMessage(t, ctx, tm.Alice, "", bot, followUp)
	for i, u := range users {
		if _, err := u.WaitMessage(ctx, 2*wait, "", bot, "Security report "+caseIDs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for caseID := range claimed {
		waitMessage(t, ctx, tm.Bob, tm.Room, bot, "is now the handler of "+caseID)
	}
	observers := append([]*matrixtest.User{tm.Alice, tm.Bob}, users...)
	bed.SettleWith(t, ctx, p.active, tm.Marker(), observers...)

	// A deadline passes after the takeovers: the reminders, then the
	// coordinator's step, and a kill as soon as that step fired.
	unclaimed := append([]string(nil), mailCases...)
	for _, caseID := range caseIDs {
		if !claimed[caseID] {
			unclaimed = append(unclaimed, caseID)
		}
	}
	advance(t, ctx, p.active, 20*time.Minute)
	for _, caseID := range unclaimed {
		waitMessage(t, ctx, tm.Alice, tm.Room, bot, "Reminder for **"+caseID)
	}
	advance(t, ctx, p.active, 20*time.Minute)
	const fired = `"deadline":"acknowledge","step":0,"reminder":false`
	for deadline := time.Now().Add(wait); !strings.Contains(p.active.Log(), fired); {
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator's step did not fire:\n%s", tail(p.active.Log(), 20))
		}
		time.Sleep(20 * time.Millisecond) // polls the log file, no quiet-period wait
	}
	killed := p.kill(t)
	p.takeOver(t, ctx, killed)
	for _, caseID := range unclaimed {
		escalationIn(t, tm.Room, tm.Alice, bot, caseID, "security coordinator", 2*wait)
	}
	bed.SettleWith(t, ctx, p.active, tm.Marker(), observers...)

	// Counted after the barrier: nothing lost, nothing doubled.
	for i, u := range users {
		if n := len(invitesFrom(u, bot)); n != 1 {
			t.Errorf("%s was invited to %d case rooms, want 1", u.ID(), n)
		}
		if n := countFrom(u, bot, dms[i], "Thank you for reaching out"); n != 1 {
			t.Errorf("%s got %d first answers, want 1", u.ID(), n)
		}
		if n := countFrom(u, bot, "", "**Security report "+caseIDs[i]); n != 1 {
			t.Errorf("%s saw %d welcomes, want 1", u.ID(), n)
		}
		want := 1
		if claimed[caseIDs[i]] {
			want = 0
		}
		if n := countFrom(u, bot, "", "I have escalated"); n != want {
			t.Errorf("%s was told %d times that %s was escalated, want %d", u.ID(), n, caseIDs[i], want)
		}
	}
	// An email reporter gets the answer and, the acknowledgement overdue,
	// word that it was escalated: one of each.
	for _, addr := range mailers {
		got := inbox(t, ctx, srv, addr, 2)
		acks, chased := 0, 0
		for _, m := range got {
			acks += strings.Count(m.text, "Thank you for your report")
			chased += strings.Count(m.text, "I have escalated")
		}
		if acks != 1 || chased != 1 || len(got) != 2 {
			t.Errorf("%s got %d mails, %d answers and %d escalation notes, want 2, 1 and 1:", addr, len(got), acks, chased)
			for _, m := range got {
				t.Logf("%s %q: %.300q", m.messageID, m.subject, m.text)
			}
		}
	}
	if n := countFrom(tm.Alice, bot, "", followUp); n != 1 {
		t.Errorf("the emailed follow-up was posted %d times, want 1", n)
	}
	for caseID := range claimed {
		if n := countFrom(tm.Bob, bot, tm.Room, "is now the handler of "+caseID); n != 1 {
			t.Errorf("the claim of %s was answered %d times, want 1", caseID, n)
		}
	}
	escalations := func(caseID string) int {
		n := 0
		for _, evt := range tm.Alice.Events() {
			if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot && evt.RoomID != tm.Room &&
				strings.Contains(body, caseID) && strings.Contains(body, "You are the security coordinator") {
				n++
			}
		}
		return n
	}
	for _, caseID := range unclaimed {
		if n := countFrom(tm.Alice, bot, tm.Room, "Reminder for **"+caseID); n != 1 {
			t.Errorf("%s: %d reminders, want 1", caseID, n)
		}
		if escalations := escalations(caseID); escalations != 1 {
			t.Errorf("%s was escalated to the coordinator %d times, want 1", caseID, escalations)
		}
	}
	for caseID := range claimed {
		if n := escalations(caseID); n != 0 {
			t.Errorf("the claimed %s was escalated %d times", caseID, n)
		}
	}

	// Every row ran once: none left or failed, and each row the observers
	// can see is one message, the one its result names.
	markers := effectMarkers(bot, observers...)
	db, err := p.active.OpenDB(true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, kind, state, result FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	sends := 0
	for rows.Next() {
		var rowID int64
		var kind, state, result string
		if err := rows.Scan(&rowID, &kind, &state, &result); err != nil {
			t.Fatal(err)
		}
		states[state]++
		if kind != "chat.send" || state != "done" || markers[rowID] == nil {
			continue
		}
		sends++
		var sent struct{ Event id.EventID }
		_ = json.Unmarshal([]byte(result), &sent)
		if len(markers[rowID]) != 1 || !markers[rowID][sent.Event] {
			t.Errorf("outbox row %d is %v in the rooms, its result %s", rowID, markers[rowID], result)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	t.Logf("outbox rows by state: %v; %d sends seen by the observers", states, sends)
	if states["pending"] != 0 || states["failed"] != 0 {
		t.Errorf("outbox rows by state: %v, want none pending or failed", states)
	}
	if sends < len(users)*2 {
		t.Errorf("only %d sent messages carry their row: the check above proves little", sends)
	}
	for rowID, evts := range markers {
		if len(evts) != 1 {
			t.Errorf("outbox row %d was sent %d times: %v", rowID, len(evts), evts)
		}
	}
	var cases, epoch, takeovers int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM cases), epoch, takeovers FROM leader`).Scan(&cases, &epoch, &takeovers); err != nil {
		t.Fatal(err)
	}
	if want := len(users) + len(mailers); cases != want {
		t.Errorf("%d cases, want %d", cases, want)
	}
	if epoch != p.offices || takeovers != p.takeovers {
		t.Errorf("the leader row has epoch %d and %d takeovers, want %d and %d", epoch, takeovers, p.offices, p.takeovers)
	}
	oneAdvisoryACase(t, gh, cases)
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("GitHub stand-in violations: %v", v)
	}
	t.Logf("kill → active: %v; kill → answer: %v", p.toActive, p.toAnswer)
}
