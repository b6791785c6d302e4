package handlers

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/templates"
)

func testHandlers() *Handlers {
	h := &Handlers{policy: disclosure.NewInForce(disclosure.Policy{CommandPrefix: "!sec"})}
	h.teamCmds = h.teamCommands()
	h.reporterCmds = h.reporterCommands()
	return h
}

func TestCommandPrefixIsExactAndASCII(t *testing.T) {
	h := testHandlers()
	for _, tc := range []struct {
		text string
		rest string
		ok   bool
	}{
		{"!sec list", "list", true},
		{"  !SEC   status SR-2026-0001 ", "status SR-2026-0001", true},
		{"!sec", "", true},
		{"!secret list", "", false},
		{"！sec list", "", false},       // fullwidth exclamation mark
		{"!ѕec list", "", false},       // Cyrillic dze
		{"\u200b!sec list", "", false}, // zero-width space before
		{"please !sec list", "", false},
		{"", "", false},
	} {
		rest, ok := h.commandText("matrix:!room:x", tc.text)
		if ok != tc.ok || rest != tc.rest {
			t.Errorf("commandText(%q) = %q, %v; want %q, %v", tc.text, rest, ok, tc.rest, tc.ok)
		}
	}
}

func TestParseCommandFindsCaseAndFreeText(t *testing.T) {
	h := testHandlers()
	cmd, p, err := parseCommand("update SR-2026-0042   We found the bug.\n\nFix next week.", h.teamCmds)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.name != "update" || !p.named || p.caseID.String() != "SR-2026-0042" {
		t.Fatalf("got %s %+v", cmd.name, p)
	}
	if p.rest != "We found the bug.\n\nFix next week." {
		t.Errorf("free text = %q: its spacing must be kept", p.rest)
	}
	_, p, err = parseCommand("update the fix is ready", h.teamCmds)
	if err != nil || p.named || p.rest != "the fix is ready" {
		t.Errorf("without a case ID: %+v, %v", p, err)
	}
}

func TestParseCommandRefusesBadInputInOneLine(t *testing.T) {
	h := testHandlers()
	for name, text := range map[string]string{
		"an unknown command":             "frobnicate",
		"a malformed case ID":            "status SR-20x6-1",
		"a very long command":            "update " + strings.Repeat("a", maxCommandLength),
		"markup in an unknown command":   "<b>hi</b>",
		"markdown link in a command":     "[click](https://evil.example)",
		"a case ID with look-alike dash": "status SR‐2026‐0001",
	} {
		_, _, err := parseCommand(text, h.teamCmds)
		if err == nil {
			if name == "a case ID with look-alike dash" {
				continue // not a case ID: taken as free text, which status ignores
			}
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: answer spans lines: %q", name, msg)
		}
		if strings.Contains(msg, "<b>") || strings.Contains(msg, "](") {
			t.Errorf("%s: answer carries markup unescaped: %q", name, msg)
		}
		if utf8.RuneCountInString(msg) > 200 {
			t.Errorf("%s: answer is %d characters long", name, utf8.RuneCountInString(msg))
		}
	}
}

func TestHelpIsGeneratedFromTheRegistrations(t *testing.T) {
	h := testHandlers()
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	help, err := tmpl.RenderData(help("!sec", h.teamCmds, "commands", true))
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range disclosure.TeamCommands() {
		if len(spec.Subs) == 0 {
			if !strings.Contains(help, "`!sec "+strings.TrimSpace(spec.Name+" "+spec.Syntax)+"` — "+spec.Summary) {
				t.Errorf("help does not list %s with its syntax", spec.Name)
			}
			continue
		}
		for _, sub := range spec.Subs {
			if !strings.Contains(help, "`!sec "+spec.Name+" "+spec.SubSyntax(sub)+"` — "+sub.Summary) {
				t.Errorf("help does not list %s %s on its own line", spec.Name, sub.Name)
			}
		}
	}
}

func TestHelpGivesSubcommandsTheirOwnLines(t *testing.T) {
	h := testHandlers()
	lines := map[string]string{}
	for _, l := range help("!sec", h.teamCmds, "commands", true).Commands {
		lines[l.Syntax] = l.Summary
	}
	for _, want := range []string{
		"!sec embargo [CASE] propose YYYY-MM-DD [HH:MM]", "!sec embargo [CASE] add @user [github-name]",
		"!sec embargo [CASE] remove @user [github-name]", "!sec embargo [CASE] lift",
		"!sec audit [CASE] start", "!sec audit [CASE] done",
	} {
		if lines[want] == "" {
			t.Errorf("help has no line %q with a summary; it has %v", want, lines)
		}
	}
	for syntax := range lines {
		if (strings.HasPrefix(syntax, "!sec embargo") || strings.HasPrefix(syntax, "!sec audit")) && strings.Contains(syntax, "|") {
			t.Errorf("help line %q lists alternatives instead of a line each", syntax)
		}
	}
}

