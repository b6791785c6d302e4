package templates

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
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

// Every template renders with its data type (missingkey=error makes a field
// the text uses but the type lacks fail here, not in a user's command), and
// every template has exactly one data type.
func TestEveryTemplateRendersWithItsData(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	typed := map[string]bool{}
	for _, d := range All() {
		name := d.Template()
		if typed[name] {
			t.Errorf("two data types for %s", name)
		}
		typed[name] = true
		// Empty, then with every field set, so that every {{if}} branch runs.
		for _, v := range []Data{d, filled(d)} {
			if _, err := set.RenderData(v); err != nil {
				t.Errorf("%s with %T: %v", name, d, err)
			}
		}
	}
	for _, name := range Names() {
		if !typed[name] {
			t.Errorf("template %s has no data type", name)
		}
	}
	for name := range typed {
		if !slices.Contains(Names(), name) {
			t.Errorf("data type for %s, which is no template", name)
		}
	}
}

// filled returns d with every field set: strings, numbers, true, a time,
// and one filled element in each slice.
func filled(d Data) Data {
	v := reflect.New(reflect.TypeOf(d)).Elem()
	fill(v)
	return v.Interface().(Data)
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int:
		v.SetInt(1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	}
}

// Every outcome of the done template renders with the fields it uses.
func TestEveryDoneOutcomeRenders(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	text, err := embedded.ReadFile("text/done.md")
	if err != nil {
		t.Fatal(err)
	}
	whats := regexp.MustCompile(`eq \.What "([a-z_]+)"`).FindAllStringSubmatch(string(text), -1)
	if len(whats) < 10 {
		t.Fatalf("found %d outcomes in done.md", len(whats))
	}
	for _, m := range whats {
		d := filled(Done{}).(Done)
		d.What = m[1]
		md, err := set.RenderData(d)
		if err != nil || md == "Done." {
			t.Errorf("%s: %q, %v", m[1], md, err)
		}
	}
}

func TestPlainTextReadsWellInAnEmail(t *testing.T) {
	md := "**Message from the security team** (" + EscapeMarkdown("@alice:localhost") + "):\n\nUse `x` and **not** y."
	if got, want := PlainText(md), "Message from the security team (@alice:localhost):\n\nUse `x` and not y."; got != want {
		t.Errorf("PlainText = %q, want %q", got, want)
	}
}
