package disclosure

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/enarx/secbot/templates"
)

// The commands people type, and what each takes: the handlers split a
// line into words and find the case; the policy reads the words (every
// argument rule and limit is here) and decides.

// Args are a command's words after its name (and the case it names),
// and the raw text after them, with its own spacing.
type Args struct {
	Words []string
	Rest  string
	// Person reads a word as a person on the platform the command was
	// typed on (false: it names no one there).
	Person func(word string) (Person, bool)
}

func (a Args) person(word string) (Person, bool) {
	if a.Person == nil {
		return "", false
	}
	return a.Person(word)
}

// UsageError is a command given the wrong way: the answer shows the
// command's syntax and the hint. Like a refusal, it changes nothing.
type UsageError struct{ Hint string }

func (e UsageError) Error() string { return "usage: " + e.Hint }

func usage(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// CommandSpec is one command: how it is written, what it reaches and what
// the policy decides on it. Decide is nil for the views (help, list,
// status, …) the handlers answer from what is stored.
type CommandSpec struct {
	Name string
	// Syntax is what follows the name, e.g. "[CASE] REASON".
	Syntax, Summary string
	Scope           Scope
	// Bang commands change something, so the reporter must type them with
	// a leading "!": a chat reply of "agree" agrees to nothing.
	Bang bool
	// GitHub commands work on the case's advisory: without GitHub they are
	// left out of help, and refused when typed.
	GitHub bool
	// Subs are the command's subcommands (`embargo propose`, `audit
	// done`), each with its own help line; Decide runs the one its first
	// word names.
	Subs   []Subcommand
	Decide func(c *Case, r Request, a Args) (Decision, error)
}

// Subcommand is one of a command's subcommands: its first word, what
// follows it, and what the policy decides on it (Args without the word).
type Subcommand struct {
	Name            string
	Syntax, Summary string
	Decide          func(c *Case, r Request, a Args) (Decision, error)
}

// SubSyntax is how sub is written after the command's name.
func (s CommandSpec) SubSyntax(sub Subcommand) string {
	lead := ""
	if s.Scope == OneCase {
		lead = "[CASE] "
	}
	return strings.TrimSpace(lead + sub.Name + " " + sub.Syntax)
}

// withSubs makes a command of subcommands: its syntax lists them, and it
// decides by the one named (empty: what to say when none is).
func withSubs(s CommandSpec, empty string) CommandSpec {
	var forms, names []string
	for _, sub := range s.Subs {
		forms = append(forms, strings.TrimSpace(sub.Name+" "+sub.Syntax))
		names = append(names, "`"+sub.Name+"`")
	}
	if s.Scope == OneCase {
		s.Syntax = "[CASE] "
	}
	s.Syntax += strings.Join(forms, " | ")
	either := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	subs := s.Subs
	s.Decide = func(c *Case, r Request, a Args) (Decision, error) {
		if len(a.Words) == 0 {
			return Decision{}, usage("%s", empty)
		}
		for _, sub := range subs {
			if a.Words[0] == sub.Name {
				a.Words = a.Words[1:]
				return sub.Decide(c, r, a)
			}
		}
		return Decision{}, usage("%s", either)
	}
	return s
}

// onGitHub marks a command that needs GitHub: typed without it, it is
// refused before its arguments are read.
func onGitHub(s CommandSpec, action string) CommandSpec {
	decide := s.Decide
	s.GitHub = true
	s.Decide = func(c *Case, r Request, a Args) (Decision, error) {
		if err := r.needGitHub(action); err != nil {
			return Decision{}, err
		}
		return decide(c, r, a)
	}
	return s
}

// The limits of what commands take.
const (
	// MaxCommandLength bounds what the parser looks at; longer input is
	// refused.
	MaxCommandLength = 4000
	MaxSummary       = 200
	MaxDescription   = 10000
	MaxCWEs          = 10
	MaxRepository    = 140
	// MaxStatsDays is the longest window `stats` reports on.
	MaxStatsDays = 3650
)

// githubLogin is GitHub's rule for user names: alphanumerics and single
// hyphens, at most 39.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// IsGitHubLogin reports whether s may be a GitHub user name.
func IsGitHubLogin(s string) bool { return githubLogin.MatchString(s) }

// Severities are the advisory's severities.
var Severities = []string{"low", "medium", "high", "critical"}

// shown is a word of the user's own, quoted back in an answer.
func shown(s string, n int) string { return templates.EscapeMarkdown(templates.Truncate(s, n)) }

// TeamCommands are the `!sec` commands, for team members only.
func TeamCommands() []CommandSpec {
	return []CommandSpec{
		{Name: "help", Syntax: "[COMMAND]", Summary: "the list of commands, or one command's syntax"},
		{Name: "list", Summary: "open cases: ID, stage, handler, next deadline (team room only)", Scope: AllCases},
		{Name: "stats", Syntax: "[DAYS]", Summary: "how well the promises were kept over the last DAYS (default 90; team room only)", Scope: AllCases},
		{Name: "contacts", Summary: "who is on the escalation ladder (team room only)", Scope: AllCases},
		{Name: "status", Syntax: "[CASE]", Summary: "one case in full: stage, timeline, deadlines, escalation", Scope: OneCase},
		{Name: "claim", Syntax: "[CASE]", Summary: "step 1: become the case's handler (acknowledges the report)", Scope: OneCase, Decide: decideClaim},
		{Name: "assign", Syntax: "[CASE] @user", Summary: "step 1: make a team member the handler (acknowledges the report)", Scope: OneCase, Decide: decideAssign},
		{Name: "respond", Syntax: "[CASE] TEXT", Summary: "the detailed response to the reporter, posted in the case room (and emailed, for a report by email)", Scope: OneCase, Decide: decideRespond},
		{Name: "update", Syntax: "[CASE] TEXT", Summary: "a progress update to the reporter; restarts the update clock", Scope: OneCase, Decide: decideUpdate},
		{Name: "reply", Syntax: "[CASE] TEXT", Summary: "a message to a reporter who wrote by email, sent to them by email (chat reporters read the case room)", Scope: OneCase, Decide: decideReply},
		onGitHub(CommandSpec{Name: "github", Syntax: "[CASE] NAME", Summary: "invite a GitHub user to the case's private advisory", Scope: OneCase, Decide: decideGitHub}, "github.invite"),
		onGitHub(CommandSpec{Name: "fork", Syntax: "[CASE]", Summary: "step 4: the advisory's temporary private fork, for preparing fixes", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.Fork(r) }}, "fork"),
		{Name: "invite", Syntax: "[CASE] [@user]", Summary: "invite to the case room again: the reporter, or a team member or need-to-know person", Scope: OneCase, Decide: decideInvite},
		onGitHub(CommandSpec{Name: "advisory", Syntax: "[CASE]", Summary: "draft the case's GitHub advisory if it has none (after GitHub refused or failed)", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.CreateAdvisory(r) }}, "advisory"),
		onGitHub(CommandSpec{Name: "repo", Syntax: "[CASE] OWNER/NAME", Summary: "move the case's draft advisory to another configured repository (its collaborators and public text go along; the old draft is closed)", Scope: OneCase, Decide: decideRepo}, "repo"),
		onGitHub(CommandSpec{Name: "cve", Syntax: "[CASE]", Summary: "request a CVE for the advisory from GitHub", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.CVE(r) }}, "cve"),
		{Name: "confirm", Syntax: "[CASE] [AFFECTED [; PATCHED]]", Summary: "step 2: the problem is confirmed (the detailed response); optionally the affected and patched versions", Scope: OneCase, Decide: decideConfirm},
		{Name: "versions", Syntax: "[CASE] AFFECTED [; PATCHED]", Summary: "record the affected (and patched) versions, also on the advisory", Scope: OneCase, Decide: decideVersions},
		{Name: "severity", Syntax: "[CASE] low|medium|high|critical", Summary: "the advisory's severity", Scope: OneCase, Decide: decideSeverity},
		onGitHub(CommandSpec{Name: "cwe", Syntax: "[CASE] CWE-ID…", Summary: "the advisory's weakness types, e.g. CWE-787", Scope: OneCase, Decide: decideCWE}, "cwe"),
		{Name: "summary", Syntax: "[CASE] TEXT", Summary: "the advisory's public one-line summary, sent to GitHub and used in the announcement", Scope: OneCase, Decide: decideSummary},
		{Name: "description", Syntax: "[CASE] TEXT", Summary: "the advisory's public description, sent to GitHub (publish waits for it)", Scope: OneCase, Decide: decideDescription},
		{Name: "reject", Syntax: "[CASE] REASON", Summary: "not a vulnerability: the reporter is told politely and the case ends", Scope: OneCase, Decide: decideReject},
		withSubs(CommandSpec{Name: "audit", Summary: "step 3: the audit for similar problems", Scope: OneCase, Subs: []Subcommand{
			{Name: "start", Summary: "step 3: the audit for similar problems has begun", Decide: decideAudit(false)},
			{Name: "done", Summary: "step 3: the audit for similar problems is finished", Decide: decideAudit(true)},
		}}, "`start` or `done`"),
		{Name: "publish", Syntax: "[CASE] [--force]", Summary: "step 5: publish the advisory, then announce it (refused during an embargo unless the coordinator forces it)", Scope: OneCase, Decide: decidePublish},
		{Name: "announce", Syntax: "[CASE] [--force]", Summary: "post the announcement where it has not been posted yet (after publish)", Scope: OneCase, Decide: decideAnnounce},
		{Name: "close", Syntax: "[CASE]", Summary: "close the case (after publish or reject)", Scope: OneCase, Decide: decideClose},
		{Name: "trust", Syntax: "@user MASTER-KEY", Summary: "coordinator: trust a team member's new cross-signing identity, the key the team room's notice shows, after checking it with them (team room only)", Scope: AllCases},
		withSubs(CommandSpec{Name: "embargo", Summary: "the embargo agreed with the reporter, and who needs to know", Scope: OneCase, Subs: []Subcommand{
			{Name: "propose", Syntax: "YYYY-MM-DD [HH:MM]", Summary: "propose an embargo end to the reporter, who agrees or not (a date alone: the end of that day)", Decide: decideEmbargoPropose},
			{Name: "add", Syntax: "@user [github-name]", Summary: "let a need-to-know person into the case room (and the advisory, with their GitHub name)", Decide: decideNeedToKnow(true)},
			{Name: "remove", Syntax: "@user [github-name]", Summary: "take a need-to-know person out of the case room (and the advisory)", Decide: decideNeedToKnow(false)},
			{Name: "lift", Summary: "end the embargo early (the coordinator only)", Decide: decideEmbargoLift},
		}}, "say what to do with the embargo"),
	}
}

