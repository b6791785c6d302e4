package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/templates"
)

// The policy as a table, through the handlers and SQLite: every command,
// typed in every kind of room, by every role, in a few worlds (an open
// case, one under an active embargo, a finished one). Every stage is
// checked against the pure domain, in milliseconds, by disclosure's
// TestThePolicyTable; this one proves the handlers route each line as the
// domain's table assumes, apply what it decides, answer views without
// leaking, and write nothing but the audit line and the answer for a
// refusal. Each runs in a transaction that is rolled back afterwards, so
// every combination starts from the same world.

const (
	reporter2 disclosure.Person = "matrix:@reporter2:x"
	mallory   disclosure.Person = "matrix:@mallory:x"
	caseRoom2 string            = "matrix:!case2:x"
	dmRoom2   string            = "matrix:!dm2:x"
	public    string            = "matrix:!public:x"
)

var (
	case1 = disclosure.CaseID{Year: 2026, Seq: 1}
	case2 = disclosure.CaseID{Year: 2026, Seq: 2}
)

type tableRole struct {
	name string
	who  disclosure.Person
	dm   string // their private chat with the bot
	// unsigned: writing from a device their identity did not sign.
	unsigned bool
}

var tableRoles = []tableRole{
	{"coordinator", alice, "matrix:!dm-alice:x", false},
	{"member", bob, "matrix:!dm-bob:x", false},
	{"member on an unverified device", bob, "matrix:!dm-bob:x", true},
	{"reporter", reporter, dmRoom, false},
	{"outsider", mallory, "matrix:!dm-mallory:x", false},
}

type tableRoom struct {
	name string
	room func(tableRole) string
}

var tableRooms = []tableRoom{
	{"team room", func(tableRole) string { return teamRoom }},
	{"private chat", func(r tableRole) string { return r.dm }},
	{"own case room", func(tableRole) string { return caseRoom }},
	{"another case's room", func(tableRole) string { return caseRoom2 }},
	{"public room", func(tableRole) string { return public }},
}

// tableCommands are every team and reporter command, with arguments that
// parse; a few name a case, to try reaching across cases.
var tableCommands = []string{
	"!sec help", "!sec list", "!sec stats", "!sec contacts", "!sec status", "!sec status SR-2026-0001", "!sec status SR-2026-0002",
	"!sec claim", "!sec claim SR-2026-0001", "!sec assign @bob:x", "!sec respond We reproduced it.", "!sec update Still on it.",
	"!sec update SR-2026-0002 Still on it.", "!sec github octocat", "!sec fork", "!sec cve", "!sec advisory", "!sec confirm 1.0; 1.1",
	"!sec versions < 1.1; 1.1", "!sec severity high", "!sec cwe CWE-787", "!sec summary Out-of-bounds write", "!sec description An out-of-bounds write in the loader.", "!sec reject Not a bug.",
	"!sec audit start", "!sec audit done", "!sec publish", "!sec publish --force", "!sec publish SR-2026-0002 --force", "!sec announce", "!sec close",
	"!sec embargo propose 2099-01-01", "!sec embargo add @dan:x", "!sec embargo remove @dan:x", "!sec embargo lift",
	"!sec invite", "!sec invite @mallory:x", "!sec trust @bob:x", "help", "status", "!escalate", "escalate", "agree", "!invite", "!agree", "!disagree", "!credit none", "!github octocat",
}

