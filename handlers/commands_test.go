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
		rest, ok := h.commandText(tc.text)
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
	help, err := tmpl.RenderData(help("!sec", h.teamCmds, "commands"))
	if err != nil {
		t.Fatal(err)
	}
	for name, cmd := range h.teamCmds {
		if !strings.Contains(help, "`!sec "+strings.TrimSpace(name+" "+cmd.args)+"`") {
			t.Errorf("help does not list %s with its syntax", name)
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
