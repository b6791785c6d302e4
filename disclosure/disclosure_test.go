package disclosure

import (
	"errors"
	"testing"
	"time"
)

func TestCaseIDsParseStrictlyAndRoundTrip(t *testing.T) {
	for _, s := range []string{"SR-2026-0007", "sr-2026-0001", "SR-2027-12345"} {
		c, err := ParseCaseID(s)
		if err != nil {
			t.Errorf("ParseCaseID(%q): %v", s, err)
			continue
		}
		back, err := ParseCaseID(c.String())
		if err != nil || back != c {
			t.Errorf("%q does not round-trip: %v %v", s, back, err)
		}
	}
	for _, s := range []string{"", "SR-2026-0000", "SR-26-0001", "SR-2026-001", "XX-2026-0001", "SR-2026-0001x", "SR-1999-0001", "SR-2026-00001", "SR 2026 0001", "SR-２０２６-0001", "SR-2026--1"} {
		if c, err := ParseCaseID(s); err == nil {
			t.Errorf("ParseCaseID(%q) accepted as %v", s, c)
		}
	}
}

func TestSpansParse(t *testing.T) {
	for in, want := range map[string]Span{
		"48h": {Fixed: 48 * time.Hour}, "90s": {Fixed: 90 * time.Second}, "1h30m": {Fixed: 90 * time.Minute},
		"3 days": {Fixed: 72 * time.Hour}, "1 day": {Fixed: 24 * time.Hour}, " 5  Working Days ": {WorkingDays: 5},
		"1 working day": {WorkingDays: 1}, "0s": {}, "2 business days": {WorkingDays: 2},
	} {
		got, err := ParseSpan(in)
		if err != nil || got != want {
			t.Errorf("ParseSpan(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, err := ParseSpan(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q does not parse back: %+v %v", in, got.String(), back, err)
		}
	}
	for _, in := range []string{"", "soon", "-5h", "-2 days", "5 weeks", "1.5 days", "99999999h", "100000 days", "5 working", "h48"} {
		if got, err := ParseSpan(in); err == nil {
			t.Errorf("ParseSpan(%q) accepted as %+v", in, got)
		}
	}
}

func mustCalendar(t *testing.T, tz string, holidays ...string) Calendar {
	t.Helper()
	c, err := NewCalendar(tz, []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, holidays)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func at(t *testing.T, tz, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWorkingDayArithmetic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tz       string
		holidays []string
		from     string
		days     int
		want     string
	}{
		{"a weekday plus five working days is the same time a week later", "UTC", nil, "2026-11-19 10:00", 5, "2026-11-26 10:00"},
		{"a case reported on a Friday evening is due Monday evening", "UTC", nil, "2026-11-20 18:30", 1, "2026-11-23 18:30"},
		{"a Friday evening report gets five working days to the next Friday", "UTC", nil, "2026-11-20 18:30", 5, "2026-11-27 18:30"},
		{"a Saturday report counts from Monday's start", "UTC", nil, "2026-11-21 11:00", 1, "2026-11-24 00:00"},
		{"holidays do not count", "UTC", []string{"2026-12-25", "2026-12-28"}, "2026-12-24 09:00", 2, "2026-12-30 09:00"},
		{"a report on a holiday counts from the next working day", "UTC", []string{"2026-12-25"}, "2026-12-25 09:00", 1, "2026-12-29 00:00"},
		{"the clock time holds across the spring DST change", "Europe/Berlin", nil, "2026-03-27 09:00", 1, "2026-03-30 09:00"},
		{"the clock time holds across the autumn DST change", "America/New_York", nil, "2026-10-30 17:00", 1, "2026-11-02 17:00"},
		{"holidays are dates in the policy's time zone", "Asia/Tokyo", []string{"2026-11-23"}, "2026-11-20 23:30", 1, "2026-11-24 23:30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := NewCalendar(tc.tz, []string{"mon", "Tuesday", "WED", "thu", "fri"}, tc.holidays)
			if err != nil {
				t.Fatal(err)
			}
			got := cal.Add(at(t, tc.tz, tc.from), Span{WorkingDays: tc.days})
			if want := at(t, tc.tz, tc.want); !got.Equal(want) {
				t.Errorf("got %s, want %s", got.In(cal.Location), want)
			}
		})
	}
}

