package timers_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/testenv/fakechat"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

type (
	Policy = timers.Policy
	Timers = timers.Timers
)

// TimersLane is the lane the timers' messages go in.
func TimersLane(id disclosure.CaseID) string { return timers.TimersLane(id) }

// NewDeadline is a deadline as the domain plans it, as stored.
func NewDeadline(id disclosure.CaseID, kind disclosure.DeadlineKind, from time.Time, p Policy) store.Deadline {
	d := p.NewDeadline(kind, from)
	return store.Deadline{CaseID: id, Kind: d.Kind, StartedAt: d.StartedAt, DueAt: d.DueAt, RemindAt: d.RemindAt, NextAt: d.NextAt}
}

func mustSpan(t testing.TB, s string) disclosure.Span {
	t.Helper()
	sp, err := disclosure.ParseSpan(s)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func testPolicy(t testing.TB) Policy {
	cal, err := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	notify := func(s string) disclosure.Notify {
		n, err := disclosure.ParseNotify(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return Policy{
		SLA: disclosure.SLA{
			Acknowledge: mustSpan(t, "48h"), DetailedResponse: mustSpan(t, "96h"), UpdateInterval: mustSpan(t, "5 working days"),
			RemindBefore: mustSpan(t, "12h"), RepeatEvery: mustSpan(t, "24h"),
		},
		Calendar: cal,
		Ladder: disclosure.Ladder{
			{After: mustSpan(t, "0s"), Notify: notify("coordinator")},
			{After: mustSpan(t, "24h"), Notify: notify("backup")},
			{After: mustSpan(t, "48h"), Notify: notify("team")},
		},
		TeamRoom: "matrix:!team:x", Team: []disclosure.Person{"matrix:@alice:x", "matrix:@bob:x"}, Coordinator: "matrix:@alice:x", Backup: "matrix:@bob:x",
	}
}

type fixture struct {
	store  *store.Store
	clock  *clockwork.FakeClock
	tmpl   *templates.Set
	policy Policy
	path   string
}

func newFixture(t testing.TB, start time.Time) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secbot.db")
	st, err := store.Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, clock: clockwork.NewFakeClockAt(start), tmpl: tmpl, policy: testPolicy(t), path: path}
}

// timers are the timers as main.go wires them: the real handlers apply
// what the domain decides.
func (f *fixture) timers() *Timers {
	policy := disclosure.NewInForce(f.policy)
	h := handlers.New(policy, f.store, fakechat.Platforms(), f.tmpl, f.clock, nil)
	return timers.NewTimers(f.store, f.clock, policy, h, zerolog.Nop(), nil)
}

func (f *fixture) openCase(t testing.TB, reporter disclosure.Person, at time.Time) *store.Case {
	t.Helper()
	ctx := context.Background()
	var c *store.Case
	err := f.store.Tx(ctx, func(ctx context.Context) error {
		var err error
		if c, err = f.store.CreateCase(ctx, reporter, "matrix:!dm:x", "matrix:!dm:x", at); err != nil {
			return err
		}
		for _, kind := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
			if err := f.store.SetDeadline(ctx, NewDeadline(c.ID, kind, at, f.policy)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sends counts the messages the timers recorded, by case lane.
func (f *fixture) sends(t testing.TB) map[string]int {
	t.Helper()
	effects, _, err := f.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range effects {
		out[e.Lane]++
	}
	return out
}

var friday = time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)

func TestNoAnswerRunsTheLadderInOrderThenRepeats(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	tm := f.timers()
	ctx := context.Background()
	ack, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	wantTimes := []time.Time{
		ack.DueAt.Add(-12 * time.Hour), // reminder
		ack.DueAt,                      // coordinator
		ack.DueAt.Add(24 * time.Hour),  // backup
		ack.DueAt.Add(48 * time.Hour),  // team
		ack.DueAt.Add(72 * time.Hour),  // team again
	}
	state := func() (bool, int) {
		d, err := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
		if err != nil {
			t.Fatal(err)
		}
		return d.Reminded, d.LadderStep
	}
	for i, at := range wantTimes {
		f.clock.Advance(at.Sub(f.clock.Now()) - time.Millisecond)
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		reminded, step := state()
		if wantReminded, wantStep := i > 0, max(i-1, 0); reminded != wantReminded || step != wantStep {
			t.Fatalf("just before firing %d: reminded %v step %d, want %v and %d", i, reminded, step, wantReminded, wantStep)
		}
		f.clock.Advance(time.Millisecond)
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if reminded, step := state(); !reminded || step != i {
			t.Fatalf("at firing %d (%s): reminded %v step %d, want true and %d", i, at, reminded, step, i)
		}
	}
}

func TestAnAcknowledgementMidLadderStopsIt(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	tm := f.timers()
	ctx := context.Background()
	ack, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	f.clock.Advance(ack.DueAt.Sub(f.clock.Now()) + time.Hour)
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.sends(t)[TimersLane(c.ID)]
	if _, err := f.store.MeetDeadline(ctx, c.ID, disclosure.DeadlineAcknowledge, "matrix:@alice:x", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Hour) // past the backup's step
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	if d.LadderStep != 1 {
		t.Errorf("ladder went on after the acknowledgement: step %d", d.LadderStep)
	}
	// Only the detailed response's reminder may have been added meanwhile.
	resp, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineResponse)
	extra := 0
	if resp.Reminded {
		extra = 1
	}
	if got := f.sends(t)[TimersLane(c.ID)]; got != before+extra {
		t.Errorf("sends after the acknowledgement: %d, want %d", got, before+extra)
	}
}

func TestAStaleFiringDoesNothing(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	tm := f.timers()
	ctx := context.Background()
	old, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineResponse)
	// The deadline moves (a new generation) after the job read it.
	if err := f.store.SetDeadline(ctx, NewDeadline(c.ID, disclosure.DeadlineResponse, friday.Add(time.Hour), f.policy)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(old.RemindAt.Sub(f.clock.Now()))
	ok, err := timers.Fire(tm, ctx, *old)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Error("a firing scheduled for an old generation went out")
	}
	if n := f.sends(t)[TimersLane(c.ID)]; n != 0 {
		t.Errorf("%d messages recorded by a stale firing", n)
	}
}

func TestDowntimeFiresEverythingOnceInOrderMarkedLate(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	ctx := context.Background()
	ack, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	// secbot was down from intake until two days after the acknowledgement was due.
	f.clock.Advance(ack.DueAt.Sub(f.clock.Now()) + 50*time.Hour)
	tm := f.timers()
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	if !d.Reminded || d.LadderStep != 3 {
		t.Fatalf("after downtime: reminded %v, step %d; want the reminder and 3 steps", d.Reminded, d.LadderStep)
	}
	effects, _, _ := f.store.EffectsOfKind(ctx, outbox.KindSend)
	late := 0
	for _, e := range effects {
		var p outbox.SendEffect
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if containsLate(p.Markdown) {
			late++
		}
	}
	if late == 0 {
		t.Error("no firing after downtime says it is late")
	}
}

func containsLate(s string) bool { return strings.Contains(s, "late: secbot was not running") }

// expected counts the firings a deadline must make by end when it is met
// at metAt (zero: never).
func expected(d store.Deadline, p Policy, metAt, end time.Time) (reminder bool, steps int) {
	open := func(at time.Time) bool { return !at.After(end) && (metAt.IsZero() || at.Before(metAt)) }
	reminder = !d.RemindAt.IsZero() && open(d.RemindAt)
	for n := 0; ; n++ {
		at, _, ok := p.Ladder.StepAt(d.DueAt, n, p.SLA.RepeatEvery, p.Calendar)
		if !ok || !open(at) {
			return reminder, steps
		}
		steps++
	}
}

func TestThousandCasesOverTwoWeeksFireExactlyOnce(t *testing.T) {
	f := newFixture(t, friday)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	type meet struct {
		at   time.Time
		id   disclosure.CaseID
		kind disclosure.DeadlineKind
	}
	var meets []meet
	metAt := map[string]time.Time{}
	key := func(c disclosure.CaseID, k disclosure.DeadlineKind) string { return c.String() + "/" + string(k) }
	var cases []*store.Case
	for i := range 1000 {
		at := friday.Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
		c := f.openCase(t, disclosure.Person("matrix:@r"+strconv.Itoa(i)+":x"), at)
		cases = append(cases, c)
		for _, kind := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
			if rng.IntN(3) > 0 { // two in three are answered, some late
				m := meet{at: at.Add(time.Duration(rng.Int64N(int64(150 * time.Hour)))).Truncate(time.Second), id: c.ID, kind: kind}
				meets = append(meets, m)
				metAt[key(c.ID, kind)] = m.at
			}
		}
	}
	sort.Slice(meets, func(i, j int) bool { return meets[i].at.Before(meets[j].at) })
	end := friday.Add(14 * 24 * time.Hour)

	tm := f.timers()
	restarted := false
	for {
		next, err := f.store.NextDeadlineAt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(meets) > 0 && (next.IsZero() || !meets[0].at.After(next)) {
			next = meets[0].at
		}
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(f.clock.Now()) {
			f.clock.Advance(next.Sub(f.clock.Now()))
		}
		for len(meets) > 0 && !meets[0].at.After(f.clock.Now()) {
			if _, err := f.store.MeetDeadline(ctx, meets[0].id, meets[0].kind, "matrix:@alice:x", meets[0].at); err != nil {
				t.Fatal(err)
			}
			meets = meets[1:]
		}
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		// A second tick at the same moment fires nothing more.
		if n, err := tm.Tick(ctx); err != nil || n != 0 {
			t.Fatalf("a repeated tick fired %d, %v", n, err)
		}
		if !restarted && f.clock.Now().After(friday.Add(7*24*time.Hour)) {
			tm, restarted = f.timers(), true // a restart: new timers, same database
		}
	}
	f.clock.Advance(end.Sub(f.clock.Now()))
	if _, err := tm.Tick(ctx); err != nil {
		t.Fatal(err)
	}

	wantSends := map[string]int{}
	for _, c := range cases {
		for _, kind := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
			d, err := f.store.Deadline(ctx, c.ID, kind)
			if err != nil {
				t.Fatal(err)
			}
			reminder, steps := expected(*d, f.policy, metAt[key(c.ID, kind)], end)
			if d.Reminded != reminder || d.LadderStep != steps {
				t.Fatalf("%s %s: reminded %v steps %d, want %v and %d", c.ID, kind, d.Reminded, d.LadderStep, reminder, steps)
			}
			n := steps
			if reminder {
				n++
			}
			if steps > 0 {
				n++ // the reporter is told once that the team was chased
			}
			wantSends[TimersLane(c.ID)] += n
		}
	}
	got := f.sends(t)
	for lane, want := range wantSends {
		if got[lane] != want {
			t.Errorf("%s: %d messages, want %d", lane, got[lane], want)
		}
	}
}