func TestHelpHidesGitHubCommandsWithoutGitHub(t *testing.T) {
	h := testHandlers()
	gitHubOnly := map[string]bool{"github": true, "fork": true, "cve": true, "advisory": true, "repo": true, "cwe": true}
	for _, github := range []bool{false, true} {
		listed := map[string]bool{}
		for _, l := range help("!sec", h.teamCmds, "commands", github).Commands {
			listed[strings.Fields(l.Syntax)[1]] = true
		}
		for _, spec := range disclosure.TeamCommands() {
			if want := github || !gitHubOnly[spec.Name]; listed[spec.Name] != want {
				t.Errorf("GitHub on %v: %s listed %v, want %v", github, spec.Name, listed[spec.Name], want)
			}
			if spec.GitHub != gitHubOnly[spec.Name] {
				t.Errorf("%s: GitHub-only %v, want %v", spec.Name, spec.GitHub, gitHubOnly[spec.Name])
			}
		}
		reporterListed := false
		for _, l := range help("", h.reporterCmds, "", github).Commands {
			reporterListed = reporterListed || strings.HasPrefix(l.Syntax, "!github")
		}
		if reporterListed != github {
			t.Errorf("GitHub on %v: the reporter's !github listed %v", github, reporterListed)
		}
	}
}

func TestReporterCommandsAreWholeMessages(t *testing.T) {
	h := testHandlers()
	for text, want := range map[string]bool{
		"status":                          true,
		"!status":                         true,
		"!escalate":                       true,
		"Help":                            true,
		"escalate":                        false, // changes something: needs the "!"
		"agree":                           false,
		"Agree":                           false,
		"!agree":                          true,
		"disagree":                        false,
		"github octocat":                  false,
		"status of my report please":      false,
		"can you help me":                 false,
		"!frobnicate":                     false,
		"I want to report a security bug": false,
	} {
		if _, _, ok := h.reporterCommand(text); ok != want {
			t.Errorf("reporterCommand(%q) = %v, want %v", text, ok, want)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{"list", "status SR-2026-0001", "update SR-2026-0001 text", "assign SR-2026-0001 @bob:x", "", "\x00", "help help", "ʜᴇʟᴘ"} {
		f.Add(seed)
	}
	h := testHandlers()
	f.Fuzz(func(t *testing.T, text string) {
		cmd, p, err := parseCommand(text, h.teamCmds)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error for %q", text)
			}
			return
		}
		if cmd == nil {
			t.Fatalf("no command and no error for %q", text)
		}
		if p.named && p.caseID.IsZero() {
			t.Fatalf("named case is zero for %q", text)
		}
		if len(p.rest) > len(text) {
			t.Fatalf("rest longer than input for %q", text)
		}
	})
}

func TestGitHubCommandsWithoutGitHubAreHiddenAndRefused(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	got := w.say(teamRoom, alice, "!sec help")
	if strings.Contains(got, "!sec fork") || strings.Contains(got, "!sec cve") || !strings.Contains(got, "!sec embargo [CASE] lift") {
		t.Errorf("help without GitHub:\n%s", got)
	}
	for _, text := range []string{"!sec fork SR-2026-0001", "!sec cve SR-2026-0001", "!sec github SR-2026-0001", "!sec cwe SR-2026-0001 nonsense", "!sec repo SR-2026-0001"} {
		if got := w.say(teamRoom, alice, text); !strings.Contains(got, "GitHub is not configured") {
			t.Errorf("%s without GitHub: %q", text, got)
		}
	}
	if got := w.say(teamRoom, alice, "!sec help fork"); !strings.Contains(got, "GitHub is not configured") {
		t.Errorf("help fork without GitHub: %q", got)
	}
	if got := w.say(caseRoom, reporter, "help"); strings.Contains(got, "!github") {
		t.Errorf("reporter help without GitHub offers !github:\n%s", got)
	}
	p := *w.policy.Get()
	p.GitHub = true
	w.policy.Set(p)
	if got := w.say(teamRoom, alice, "!sec help"); !strings.Contains(got, "!sec fork [CASE]") || !strings.Contains(got, "!sec cwe [CASE]") {
		t.Errorf("help with GitHub:\n%s", got)
	}
	if got := w.say(teamRoom, alice, "!sec help embargo"); !strings.Contains(got, "!sec embargo [CASE] propose") || !strings.Contains(got, "!sec embargo [CASE] remove") {
		t.Errorf("help embargo:\n%s", got)
	}
	if got := w.say(caseRoom, reporter, "help"); !strings.Contains(got, "!github NAME") {
		t.Errorf("reporter help with GitHub:\n%s", got)
	}
}
