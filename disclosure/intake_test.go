package disclosure

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/templates"
)

func TestOpeningACaseDecidesItsWholeSetUp(t *testing.T) {
	p := testPolicy()
	p.GitHub, p.MaxNewCasesPerHour = true, 2
	report := &PrivateReport{GHSAID: "GHSA-1", URL: "https://gh/a", Repository: "o/r", Reporter: "rita", Credits: "rita (reporter)"}
	full := []time.Time{now.Add(-10 * time.Minute), now.Add(-5 * time.Minute)}
	for _, tc := range []struct {
		name      string
		in        Intake
		setups    []time.Time
		slot      time.Time
		invite    []Person
		advisory  bool
		burst     bool
		detail    string
		reporterG string
	}{
		{"a chat report: the reporter is invited, an advisory is drafted", Intake{Channel: ChannelChat, Reporter: "@r:x", At: now, Source: "direct message"}, nil, now,
			[]Person{"@r:x", "@alice:x", "@bob:x"}, true, false, "direct message", ""},
		{"an email report: the room is the team's", Intake{Channel: ChannelEmail, Reporter: EmailPerson("r@example.org"), At: now, Source: "email", Unverified: true}, nil, now,
			[]Person{"@alice:x", "@bob:x"}, true, false, "email (unverified sender)", ""},
		{"a GitHub report is its own advisory", Intake{Channel: ChannelGitHub, Reporter: GitHubPerson("rita"), At: now.Add(-time.Hour), Report: report, Source: "github"}, nil, now,
			[]Person{"@alice:x", "@bob:x"}, false, false, "github", "rita"},
		{"past the hourly cap the set-up waits, and the team is told", Intake{Channel: ChannelChat, Reporter: "@r:x", At: now, Source: "public room"}, full, now.Add(50 * time.Minute),
			[]Person{"@r:x", "@alice:x", "@bob:x"}, true, true, "public room", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open, d := p.OpenCase(tc.in, two, "@secbot:x", tc.setups, now)
			if d.Action != "case.open" || d.Detail != tc.detail {
				t.Errorf("audit %q %q, want %q", d.Action, d.Detail, tc.detail)
			}
			if !d.SetupAt.Equal(tc.slot) {
				t.Errorf("set up at %s, want %s", d.SetupAt, tc.slot)
			}
			if len(d.Deadlines) != 2 || !d.Deadlines[0].At.Equal(tc.in.At) || !reflect.DeepEqual(d.Deadlines, open.Deadlines) {
				t.Errorf("clocks %+v, want two from %s", d.Deadlines, tc.in.At)
			}
			want := []Effect{CreateCaseRoom{Name: "Security report SR-2026-0002", Invite: tc.invite, Team: p.Team, At: tc.slot}}
			if tc.advisory {
				want = append(want, DraftAdvisory{At: tc.slot})
			}
			if !reflect.DeepEqual(d.Effects, want) {
				t.Errorf("effects %+v\nwant %+v", d.Effects, want)
			}
			var got []told
			for _, m := range d.Say {
				got = append(got, told{to: m.To.Kind, template: m.Data.Template()})
				if m.Apart != (m.Data.Template() == "intake_burst") {
					t.Errorf("%s apart %v", m.Data.Template(), m.Apart)
				}
			}
			wantTold := []told{{to: InCaseRoom, template: "welcome"}, {to: ToTeamRoom, template: "team_new_case"}}
			if tc.burst {
				wantTold = append([]told{{to: ToTeamRoom, template: "intake_burst"}}, wantTold...)
			}
			if !reflect.DeepEqual(got, wantTold) {
				t.Errorf("told %+v, want %+v", got, wantTold)
			}
			var facts []FactChange
			if tc.reporterG != "" {
				facts = []FactChange{{FactReporterGitHub, tc.reporterG}}
				note := d.Say[len(d.Say)-1].Data.(templates.TeamNewCase)
				if note.GHSAID != "GHSA-1" || note.Credits != "rita (reporter)" || note.AdvisoryURL != "https://gh/a" {
					t.Errorf("the team's note %+v", note)
				}
			}
			if !reflect.DeepEqual(d.Facts, facts) {
				t.Errorf("facts %+v, want %+v", d.Facts, facts)
			}
		})
	}
}

func TestWhichInvitationsTheBotAccepts(t *testing.T) {
	p := testPolicy()
	for _, tc := range []struct {
		from           Person
		direct, team   bool
		join           bool
		what, leaveFor string
	}{
		{"@stranger:x", true, false, true, "a direct chat from anyone", ""},
		{"@stranger:x", false, true, true, "the team room, whoever invites", ""},
		{"@bob:x", false, false, true, "a group room from the team", ""},
		{"@stranger:x", false, false, false, "a group room from outside the team", "group room invite declined"},
	} {
		leave := p.AcceptInvite(tc.from, tc.direct, tc.team)
		if (leave == nil) != tc.join || leave != nil && (leave.Action != "invite" || leave.Detail != tc.leaveFor || leave.Reason == "") {
			t.Errorf("%s: %+v", tc.what, leave)
		}
	}
	for n, keep := range map[int]bool{1: true, 2: true, 3: false, 50: false} {
		if leave := KeepDirectChat(n); (leave == nil) != keep || leave != nil && leave.Action != "direct-chat.leave" {
			t.Errorf("a direct chat of %d: %+v", n, leave)
		}
	}
}

func TestAReporterCommandReachesOnlyTheirOwnCase(t *testing.T) {
	p := testPolicy()
	var none CaseID
	for _, tc := range []struct {
		what       string
		scope      Scope
		own, named CaseID
		want       CaseID
		refused    string
	}{
		{"help needs no case", NoCase, none, none, none, ""},
		{"their own case, implied", OneCase, one, none, one, ""},
		{"their own case, named", OneCase, one, one, one, ""},
		{"another case, named", OneCase, one, two, none, "you can only ask about your own report."},
		{"no open report", OneCase, none, none, none, "you have no open report"},
		{"no open report, naming one", OneCase, none, two, none, "you have no open report"},
	} {
		got, err := p.ReporterCommand("status", tc.scope, tc.own, tc.named)
		var r *Refusal
		switch {
		case tc.refused == "" && (err != nil || got != tc.want):
			t.Errorf("%s: %s, %v; want %s", tc.what, got, err, tc.want)
		case tc.refused != "" && (!errors.As(err, &r) || !strings.HasPrefix(r.Reason, tc.refused) || r.Action != "command status" || !got.IsZero()):
			t.Errorf("%s: %s, %v; want refused %q", tc.what, got, err, tc.refused)
		}
	}
}