func TestGocronTicksOnTheInjectedClock(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tm := f.timers()
	ack, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	// Jump to just before the reminder, then start the timers.
	f.clock.Advance(ack.RemindAt.Sub(f.clock.Now()) + 500*time.Millisecond)
	s, err := tm.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
		if d.Reminded {
			return
		}
		f.clock.Advance(100 * time.Millisecond)
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the gocron job did not fire the due reminder on the fake clock")
}

func TestEmbargoEndRemindersGoOutOnceEach(t *testing.T) {
	f := newFixture(t, friday)
	c := f.openCase(t, "matrix:@r:x", friday)
	ctx := context.Background()
	end := friday.Add(10 * 24 * time.Hour)
	e, _ := disclosure.Embargo{}.Propose(end, friday)
	e, _ = e.Agree()
	if err := f.store.SetEmbargo(ctx, c.ID, e, disclosure.EmbargoReminders(end, f.policy.Calendar), friday); err != nil {
		t.Fatal(err)
	}
	tm := f.timers()
	count := func() int {
		n := 0
		for _, md := range f.markdowns(t) {
			if strings.Contains(md, "The embargo of **"+c.ID.String()) {
				n++
			}
		}
		return n
	}
	for _, step := range []struct {
		at   time.Time
		want int
	}{
		{end.Add(-7*24*time.Hour - time.Minute), 0},
		{end.Add(-7 * 24 * time.Hour), 1},
		{end.Add(-24 * time.Hour), 2},
		{time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC), 3},
		{end.Add(time.Hour), 3},
	} {
		f.clock.Advance(step.at.Sub(f.clock.Now()))
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := tm.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != step.want {
			t.Fatalf("at %s: %d embargo reminders, want %d", step.at, got, step.want)
		}
	}
}

