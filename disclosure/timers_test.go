package disclosure

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/enarx/secbot/templates"
)

// told is a message of a decision as a test reads it: where it goes, who
// it pings, and which template.
type told struct {
	to       AudienceKind
	who      Person
	mentions []Person
	template string
}

func toldOf(d Decision) []told {
	var out []told
	for _, m := range d.Say {
		out = append(out, told{to: m.To.Kind, who: m.To.Who, mentions: m.Mentions, template: m.Data.Template()})
	}
	return out
}

func TestNewDeadlinePlansTheReminderAndTheFirstFiring(t *testing.T) {
	p := testPolicy()
	p.SLA.RemindBefore = Span{Fixed: 12 * time.Hour}
	d := p.NewDeadline(DeadlineAcknowledge, now)
	if want := now.Add(48 * time.Hour); !d.DueAt.Equal(want) {
		t.Errorf("due %s, want %s", d.DueAt, want)
	}
	if want := now.Add(36 * time.Hour); !d.RemindAt.Equal(want) || !d.NextAt.Equal(want) {
		t.Errorf("reminder %s, first firing %s; want both %s", d.RemindAt, d.NextAt, want)
	}
	// A reminder that would come before the clock starts is not planned:
	// the first firing is the ladder's first step, when the promise is due.
	p.SLA.RemindBefore = Span{Fixed: 72 * time.Hour}
	d = p.NewDeadline(DeadlineAcknowledge, now)
	if !d.RemindAt.IsZero() || !d.NextAt.Equal(d.DueAt) {
		t.Errorf("reminder %s and first firing %s, want none and %s", d.RemindAt, d.NextAt, d.DueAt)
	}
	if at, what := p.NextFiring(Deadline{DueAt: now, MetAt: now}); what != FireNothing || !at.IsZero() {
		t.Errorf("a met deadline fires %d at %s", what, at)
	}
}

func TestTheTimersTellWhoTheLadderNamesAtEachStep(t *testing.T) {
	p := testPolicy()
	due := now
	remind := due.Add(-12 * time.Hour)
	dl := func(reminded bool, step int, by Person) Deadline {
		return Deadline{Kind: DeadlineAcknowledge, StartedAt: due.Add(-48 * time.Hour), DueAt: due, RemindAt: remind, Reminded: reminded, LadderStep: step, EscalatedBy: by}
	}
	chat := &Case{ID: one, Reporter: "@r:x", Stage: StageReceived, Channel: ChannelChat}
	handled := &Case{ID: one, Reporter: "@r:x", Stage: StageReceived, Channel: ChannelChat, Handler: "@bob:x"}
	mailed := &Case{ID: one, Reporter: EmailPerson("r@example.org"), Stage: StageReceived, Channel: ChannelEmail}
	github := &Case{ID: one, Reporter: GitHubPerson("r"), Stage: StageReceived, Channel: ChannelGitHub, AdvisoryURL: "https://github.com/o/r/security/advisories/GHSA-1"}
	closed := &Case{ID: one, Reporter: "@r:x", Stage: StageClosed, Channel: ChannelChat}
	team := told{to: ToTeamRoom, mentions: p.Team, template: "escalation_team"}
	chased := told{to: ToCaseRoom, template: "reporter_chased"}
	for _, tc := range []struct {
		name string
		c    *Case
		d    Deadline
		now  time.Time
		what Firing
		// next is the recorded progress: reminded, step, next firing.
		reminded bool
		step     int
		next     time.Time
		told     []told
		audit    string
		late     bool
	}{
		{"the reminder goes to the team room while no one handles the case", chat, dl(false, 0, ""), remind, FireReminder, true, 0, due,
			[]told{{to: ToTeamRoom, template: "reminder"}}, "", false},
		{"the reminder goes to the handler", handled, dl(false, 0, ""), remind, FireReminder, true, 0, due,
			[]told{{to: ToPerson, who: "@bob:x", template: "reminder"}}, "", false},
		{"the first step reaches the coordinator, and the reporter hears the team was chased", chat, dl(true, 0, ""), due, FireEscalation, true, 1, due.Add(24 * time.Hour),
			[]told{{to: ToPerson, who: "@alice:x", template: "escalation_dm"}, chased}, "acknowledge step 1", false},
		{"an email reporter is told the same (the apply mails it)", mailed, dl(true, 0, ""), due, FireEscalation, true, 1, due.Add(24 * time.Hour),
			[]told{{to: ToPerson, who: "@alice:x", template: "escalation_dm"}, chased}, "acknowledge step 1", false},
		{"a GitHub reporter is on the advisory, not told in a room", github, dl(true, 0, ""), due, FireEscalation, true, 1, due.Add(24 * time.Hour),
			[]told{{to: ToPerson, who: "@alice:x", template: "escalation_dm"}}, "acknowledge step 1", false},
		{"the reporter's own !escalate is not told back to them", chat, dl(true, 0, "@r:x"), due, FireEscalation, true, 1, due.Add(24 * time.Hour),
			[]told{{to: ToPerson, who: "@alice:x", template: "escalation_dm"}}, "acknowledge step 1", false},
		{"the second step reaches the backup", chat, dl(true, 1, ""), due.Add(24 * time.Hour), FireEscalation, true, 2, due.Add(48 * time.Hour),
			[]told{{to: ToPerson, who: "@bob:x", template: "escalation_dm"}}, "acknowledge step 2", false},
		{"the third step reaches the whole team, pinged", chat, dl(true, 2, ""), due.Add(48 * time.Hour), FireEscalation, true, 3, due.Add(72 * time.Hour),
			[]told{team}, "acknowledge step 3", false},
		{"past the ladder the last step repeats", chat, dl(true, 3, ""), due.Add(72 * time.Hour), FireEscalation, true, 4, due.Add(96 * time.Hour),
			[]told{team}, "acknowledge step 4", false},
		{"a firing after downtime says it is late", chat, dl(true, 1, ""), due.Add(30 * time.Hour), FireEscalation, true, 2, due.Add(48 * time.Hour),
			[]told{{to: ToPerson, who: "@bob:x", template: "escalation_dm"}}, "acknowledge step 2", true},
		{"a finished case's clock only stops", closed, dl(true, 1, ""), due.Add(24 * time.Hour), FireNothing, true, 1, time.Time{}, nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			what, d := tc.c.Fire(tc.d, p, tc.now)
			if what != tc.what {
				t.Errorf("firing %d, want %d", what, tc.what)
			}
			if want := (&Fired{Kind: DeadlineAcknowledge, Reminded: tc.reminded, LadderStep: tc.step, NextAt: tc.next}); !reflect.DeepEqual(d.Fired, want) {
				t.Errorf("recorded %+v, want %+v", d.Fired, want)
			}
			if got := toldOf(d); !reflect.DeepEqual(got, tc.told) {
				t.Errorf("told %+v\nwant %+v", got, tc.told)
			}
			if tc.audit != "" && (d.Action != "escalation" || d.Detail != tc.audit) || tc.audit == "" && d.Action != "" {
				t.Errorf("audit %q %q, want %q", d.Action, d.Detail, tc.audit)
			}
			for _, m := range d.Say {
				late := reflect.ValueOf(m.Data).FieldByName("Late")
				if late.IsValid() && late.Bool() != tc.late {
					t.Errorf("%s late %v, want %v", m.Data.Template(), late.Bool(), tc.late)
				}
			}
		})
	}
}