// ReporterCommands are what a reporter can say in their DM or case room.
func ReporterCommands() []CommandSpec {
	return []CommandSpec{
		{Name: "help", Summary: "what you can say here"},
		{Name: "status", Summary: "where your report stands and what we promised by when", Scope: OneCase},
		{Name: "escalate", Bang: true, Summary: "chase the team if we missed a promise", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.Escalate(r) }},
		onGitHub(CommandSpec{Name: "github", Bang: true, Syntax: "NAME", Summary: "be invited to the private GitHub Security Advisory as GitHub user NAME (your own account, once)", Scope: OneCase, Decide: decideOwnGitHub}, "github.invite"),
		{Name: "agree", Bang: true, Summary: "accept the embargo date the team proposed", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.AnswerEmbargo(r, true) }},
		{Name: "disagree", Bang: true, Summary: "decline the embargo date the team proposed", Scope: OneCase, Decide: func(c *Case, r Request, _ Args) (Decision, error) { return c.AnswerEmbargo(r, false) }},
		{Name: "invite", Bang: true, Summary: "be invited again to your report's private room (after leaving or declining it)", Scope: OneCase, Decide: decideReporterInvite},
		{Name: "credit", Bang: true, Syntax: "NAME|none", Summary: "how the advisory credits you: your GitHub name, or none", Scope: OneCase, Decide: decideCredit},
	}
}