// tableWorld is a world with two open cases: SR-2026-0001 (the one under
// test, at a given stage and embargo) and SR-2026-0002 (another reporter's).
func tableWorld(t *testing.T, stage disclosure.Stage, embargo disclosure.EmbargoState) *world {
	t.Helper()
	w := newWorld(t, monday)
	ctx := context.Background()
	w.say(dmRoom, reporter, "I want to report a security issue")
	w.say(dmRoom2, reporter2, "I want to report a security issue")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.store.SetCaseRoom(ctx, case1, caseRoom, w.clock.Now()))
	must(w.store.SetCaseRoom(ctx, case2, caseRoom2, w.clock.Now()))
	for _, r := range tableRoles {
		must(w.store.SetDMRoomOf(ctx, r.who, r.dm, w.clock.Now()))
	}
	_, err := w.store.AddNeedToKnow(ctx, case1, "matrix:@dan:x", alice, "dan-gh", w.clock.Now())
	must(err)
	handler := disclosure.Person("")
	if stage != disclosure.StageReceived {
		handler = bob
	}
	must(w.store.SetStage(ctx, case1, stage, handler, w.clock.Now()))
	if (&disclosure.Case{Stage: stage}).Finished() {
		must(w.store.StopDeadlines(ctx, case1))
	}
	end := monday.AddDate(0, 1, 0)
	switch embargo {
	case disclosure.EmbargoActive:
		must(w.store.SetEmbargo(ctx, case1, disclosure.Embargo{State: embargo, End: end}, nil, w.clock.Now()))
	case disclosure.EmbargoProposed:
		must(w.store.SetEmbargo(ctx, case1, disclosure.Embargo{State: embargo, Proposed: end}, nil, w.clock.Now()))
	}
	w.clock.Advance(200 * 3600 * 1e9) // past the detailed response: !escalate is allowed
	return w
}