// markdowns returns the text of every message recorded.
func (f *fixture) markdowns(t testing.TB) []string {
	effects, _, err := f.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range effects {
		var p outbox.SendEffect
		if err := e.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Markdown)
	}
	return out
}

func TestFinishedWorkIsPrunedAfterTheRetention(t *testing.T) {
	f := newFixture(t, friday)
	ctx := context.Background()
	old, err := outbox.Enqueue(ctx, f.store, "SR-2026-0001", outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "matrix:!r:x"}, Markdown: "old"}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CompleteEffect(ctx, old, nil, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	pending, _ := outbox.Enqueue(ctx, f.store, "SR-2026-0002", outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "matrix:!r:x"}, Markdown: "pending"}, f.clock.Now())
	if _, err := f.store.MarkHandledBriefly(ctx, "$old", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.MarkHandled(ctx, "$command", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	timers := f.timers()
	timers.SetRetention(30 * 24 * time.Hour)
	f.clock.Advance(31 * 24 * time.Hour)
	if _, err := f.store.MarkHandled(ctx, "$new", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := timers.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if state, _, err := f.store.EffectResult(ctx, old); err == nil {
		t.Errorf("a made effect older than the retention is kept (%s)", state)
	}
	if state, _, err := f.store.EffectResult(ctx, pending); err != nil || state != "pending" {
		t.Errorf("pending work was pruned: %s, %v", state, err)
	}
	if handled, _ := f.store.WasHandled(ctx, "$old"); handled {
		t.Error("an old handled chatter ID is kept")
	}
	if handled, _ := f.store.WasHandled(ctx, "$command"); !handled {
		t.Error("an old handled command's ID was pruned: its redelivery would be handled again")
	}
	if handled, _ := f.store.WasHandled(ctx, "$new"); !handled {
		t.Error("a recent handled-event ID was pruned")
	}
}

// The timers' decisions are applied as a command's are: the word to an
// email reporter that the team was chased goes in the case room and by
// mail, and the first step's audit line names secbot.
func TestTheFirstStepIsMailedToAnEmailReporter(t *testing.T) {
	f := newFixture(t, friday)
	ctx := context.Background()
	c := f.openCase(t, disclosure.EmailPerson("r@example.org"), friday)
	if err := f.store.SetChannel(ctx, c.ID, disclosure.ChannelEmail); err != nil {
		t.Fatal(err)
	}
	ack, _ := f.store.Deadline(ctx, c.ID, disclosure.DeadlineAcknowledge)
	f.clock.Advance(ack.DueAt.Sub(f.clock.Now()))
	if _, err := f.timers().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	mails, _, err := f.store.EffectsOfKind(ctx, outbox.KindMailSend)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 1 {
		t.Fatalf("%d mails, want the one saying the team was chased", len(mails))
	}
	var m outbox.MailSendEffect
	if err := mails[0].Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.To != "r@example.org" || !m.Auto || !strings.Contains(m.Text, "acknowledgement") {
		t.Errorf("mail %+v", m)
	}
	inRoom := 0
	for _, md := range f.markdowns(t) {
		if strings.Contains(md, "acknowledgement") && !strings.Contains(md, c.ID.String()) {
			inRoom++ // the note names no case: the reporter's room is theirs
		}
	}
	if inRoom != 1 {
		t.Errorf("%d notes in the case room, want 1", inRoom)
	}
	entries, err := f.store.AuditOf(ctx, c.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || e.Action == "escalation" && e.Actor == disclosure.Timer && e.Detail == "acknowledge step 1"
	}
	if !found {
		t.Errorf("no escalation audited by secbot: %+v", entries)
	}
}