func TestDSTFixedSpansAreWallTime(t *testing.T) {
	cal := mustCalendar(t, "Europe/Berlin")
	from := at(t, "Europe/Berlin", "2026-03-28 12:00")
	got := cal.Add(from, Span{Fixed: 48 * time.Hour})
	if got.Sub(from) != 48*time.Hour {
		t.Errorf("48h across DST took %s", got.Sub(from))
	}
}

func TestSubCountsWorkingDaysBack(t *testing.T) {
	cal := mustCalendar(t, "UTC")
	got := cal.Sub(at(t, "UTC", "2026-11-23 10:00"), Span{WorkingDays: 1})
	if want := at(t, "UTC", "2026-11-20 10:00"); !got.Equal(want) {
		t.Errorf("Monday minus one working day = %s, want Friday", got)
	}
}

func TestCalendarRefusesBadNames(t *testing.T) {
	if _, err := NewCalendar("Mars/Olympus", []string{"Mon"}, nil); err == nil {
		t.Error("unknown zone accepted")
	}
	if _, err := NewCalendar("UTC", []string{"Funday"}, nil); err == nil {
		t.Error("unknown weekday accepted")
	}
	if _, err := NewCalendar("UTC", nil, nil); err == nil {
		t.Error("no working days accepted")
	}
	if _, err := NewCalendar("UTC", []string{"Mon"}, []string{"25/12/2026"}); err == nil {
		t.Error("bad holiday accepted")
	}
}

func TestStageTransitions(t *testing.T) {
	type key struct {
		from Stage
		a    Action
	}
	allowed := map[key]Stage{
		{StageReceived, ActClaim}: StageAssigned, {StageAssigned, ActClaim}: StageAssigned,
		{StageConfirmed, ActClaim}: StageConfirmed, {StageAuditStarted, ActClaim}: StageAuditStarted, {StageAuditDone, ActClaim}: StageAuditDone,
		{StageAssigned, ActConfirm}:       StageConfirmed,
		{StageConfirmed, ActAuditStart}:   StageAuditStarted,
		{StageAuditStarted, ActAuditDone}: StageAuditDone,
		{StageConfirmed, ActFork}:         StageConfirmed, {StageAuditStarted, ActFork}: StageAuditStarted, {StageAuditDone, ActFork}: StageAuditDone,
		{StageAuditDone, ActPublish}: StagePublished,
		{StageReceived, ActReject}:   StageRejected, {StageAssigned, ActReject}: StageRejected, {StageConfirmed, ActReject}: StageRejected,
		{StageAuditStarted, ActReject}: StageRejected, {StageAuditDone, ActReject}: StageRejected,
		{StagePublished, ActClose}: StageClosed, {StageRejected, ActClose}: StageClosed,
	}
	actions := []Action{ActClaim, ActConfirm, ActAuditStart, ActAuditDone, ActFork, ActPublish, ActReject, ActClose}
	for _, from := range Stages {
		for _, a := range actions {
			got, err := Transition(from, a)
			want, ok := allowed[key{from, a}]
			switch {
			case ok && err != nil:
				t.Errorf("%s from %s refused: %v", a, from, err)
			case ok && got != want:
				t.Errorf("%s from %s → %s, want %s", a, from, got, want)
			case !ok && err == nil:
				t.Errorf("%s from %s allowed (→ %s), want refused", a, from, got)
			case !ok && (!errors.Is(err, ErrOutOfOrder) || got != from):
				t.Errorf("%s from %s: refusal %v must wrap ErrOutOfOrder and keep the stage (got %s)", a, from, err, got)
			}
		}
	}
	if _, err := Transition(StageAssigned, ActAuditStart); err == nil || err.Error() != "out of order: confirm the report before starting the audit" {
		t.Errorf("refusal does not say what comes first: %v", err)
	}
}

