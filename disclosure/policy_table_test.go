package disclosure

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/templates"
)

// The policy as a table: every command, typed in every kind of place, by
// every role, at every stage, asked of the domain alone. A thin model of
// the handlers' routing (which path a line takes in which place) asks the
// same questions the handlers ask; the handlers' own table test proves,
// on a few combinations, that they route and apply the same way.

const (
	tReporter  Person = "@reporter:x"
	tReporter2 Person = "@reporter2:x"
	tMallory   Person = "@mallory:x"
)

type tRole struct {
	name   string
	who    Person
	device DeviceTrust
}

var tRoles = []tRole{
	{"coordinator", "@alice:x", DeviceVerified},
	{"member", "@bob:x", DeviceVerified},
	{"member on an unverified device", "@bob:x", DeviceUnverified},
	{"reporter", tReporter, DeviceUnverified},
	{"outsider", tMallory, DeviceUnverified},
}

type tPlace struct {
	name  string
	where Place
}

var tPlaces = []tPlace{
	{"team room", Place{Kind: TeamRoom}},
	{"private chat", Place{Kind: PrivateChat}},
	{"own case room", Place{Kind: CaseRoom, Case: one}},
	{"another case's room", Place{Kind: CaseRoom, Case: two}},
	{"public room", Place{Kind: Elsewhere}},
}

// tCommands are every team and reporter command, with arguments that
// parse; a few name a case, to try reaching across cases.
var tCommands = []string{
	"!sec help", "!sec list", "!sec stats", "!sec contacts", "!sec status", "!sec status SR-2026-0001", "!sec status SR-2026-0002",
	"!sec claim", "!sec claim SR-2026-0001", "!sec assign @bob:x", "!sec respond We reproduced it.", "!sec update Still on it.",
	"!sec update SR-2026-0002 Still on it.", "!sec github octocat", "!sec fork", "!sec cve", "!sec advisory", "!sec confirm 1.0; 1.1",
	"!sec versions < 1.1; 1.1", "!sec severity high", "!sec cwe CWE-787", "!sec summary Out-of-bounds write", "!sec description An out-of-bounds write in the loader.", "!sec reject Not a bug.",
	"!sec audit start", "!sec audit done", "!sec publish", "!sec publish --force", "!sec publish SR-2026-0002 --force", "!sec announce", "!sec close",
	"!sec embargo propose 2099-01-01", "!sec embargo add @dan:x", "!sec embargo remove @dan:x", "!sec embargo lift",
	"!sec invite", "!sec invite @mallory:x", "!sec trust @bob:x", "help", "status", "!escalate", "escalate", "agree", "!invite", "!agree", "!disagree", "!credit none", "!github octocat",
}

var tMonday = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// tWorld is two open cases: SR-2026-0001 (the one under test, at a given
// stage and embargo) and SR-2026-0002 (another reporter's), 200 hours
// after both were reported (past the detailed response: !escalate is
// allowed).
func tWorld(p *Policy, stage Stage, embargo EmbargoState) (map[CaseID]*Case, time.Time) {
	open := func(id CaseID, reporter Person) *Case {
		c := &Case{ID: id, Reporter: reporter, Stage: StageReceived, CreatedAt: tMonday, Channel: ChannelChat}
		for _, kind := range []DeadlineKind{DeadlineAcknowledge, DeadlineResponse} {
			c.Deadlines = append(c.Deadlines, p.NewDeadline(kind, tMonday))
		}
		return c
	}
	c1, c2 := open(one, tReporter), open(two, tReporter2)
	c1.NeedToKnow = []NeedToKnow{{Who: "@dan:x", GitHub: "dan-gh"}}
	c1.Stage = stage
	if stage != StageReceived {
		c1.Handler = "@bob:x"
	}
	if c1.Finished() {
		for i := range c1.Deadlines {
			c1.Deadlines[i].NextAt = time.Time{}
		}
	}
	end := tMonday.AddDate(0, 1, 0)
	switch embargo {
	case EmbargoActive:
		c1.Embargo = Embargo{State: embargo, End: end}
	case EmbargoProposed:
		c1.Embargo = Embargo{State: embargo, Proposed: end}
	}
	return map[CaseID]*Case{one: c1, two: c2}, tMonday.Add(200 * time.Hour)
}

// tOutcome is what the domain answered to one line.
type tOutcome struct {
	// path is how the line was taken: "team", "reporter", "spoke" (a team
	// member talking in a case room) or "" (no command: nothing decided).
	path string
	// caseID is the case decided on (zero: none).
	caseID CaseID
	view   bool // a view the handlers answer from the store
	d      Decision
	err    error
}

func (o tOutcome) refused() bool {
	var r *Refusal
	var u UsageError
	return errors.As(o.err, &r) || errors.As(o.err, &u)
}