func TestTheEscalationNamesTheContactAndTheHandler(t *testing.T) {
	p := testPolicy()
	c := &Case{ID: one, Reporter: "@r:x", Stage: StageReceived, Handler: "@carol:x", Channel: ChannelGitHub, AdvisoryURL: "https://gh/a"}
	_, d := c.Fire(Deadline{Kind: DeadlineResponse, DueAt: now, Reminded: true}, p, now.Add(time.Second))
	want := templates.EscalationDM{CaseID: one.String(), Promise: "detailed response", Role: "security coordinator", Handler: "@carol:x",
		DueAt: now, MeantFor: now, AdvisoryURL: "https://gh/a"}
	if len(d.Say) != 1 || !reflect.DeepEqual(d.Say[0].Data, want) {
		t.Errorf("said %+v, want %+v", d.Say, want)
	}
}

func TestAnEmptyLadderStopsTheClockAfterTheReminder(t *testing.T) {
	p := testPolicy()
	p.Ladder = nil
	c := &Case{ID: one, Reporter: "@r:x", Stage: StageReceived}
	d := Deadline{Kind: DeadlineAcknowledge, DueAt: now, RemindAt: now.Add(-time.Hour)}
	what, dec := c.Fire(d, p, now.Add(-time.Hour))
	if what != FireReminder || !dec.Fired.NextAt.IsZero() || !dec.Fired.Reminded {
		t.Errorf("reminder: %d %+v", what, dec.Fired)
	}
	d.Reminded = true
	if what, dec := c.Fire(d, p, now); what != FireNothing || len(dec.Say) != 0 || !dec.Fired.NextAt.IsZero() {
		t.Errorf("after the reminder: %d %+v", what, dec)
	}
}

func TestEmbargoRemindersTellTheHandlerAndTheTeamRoom(t *testing.T) {
	p := testPolicy()
	end := now.Add(24 * time.Hour)
	for _, tc := range []struct {
		name    string
		c       *Case
		at, now time.Time
		told    []told
		late    bool
		today   bool
	}{
		{"no handler: the team room", &Case{ID: one, Stage: StageConfirmed}, end.Add(-24 * time.Hour), end.Add(-24 * time.Hour),
			[]told{{to: ToTeamRoom, template: "embargo_reminder"}}, false, false},
		{"the handler and the team room", &Case{ID: one, Stage: StageConfirmed, Handler: "@bob:x"}, end.Add(-24 * time.Hour), end.Add(-24 * time.Hour),
			[]told{{to: ToPerson, who: "@bob:x", template: "embargo_reminder"}, {to: ToTeamRoom, template: "embargo_reminder"}}, false, false},
		{"late, on the day", &Case{ID: one, Stage: StageConfirmed}, end.Add(-24 * time.Hour), end.Add(-time.Hour),
			[]told{{to: ToTeamRoom, template: "embargo_reminder"}}, true, true},
		{"a published case: nothing", &Case{ID: one, Stage: StagePublished, Handler: "@bob:x"}, end.Add(-24 * time.Hour), end.Add(-24 * time.Hour), nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.c.RemindEmbargo(tc.at, end, p, tc.now)
			if got := toldOf(d); !reflect.DeepEqual(got, tc.told) {
				t.Errorf("told %+v, want %+v", got, tc.told)
			}
			if d.Changes() || d.Action != "" {
				t.Errorf("an embargo reminder changes state or audits: %+v", d)
			}
			for _, m := range d.Say {
				r := m.Data.(templates.EmbargoReminder)
				if r.Late != tc.late || r.Today != tc.today || !r.End.Equal(end) {
					t.Errorf("%+v, want late %v today %v", r, tc.late, tc.today)
				}
				if slices.Contains(m.Mentions, "@alice:x") {
					t.Error("an embargo reminder pings the team")
				}
			}
		})
	}
}