func TestEmbargoFollowsVultron(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	end1, end2 := now.Add(10*24*time.Hour), now.Add(20*24*time.Hour)
	var e Embargo
	if _, err := e.Propose(now.Add(-time.Hour), now); !errors.Is(err, ErrDateInPast) {
		t.Errorf("a past date: %v", err)
	}
	if _, err := e.Agree(); !errors.Is(err, ErrNoProposal) {
		t.Errorf("agree without proposal: %v", err)
	}
	if _, err := e.Lift(); !errors.Is(err, ErrNoEmbargo) {
		t.Errorf("lift without embargo: %v", err)
	}
	e, _ = e.Propose(end1, now)
	if e.State != EmbargoProposed || !e.Blocking(now) {
		t.Fatalf("after propose: %+v", e)
	}
	declined, _ := e.Disagree()
	if declined.State != EmbargoNone || declined.Blocking(now) {
		t.Errorf("a declined first proposal: %+v", declined)
	}
	e, _ = e.Agree()
	if e.State != EmbargoActive || !e.End.Equal(end1) || !e.Blocking(now) || e.Blocking(end1) || !e.Expired(end1) {
		t.Fatalf("after agree: %+v", e)
	}
	e, _ = e.Propose(end2, now)
	if e.State != EmbargoRevise || !e.End.Equal(end1) || !e.Proposed.Equal(end2) {
		t.Fatalf("a revision must keep the agreed end in force: %+v", e)
	}
	kept, _ := e.Disagree()
	if kept.State != EmbargoActive || !kept.End.Equal(end1) {
		t.Errorf("a declined revision: %+v", kept)
	}
	e, _ = e.Agree()
	if e.State != EmbargoActive || !e.End.Equal(end2) {
		t.Errorf("an agreed revision: %+v", e)
	}
	e, _ = e.Lift()
	if e.State != EmbargoExited || e.Blocking(now) {
		t.Errorf("after lift: %+v", e)
	}
	e, _ = e.Propose(end1, now)
	if e.State != EmbargoProposed {
		t.Errorf("a new proposal after exit: %+v", e)
	}
}

func TestLadderStepsAndRepeats(t *testing.T) {
	cal := mustCalendar(t, "UTC")
	l := Ladder{
		{After: Span{}, Notify: Notify{Role: "coordinator"}},
		{After: Span{Fixed: 24 * time.Hour}, Notify: Notify{Role: "backup"}},
		{After: Span{Fixed: 48 * time.Hour}, Notify: Notify{Role: "team"}},
	}
	breach := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	repeat := Span{Fixed: 24 * time.Hour}
	for n, want := range []struct {
		after time.Duration
		role  string
	}{{0, "coordinator"}, {24 * time.Hour, "backup"}, {48 * time.Hour, "team"}, {72 * time.Hour, "team"}, {96 * time.Hour, "team"}} {
		at, step, ok := l.StepAt(breach, n, repeat, cal)
		if !ok || !at.Equal(breach.Add(want.after)) || step.Notify.Role != want.role {
			t.Errorf("step %d = %s %s %v, want +%s %s", n, at, step.Notify.Role, ok, want.after, want.role)
		}
	}
	if _, _, ok := l.StepAt(breach, 3, Span{}, cal); ok {
		t.Error("without repeat_every the ladder must end")
	}
	if _, _, ok := (Ladder{}).StepAt(breach, 0, repeat, cal); ok {
		t.Error("an empty ladder fires")
	}
}

func TestNotifyParses(t *testing.T) {
	for in, want := range map[string]Notify{"coordinator": {Role: "coordinator"}, "Backup": {Role: "backup"}, "team": {Role: "team"}, "@carol:example.org": {Role: "user", User: "@carol:example.org"}} {
		if got, err := ParseNotify(in); err != nil || got != want {
			t.Errorf("ParseNotify(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "everyone", "carol", "@carol", "@:x", "@a b:x"} {
		if _, err := ParseNotify(in); err == nil {
			t.Errorf("ParseNotify(%q) accepted", in)
		}
	}
}

func TestSLADueAndReminder(t *testing.T) {
	cal := mustCalendar(t, "UTC")
	s := SLA{Acknowledge: Span{Fixed: 48 * time.Hour}, DetailedResponse: Span{Fixed: 96 * time.Hour}, UpdateInterval: Span{WorkingDays: 5}, RemindBefore: Span{Fixed: 12 * time.Hour}}
	from := time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC) // a Friday evening
	if got := s.Due(DeadlineAcknowledge, from, cal); !got.Equal(from.Add(48 * time.Hour)) {
		t.Errorf("acknowledge due %s", got)
	}
	if got := s.Due(DeadlineUpdate, from, cal); !got.Equal(time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("update due %s, want next Friday", got)
	}
	if got := s.RemindAt(from.Add(48*time.Hour), cal); !got.Equal(from.Add(36 * time.Hour)) {
		t.Errorf("reminder at %s", got)
	}
}