// ReporterTyped says whether a reporter's line of words words (without
// its "!", bang telling whether it had one) naming s is the command: "!name
// args", or a bare command that changes nothing, alone ("help", "status").
func (s CommandSpec) ReporterTyped(bang bool, words int) bool {
	return bang || (!s.Bang && words <= 1)
}

// ReporterCommand decides on which case a reporter's command runs: their
// own, the one of the case room they wrote in or their open case from the
// DM (own; zero if none), never one they name that is not theirs.
func (p *Policy) ReporterCommand(name string, scope Scope, own CaseID, named CaseID) (CaseID, error) {
	action := "command " + name
	switch {
	case scope == NoCase:
		return CaseID{}, nil
	case own.IsZero():
		return CaseID{}, &Refusal{Action: action, Reason: "you have no open report. To open one, say \"I want to report a security issue\", without any details."}
	case !named.IsZero() && named != own:
		return CaseID{}, &Refusal{Action: action, Reason: "you can only ask about your own report."}
	}
	return own, nil
}

func decideClaim(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 0 {
		return Decision{}, usage("to make someone else the handler, use `%s assign`", r.Policy.CommandPrefix)
	}
	return c.Assign(r, r.By)
}

func decideAssign(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 1 {
		return Decision{}, usage("one team member, e.g. @alice:example.org")
	}
	who, ok := a.person(a.Words[0])
	if !ok {
		return Decision{}, usage("one team member, e.g. @alice:example.org")
	}
	return c.Assign(r, who)
}