// tArgs takes a command line apart as the handlers do: the name, a case ID
// right after it (for commands that reach a case), the words and the raw
// rest.
func tArgs(text string, spec CommandSpec) (named CaseID, a Args) {
	words := strings.Fields(text)[1:]
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), strings.Fields(text)[0]))
	if spec.Scope != NoCase && len(words) > 0 {
		if id, err := ParseCaseID(words[0]); err == nil {
			named, words = id, words[1:]
			rest = strings.TrimSpace(strings.TrimPrefix(rest, strings.Fields(rest)[0]))
		}
	}
	return named, Args{Words: words, Rest: rest, Person: func(s string) (Person, bool) {
		return Person(s), strings.HasPrefix(s, "@") && strings.Contains(s, ":")
	}}
}

func tSpec(specs []CommandSpec, name string) (CommandSpec, bool) {
	for _, s := range specs {
		if s.Name == strings.ToLower(name) {
			return s, true
		}
	}
	return CommandSpec{}, false
}

// tAsk asks the domain about one line, along the handlers' routing.
func tAsk(p *Policy, cases map[CaseID]*Case, role tRole, place tPlace, text string, now time.Time) tOutcome {
	req := Request{By: role.who, Device: role.device, Where: place.where, Now: now, Policy: p}
	decide := func(o tOutcome, spec CommandSpec, id CaseID, a Args) tOutcome {
		o.caseID = id
		if spec.Decide == nil {
			o.view = true
			return o
		}
		c, ok := cases[id]
		if !ok {
			o.err = refusef("command "+spec.Name, "there is no case %s.", id)
			return o
		}
		cp := *c
		o.d, o.err = spec.Decide(&cp, req, a)
		return o
	}
	if rest, ok := strings.CutPrefix(text, p.CommandPrefix+" "); ok {
		o := tOutcome{path: "team"}
		spec, _ := tSpec(TeamCommands(), strings.Fields(rest)[0])
		named, a := tArgs(rest, spec)
		id, err := p.TeamCommand(spec.Name, spec.Scope, role.who, role.device, place.where, named)
		if err != nil {
			o.err = err
			return o
		}
		return decide(o, spec, id, a)
	}
	var own *Case
	switch place.where.Kind {
	case CaseRoom:
		c := cases[place.where.Case]
		if p.IsTeam(role.who) {
			cp := *c
			return tOutcome{path: "spoke", caseID: c.ID, d: cp.TeamSpoke(req)}
		}
		if role.who != c.Reporter {
			return tOutcome{}
		}
		own = c
	case PrivateChat:
		for _, c := range cases {
			if c.Reporter == role.who && !c.Finished() {
				own = c
			}
		}
	default:
		return tOutcome{}
	}
	line, bang := strings.CutPrefix(text, "!")
	spec, ok := tSpec(ReporterCommands(), strings.Fields(line)[0])
	if !ok || !spec.ReporterTyped(bang, len(strings.Fields(line))) {
		return tOutcome{}
	}
	o := tOutcome{path: "reporter"}
	named, a := tArgs(line, spec)
	var ownID CaseID
	if own != nil {
		ownID = own.ID
	}
	id, err := p.ReporterCommand(spec.Name, spec.Scope, ownID, named)
	if err != nil {
		o.err = err
		return o
	}
	if spec.Scope == NoCase {
		o.view = true
		return o
	}
	return decide(o, spec, id, a)
}

func TestThePolicyTable(t *testing.T) {
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p := testPolicy()
	p.GitHub, p.Repository = true, "o/r"
	type world struct {
		stage   Stage
		embargo EmbargoState
	}
	var worlds []world
	for _, s := range Stages {
		worlds = append(worlds, world{s, EmbargoNone})
	}
	worlds = append(worlds, world{StageAuditDone, EmbargoActive}, world{StageConfirmed, EmbargoProposed})
	n := 0
	for _, wc := range worlds {
		t.Run(fmt.Sprintf("%s, embargo %s", wc.stage, wc.embargo), func(t *testing.T) {
			cases, now := tWorld(p, wc.stage, wc.embargo)
			for _, role := range tRoles {
				for _, place := range tPlaces {
					for _, text := range tCommands {
						what := fmt.Sprintf("%q by the %s in the %s", text, role.name, place.name)
						o := tAsk(p, cases, role, place, text, now)
						checkTableOutcome(t, tmpl, what, wc.stage, wc.embargo, role, place, text, o)
						n++
					}
				}
			}
		})
	}
	if want := len(worlds) * len(tRoles) * len(tPlaces) * len(tCommands); n != want {
		t.Errorf("%d combinations checked, want %d", n, want)
	}
}