// dump is every row of every table, as text, one line a row.
func (w *world) dump(ctx context.Context) map[string][]string {
	w.t.Helper()
	all, err := w.store.Tables(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var tables []string
	for _, name := range all {
		if !strings.HasPrefix(name, "crypto_") && !strings.HasPrefix(name, "mx_") {
			tables = append(tables, name)
		}
	}
	out := map[string][]string{}
	for _, table := range tables {
		r, err := w.store.DB.Query(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			w.t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				w.t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if b.Len() > 0 {
					b.WriteString(" | ")
				}
				switch x := v.(type) {
				case []byte:
					v = string(x)
				case bool: // a flag is 0/1 on SQLite, a BOOLEAN on PostgreSQL
					v = 0
					if x {
						v = 1
					}
				}
				fmt.Fprintf(&b, "%s=%v", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		_ = r.Close()
		sort.Strings(out[table])
	}
	return out
}

// diff lists the rows added and removed, table by table.
func diff(before, after map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, table := range keys(before, after) {
		b, a := map[string]int{}, map[string]int{}
		for _, row := range before[table] {
			b[row]++
		}
		for _, row := range after[table] {
			a[row]++
		}
		for row, n := range a {
			if n > b[row] {
				out[table] = append(out[table], "+ "+row)
			}
		}
		for row, n := range b {
			if n > a[row] {
				out[table] = append(out[table], "- "+row)
			}
		}
	}
	return out
}

func keys(ms ...map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

var errRollback = errors.New("roll back")

// outcome is what one command did.
type outcome struct {
	answers []string            // what the bot will say, and where
	changes map[string][]string // rows added or removed, by table
}

// try runs one message in a transaction that is then rolled back.
func (w *world) try(room string, sender disclosure.Person, text string) outcome {
	w.t.Helper()
	var out outcome
	w.n++
	msg := chat.Message{ID: string(fmt.Sprintf("$t%d", w.n)), Room: room, Sender: sender, Sent: w.clock.Now(), Text: text, Identity: w.identity(sender)}
	// Each try is a sender's first message: the limit of outsiders' answers
	// is tested on its own.
	w.h.chatter.reset()
	w.h.refusals.reset()
	err := w.store.Tx(context.Background(), func(ctx context.Context) error {
		before := w.dump(ctx)
		if err := w.h.HandleMessage(ctx, msg); err != nil {
			w.t.Fatalf("%s: %v", text, err)
		}
		out.changes = diff(before, w.dump(ctx))
		effects, _, err := w.store.EffectsOfKind(ctx, outbox.KindSend)
		if err != nil {
			return err
		}
		for _, e := range effects {
			var p outbox.SendEffect
			_ = e.Decode(&p)
			if p.ReplyTo == msg.ID {
				out.answers = append(out.answers, templates.Unescape(p.Markdown))
			}
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		w.t.Fatal(err)
	}
	return out
}

// refused reports whether the outcome is a refusal: one refused audit line.
func (o outcome) refused() bool {
	for _, row := range o.changes["audit_log"] {
		if strings.HasPrefix(row, "+ ") && strings.Contains(row, "allowed=0") {
			return true
		}
	}
	return false
}

// onlyAnswered checks that a refusal wrote nothing but its audit line, the
// event's handled mark and its one answer.
func (o outcome) onlyAnswered(t *testing.T, what string) {
	t.Helper()
	for table, rows := range o.changes {
		switch table {
		case "audit_log", "handled_events":
			if len(rows) != 1 || !strings.HasPrefix(rows[0], "+ ") {
				t.Errorf("%s: %s changed by %v", what, table, rows)
			}
		case "outbox":
			if len(rows) != 1 || !strings.Contains(rows[0], "kind=chat.send") {
				t.Errorf("%s: the outbox got more than the answer: %v", what, rows)
			}
		default:
			t.Errorf("%s: a refused command changed %s: %v", what, table, rows)
		}
	}
}

func isTeamCommand(text string) bool { return strings.HasPrefix(text, "!sec") }

func TestTheHandlersApplyThePolicyTable(t *testing.T) {
	type world struct {
		stage   disclosure.Stage
		embargo disclosure.EmbargoState
	}
	worlds := []world{{disclosure.StageReceived, disclosure.EmbargoNone}, {disclosure.StageAuditDone, disclosure.EmbargoActive}, {disclosure.StageClosed, disclosure.EmbargoNone}}
	for _, wc := range worlds {
		t.Run(fmt.Sprintf("%s, embargo %s", wc.stage, wc.embargo), func(t *testing.T) {
			t.Parallel()
			w := tableWorld(t, wc.stage, wc.embargo)
			for _, role := range tableRoles {
				w.unsigned = role.unsigned
				for _, rk := range tableRooms {
					room := rk.room(role)
					for _, text := range tableCommands {
						what := fmt.Sprintf("%q by the %s in the %s", text, role.name, rk.name)
						o := w.try(room, role.who, text)
						checkOutcome(t, what, wc.stage, wc.embargo, role, rk.name, text, o)
						checkApplied(t, what, wc.stage, role, rk.name, text, o)
					}
				}
			}
		})
	}
}

// checkOutcome holds one combination to the rules of SPEC.md.
func checkOutcome(t *testing.T, what string, stage disclosure.Stage, embargo disclosure.EmbargoState, role tableRole, roomKind, text string, o outcome) {
	t.Helper()
	team := role.name == "coordinator" || role.name == "member"
	if o.refused() {
		o.onlyAnswered(t, what)
	}
	if len(o.answers) > 1 {
		t.Errorf("%s: %d answers", what, len(o.answers))
	}
	// What may be read where: a case room's reporter reads nothing of
	// another case, and a public room nothing of any case.
	for _, a := range o.answers {
		switch roomKind {
		case "own case room":
			if strings.Contains(a, "SR-2026-0002") || strings.Contains(a, string(reporter2)) {
				t.Errorf("%s: the answer shows another case: %q", what, a)
			}
		case "another case's room":
			if strings.Contains(a, "SR-2026-0001") || strings.Contains(a, string(reporter)) {
				t.Errorf("%s: the answer shows another case: %q", what, a)
			}
		case "public room":
			if strings.Contains(a, "SR-2026") || strings.Contains(a, "@reporter") {
				t.Errorf("%s: the answer in public shows a case: %q", what, a)
			}
		}
	}
	// Nothing typed in one case's room changes the other case.
	if roomKind == "own case room" || roomKind == "another case's room" {
		other := "SR-2026-0002"
		if roomKind == "another case's room" {
			other = "SR-2026-0001"
		}
		for table, rows := range o.changes {
			for _, row := range rows {
				if strings.Contains(row, other) && table != "handled_events" {
					t.Errorf("%s: changed the other case in %s: %s", what, table, row)
				}
			}
		}
	}
	if role.unsigned {
		// Nothing from a device the homeserver may have added counts:
		// commands are refused, and a message meets no deadline.
		if isTeamCommand(text) && (!o.refused() || len(o.answers) != 1 || !strings.Contains(o.answers[0], "cannot tell")) {
			t.Errorf("%s: not refused as unverified: %v", what, o.answers)
		}
		for _, row := range o.changes["deadlines"] {
			t.Errorf("%s: changed a deadline: %s", what, row)
		}
		return
	}
	if isTeamCommand(text) {
		switch {
		case !team:
			if !o.refused() || len(o.answers) != 1 || !strings.Contains(o.answers[0], "Only the security team") {
				t.Errorf("%s: not refused as outside the team: %v", what, o.answers)
			}
		case roomKind == "public room":
			if !o.refused() {
				t.Errorf("%s: a team command worked in a public room: %v", what, o.answers)
			}
		case (roomKind == "own case room" || roomKind == "another case's room") && anyPrefix(text, "!sec list", "!sec stats", "!sec contacts"):
			if !o.refused() {
				t.Errorf("%s: an every-case command answered in a case room", what)
			}
		case roomKind == "own case room" && strings.Contains(text, "SR-2026-0002"), roomKind == "another case's room" && strings.Contains(text, "SR-2026-0001"):
			if !o.refused() {
				t.Errorf("%s: a command reached another case from a case room", what)
			}
		case text == "!sec embargo lift" && role.name == "member":
			if !o.refused() {
				t.Errorf("%s: a member lifted an embargo", what)
			}
		case strings.Contains(text, "--force") && role.name == "member" && embargo != disclosure.EmbargoNone:
			if !o.refused() {
				t.Errorf("%s: a member forced past an embargo", what)
			}
		}
		if (roomKind == "team room" || roomKind == "private chat") && team && anyPrefix(text, "!sec list", "!sec stats", "!sec contacts", "!sec help", "!sec status SR-2026-0001") && o.refused() {
			t.Errorf("%s: refused where only the team reads: %v", what, o.answers)
		}
		return
	}
	// Reporter commands: a bare word that would change something is no
	// command at all, and changes nothing, not even the audit log.
	if (text == "agree" || text == "escalate") && !team {
		for table, rows := range o.changes {
			if table != "handled_events" && table != "outbox" {
				t.Errorf("%s: a bare word changed %s: %v", what, table, rows)
			}
		}
		if e := o.changes["embargoes"]; len(e) > 0 {
			t.Errorf("%s: agreed to an embargo", what)
		}
	}
	if role.name == "outsider" && roomKind != "private chat" {
		for table, rows := range o.changes {
			if table != "handled_events" {
				t.Errorf("%s: someone not the reporter changed %s: %v", what, table, rows)
			}
		}
	}
	if (&disclosure.Case{Stage: stage}).Finished() {
		for _, row := range o.changes["deadlines"] {
			if strings.Contains(row, "SR-2026-0001") && !strings.Contains(row, "next_at=<nil>") && strings.HasPrefix(row, "+ ") {
				t.Errorf("%s: restarted a clock of a finished case: %s", what, row)
			}
		}
	}
}

// checkApplied checks that what the domain decides is applied: a few
// commands that must change the case change its rows.
func checkApplied(t *testing.T, what string, stage disclosure.Stage, role tableRole, roomKind, text string, o outcome) {
	t.Helper()
	if role.name != "coordinator" || roomKind != "own case room" {
		return
	}
	want := map[string]string{}
	switch stage {
	case disclosure.StageReceived:
		want = map[string]string{"!sec claim": "cases", "!sec embargo propose 2099-01-01": "embargoes", "!sec embargo remove @dan:x": "need_to_know", "!sec severity high": "cases", "!sec invite": "outbox"}
	case disclosure.StageAuditDone:
		want = map[string]string{"!sec embargo lift": "embargoes", "!sec publish --force": "outbox"}
	}
	table, ok := want[text]
	if !ok {
		return
	}
	if o.refused() {
		t.Errorf("%s: refused: %v", what, o.answers)
		return
	}
	if len(o.changes[table]) == 0 {
		t.Errorf("%s: nothing applied to %s: %v", what, table, o.changes)
	}
}

func anyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