// needText is the free text of a command, or its usage.
func needText(a Args, hint string) (string, error) {
	if a.Rest == "" {
		return "", usage("%s", hint)
	}
	return a.Rest, nil
}

func decideRespond(c *Case, r Request, a Args) (Decision, error) {
	if c.Channel == ChannelGitHub {
		return c.Respond(r, "") // answered on GitHub: nothing to post, no text kept
	}
	text, err := needText(a, "the text is posted to the reporter")
	if err != nil {
		return Decision{}, err
	}
	return c.Respond(r, text)
}

func decideReply(c *Case, r Request, a Args) (Decision, error) {
	text, err := needText(a, "the text is emailed to the reporter")
	if err != nil {
		return Decision{}, err
	}
	return c.Reply(r, text)
}

func decideUpdate(c *Case, r Request, a Args) (Decision, error) {
	if c.Channel == ChannelGitHub {
		return c.Update(r, "") // answered on GitHub: nothing to post, no text kept
	}
	text, err := needText(a, "the text is posted to the reporter")
	if err != nil {
		return Decision{}, err
	}
	return c.Update(r, text)
}

// versionsArg splits "AFFECTED [; PATCHED]".
func versionsArg(rest string) (affected, patched string) {
	affected, patched, _ = strings.Cut(rest, ";")
	return strings.TrimSpace(affected), strings.TrimSpace(patched)
}

func decideConfirm(c *Case, r Request, a Args) (Decision, error) {
	affected, patched := versionsArg(a.Rest)
	return c.Confirm(r, affected, patched)
}

func decideVersions(c *Case, r Request, a Args) (Decision, error) {
	affected, patched := versionsArg(a.Rest)
	if affected == "" {
		return Decision{}, usage("e.g. `< 1.4.2; 1.4.2`")
	}
	return c.Versions(r, affected, patched)
}

func decideSeverity(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 1 || !slices.Contains(Severities, strings.ToLower(a.Words[0])) {
		return Decision{}, usage("one of low, medium, high, critical")
	}
	return c.Severity(r, strings.ToLower(a.Words[0]))
}