// checkTableOutcome holds one combination to the rules of SPEC.md.
func checkTableOutcome(t *testing.T, tmpl *templates.Set, what string, stage Stage, embargo EmbargoState, role tRole, place tPlace, text string, o tOutcome) {
	t.Helper()
	team := role.name == "coordinator" || role.name == "member"
	if o.err != nil && !o.refused() {
		t.Fatalf("%s: %v", what, o.err)
	}
	if o.refused() && !reflect.DeepEqual(o.d, Decision{}) {
		t.Errorf("%s: a refusal decides something: %+v", what, o.d)
	}
	var answers []string
	for _, m := range o.d.Say {
		if m.To.Kind != Here || m.React != "" {
			continue
		}
		md, err := tmpl.RenderData(m.Data)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		answers = append(answers, md)
	}
	if o.refused() {
		answers = append(answers, o.err.Error())
	}
	if len(answers) > 1 {
		t.Errorf("%s: %d answers", what, len(answers))
	}
	// What may be read where: a case room's reporter reads nothing of
	// another case, and a public room nothing of any case.
	for _, a := range answers {
		switch place.name {
		case "own case room":
			if strings.Contains(a, "SR-2026-0002") || strings.Contains(a, string(tReporter2)) {
				t.Errorf("%s: the answer shows another case: %q", what, a)
			}
		case "another case's room":
			if strings.Contains(a, "SR-2026-0001") || strings.Contains(a, string(tReporter)) {
				t.Errorf("%s: the answer shows another case: %q", what, a)
			}
		case "public room":
			if strings.Contains(a, "SR-2026") || strings.Contains(a, "@reporter") {
				t.Errorf("%s: the answer in public shows a case: %q", what, a)
			}
		}
	}
	// Nothing typed in one case's room reaches the other case.
	if place.where.Kind == CaseRoom && !o.caseID.IsZero() && o.caseID != place.where.Case {
		t.Errorf("%s: reached %s from the room of %s", what, o.caseID, place.where.Case)
	}
	if role.name == "member on an unverified device" {
		// Nothing from a device the homeserver may have added counts:
		// commands are refused, and a message meets no deadline.
		if o.path == "team" && (!o.refused() || !strings.Contains(o.err.Error(), "cannot tell")) {
			t.Errorf("%s: not refused as unverified: %v", what, o.err)
		}
		if len(o.d.Deadlines) > 0 {
			t.Errorf("%s: changed a deadline: %+v", what, o.d.Deadlines)
		}
		return
	}
	if o.path == "team" {
		var r *Refusal
		switch {
		case !team:
			if !errors.As(o.err, &r) || !r.NotTeam {
				t.Errorf("%s: not refused as outside the team: %v", what, o.err)
			}
		case place.name == "public room":
			if !o.refused() {
				t.Errorf("%s: a team command worked in a public room", what)
			}
		case place.where.Kind == CaseRoom && anyOf(text, "!sec list", "!sec stats", "!sec contacts"):
			if !o.refused() {
				t.Errorf("%s: an every-case command answered in a case room", what)
			}
		case place.name == "own case room" && strings.Contains(text, "SR-2026-0002"), place.name == "another case's room" && strings.Contains(text, "SR-2026-0001"):
			if !o.refused() {
				t.Errorf("%s: a command reached another case from a case room", what)
			}
		case text == "!sec embargo lift" && role.name == "member":
			if !o.refused() {
				t.Errorf("%s: a member lifted an embargo", what)
			}
		case strings.Contains(text, "--force") && role.name == "member" && embargo != EmbargoNone:
			if !o.refused() {
				t.Errorf("%s: a member forced past an embargo", what)
			}
		}
		if (place.name == "team room" || place.name == "private chat") && team && anyOf(text, "!sec list", "!sec stats", "!sec contacts", "!sec help", "!sec status SR-2026-0001") && o.refused() {
			t.Errorf("%s: refused where only the team reads: %v", what, o.err)
		}
		return
	}
	// Reporter commands: a bare word that would change something is no
	// command at all, and changes nothing, not even the audit log.
	if (text == "agree" || text == "escalate") && !team && o.path != "" {
		t.Errorf("%s: a bare word was taken as a command (%s)", what, o.path)
	}
	if role.name == "outsider" && place.name != "private chat" && o.path != "" {
		t.Errorf("%s: someone not the reporter was heard (%s): %+v", what, o.path, o.d)
	}
	if (&Case{Stage: stage}).Finished() {
		for _, dc := range o.d.Deadlines {
			if dc.Op == StartDeadline || dc.Op == EscalateDeadline {
				t.Errorf("%s: restarted a clock of a finished case: %+v", what, dc)
			}
		}
	}
}

func anyOf(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
