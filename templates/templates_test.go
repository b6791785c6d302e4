package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmbeddedTemplatesRender(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	md, err := set.Render("not_team", map[string]any{"Prefix": "!sec"})
	if err != nil || !strings.Contains(md, "`!sec`") {
		t.Errorf("not_team = %q, %v", md, err)
	}
	if _, err := set.Render("welcome", map[string]any{}); err == nil {
		t.Error("missing data rendered silently")
	}
}

func TestAnOperatorOverridesATemplate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not_team.md"), []byte("Sorry, {{.Prefix}} is for the team."), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if md, _ := set.Render("not_team", map[string]any{"Prefix": "!sec"}); md != "Sorry, !sec is for the team." {
		t.Errorf("override not used: %q", md)
	}
	if md, _ := set.Render("public_thread", nil); !strings.Contains(md, "direct message") {
		t.Errorf("the other templates stay embedded: %q", md)
	}
}

func TestBadOverridesAreRefused(t *testing.T) {
	for name, content := range map[string]string{"welcom.md": "typo in the name", "welcome.md": "{{.Broken"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestEscapeMarkdownLeavesNoMarkup(t *testing.T) {
	got := EscapeMarkdown("<b>x</b> [a](http://e) *b* `c`\nd")
	for _, bad := range []string{"<b>", "](", "*b*", "`c`", "\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("%q survives in %q", bad, got)
		}
	}
}

// A reload replaces the texts for everyone holding the set.
func TestReplacePutsNewTextsInForce(t *testing.T) {
	held, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slow_down.md"), []byte("Easy there."), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	held.Replace(reloaded)
	if got, err := held.Render("slow_down", nil); err != nil || got != "Easy there." {
		t.Errorf("after Replace: %q, %v", got, err)
	}
}