func decideCWE(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) == 0 || len(a.Words) > MaxCWEs {
		return Decision{}, usage("one to ten, e.g. CWE-787")
	}
	var cwes []string
	for _, w := range a.Words {
		w = strings.ToUpper(w)
		if _, err := fmt.Sscanf(w, "CWE-%d", new(int)); err != nil || !strings.HasPrefix(w, "CWE-") || len(w) > 12 {
			return Decision{}, usage("%s is not a CWE ID like CWE-787", shown(w, 20))
		}
		cwes = append(cwes, w)
	}
	return c.CWE(r, cwes)
}

func decideSummary(c *Case, r Request, a Args) (Decision, error) {
	if a.Rest == "" || len(a.Rest) > MaxSummary || strings.Contains(a.Rest, "\n") {
		return Decision{}, usage("one line, at most 200 characters")
	}
	return c.SetSummary(r, a.Rest)
}

func decideDescription(c *Case, r Request, a Args) (Decision, error) {
	if a.Rest == "" || len(a.Rest) > MaxDescription {
		return Decision{}, usage("the public description, at most 10,000 characters")
	}
	return c.SetDescription(r, a.Rest)
}

func decideReject(c *Case, r Request, a Args) (Decision, error) {
	reason, err := needText(a, "the reason is shown to the reporter")
	if err != nil {
		return Decision{}, err
	}
	return c.Reject(r, reason)
}

// decideAudit is `audit start` (done false) or `audit done`.
func decideAudit(done bool) func(c *Case, r Request, a Args) (Decision, error) {
	return func(c *Case, r Request, a Args) (Decision, error) {
		if len(a.Words) != 0 {
			return Decision{}, usage("`start` or `done`")
		}
		return c.Audit(r, done)
	}
}

// force reads the only flag: --force, alone.
func force(a Args) (bool, error) {
	switch {
	case len(a.Words) == 0:
		return false, nil
	case len(a.Words) == 1 && a.Words[0] == "--force":
		return true, nil
	}
	return false, usage("the only option is `--force`")
}

func decidePublish(c *Case, r Request, a Args) (Decision, error) {
	f, err := force(a)
	if err != nil {
		return Decision{}, err
	}
	return c.Publish(r, f)
}

func decideAnnounce(c *Case, r Request, a Args) (Decision, error) {
	f, err := force(a)
	if err != nil {
		return Decision{}, err
	}
	return c.Announce(r, f)
}

func decideClose(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 0 {
		return Decision{}, usage("close takes no arguments")
	}
	return c.Close(r)
}

// parseEmbargoDate reads YYYY-MM-DD [HH:MM] in the policy's time zone; a
// date alone means the end of that day.
func parseEmbargoDate(words []string, loc *time.Location) (time.Time, error) {
	switch len(words) {
	case 1:
		d, err := time.ParseInLocation("2006-01-02", words[0], loc)
		if err != nil {
			return time.Time{}, err
		}
		return d.AddDate(0, 0, 1).Add(-time.Minute), nil // 23:59 that day
	case 2:
		return time.ParseInLocation("2006-01-02 15:04", words[0]+" "+words[1], loc)
	}
	return time.Time{}, fmt.Errorf("want a date")
}

func decideEmbargoPropose(c *Case, r Request, a Args) (Decision, error) {
	loc := r.Policy.Calendar.loc()
	end, err := parseEmbargoDate(a.Words, loc)
	if err != nil {
		return Decision{}, usage("the date must be YYYY-MM-DD with an optional HH:MM (%s), e.g. `%s embargo propose 2027-01-15 14:00`", loc, r.Policy.CommandPrefix)
	}
	return c.ProposeEmbargo(r, end)
}

func decideEmbargoLift(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 0 {
		return Decision{}, usage("`lift` takes no arguments")
	}
	return c.LiftEmbargo(r)
}

// decideNeedToKnow is `embargo add` (add true) or `embargo remove`.
func decideNeedToKnow(add bool) func(c *Case, r Request, a Args) (Decision, error) {
	return func(c *Case, r Request, a Args) (Decision, error) {
		const hint = "a Matrix user like @carol:example.org, and optionally their GitHub name"
		if len(a.Words) < 1 || len(a.Words) > 2 {
			return Decision{}, usage(hint)
		}
		who, ok := a.person(a.Words[0])
		if !ok {
			return Decision{}, usage(hint)
		}
		login := ""
		if len(a.Words) == 2 {
			login = strings.TrimPrefix(a.Words[1], "@")
			if !IsGitHubLogin(login) {
				return Decision{}, usage("%s is not a GitHub user name", shown(a.Words[1], 40))
			}
		}
		if add {
			return c.AddNeedToKnow(r, who, login)
		}
		return c.RemoveNeedToKnow(r, who, login)
	}
}

// githubArg is the one GitHub user name a command takes.
func githubArg(a Args) (string, error) {
	if len(a.Words) != 1 {
		return "", usage("one GitHub user name, e.g. octocat")
	}
	login := strings.TrimPrefix(a.Words[0], "@")
	if !IsGitHubLogin(login) {
		return "", usage("%s is not a GitHub user name (letters, digits and single hyphens, at most 39)", shown(a.Words[0], 40))
	}
	return login, nil
}

func decideGitHub(c *Case, r Request, a Args) (Decision, error) {
	login, err := githubArg(a)
	if err != nil {
		return Decision{}, err
	}
	return c.InviteToAdvisory(r, login)
}

func decideInvite(c *Case, r Request, a Args) (Decision, error) {
	switch len(a.Words) {
	case 0:
		return c.Invite(r, "")
	case 1:
		if who, ok := a.person(a.Words[0]); ok {
			return c.Invite(r, who)
		}
	}
	return Decision{}, usage("no one (the reporter) or one Matrix user like @carol:example.org")
}

func decideRepo(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 1 || !strings.Contains(a.Words[0], "/") || len(a.Words[0]) > MaxRepository {
		return Decision{}, usage("one repository, e.g. %s", templates.EscapeMarkdown(r.Policy.Repository))
	}
	return c.MoveAdvisory(r, a.Words[0])
}

// decideCredit takes how the reporter wants to be credited on the advisory.
func decideCredit(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 1 {
		return Decision{}, usage("`!credit YOUR-GITHUB-NAME`, or `!credit none` not to be credited")
	}
	name := strings.TrimPrefix(a.Words[0], "@")
	if strings.EqualFold(name, "none") {
		return c.Credit(r, "")
	}
	if !IsGitHubLogin(name) {
		return Decision{}, usage("%s is not a GitHub user name", shown(name, 40))
	}
	return c.Credit(r, name)
}

// decideOwnGitHub is the reporter naming their own GitHub account.
func decideOwnGitHub(c *Case, r Request, a Args) (Decision, error) {
	login, err := githubArg(a)
	if err != nil {
		return Decision{}, err
	}
	return c.NameOwnGitHub(r, login)
}

// decideReporterInvite invites the reporter back to their own case room.
func decideReporterInvite(c *Case, r Request, a Args) (Decision, error) {
	if len(a.Words) != 0 {
		return Decision{}, usage("`!invite` alone: it invites you")
	}
	return c.Invite(r, r.By)
}

// StatsDays reads the window `stats` reports on: DAYS, 90 by default, at
// most MaxStatsDays.
func StatsDays(words []string) (int, error) {
	days := 90
	if len(words) > 1 {
		return 0, usage("DAYS is one whole number")
	}
	if len(words) == 1 {
		if _, err := fmt.Sscanf(words[0], "%d", &days); err != nil || days < 1 || days > MaxStatsDays {
			return 0, usage("DAYS must be a whole number from 1 to %d", MaxStatsDays)
		}
	}
	return days, nil
}
