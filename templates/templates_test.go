package templates

import (
	"html"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/format"
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

// personFields are the fields that show a person or an address: a user
// ID, an email address, a GitHub login, a room, someone's device. What
// they hold was chosen by someone else.
var personFields = []string{
	"Reporter", "Handler", "Member", "User", "Suggested", "Actor", "Team", "Added", "Removed", "NeedToKnow",
	"From", "To", "Email", "Address", "Who", "Name", "Login", "GitHubReporter", "Credit", "Credits", "Queued", "Posted", "Device", "Key",
}

// evilPerson is an email address that is Markdown for a link.
const evilPerson = `"[Verify](https://evil.example)"@evil.example`

// Every person and address a template shows is shown as itself: no link,
// no markup, rendered as the bot renders its messages.
func TestPeopleAndAddressesAreEscaped(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	text, err := embedded.ReadFile("text/done.md")
	if err != nil {
		t.Fatal(err)
	}
	var all []Data
	for _, d := range All() {
		if _, ok := d.(Done); !ok {
			all = append(all, d)
		}
	}
	for _, m := range regexp.MustCompile(`eq \.What "([a-z_]+)"`).FindAllStringSubmatch(string(text), -1) {
		d := filled(Done{}).(Done)
		d.What = m[1]
		all = append(all, d)
	}
	shown := 0
	for _, d := range all {
		v := reflect.ValueOf(&d).Elem().Elem()
		p := reflect.New(v.Type()).Elem()
		p.Set(v)
		if _, ok := d.(Done); !ok {
			fill(p)
		}
		setPeople(p)
		md, err := set.RenderData(p.Interface().(Data))
		if err != nil {
			t.Errorf("%T: %v", d, err)
			continue
		}
		if strings.Contains(md, "evil") {
			shown++
		}
		out := format.RenderMarkdown(md, true, false).FormattedBody
		if strings.Contains(out, `href="https://evil`) {
			t.Errorf("%s shows a person as a link:\n%s\n%s", d.Template(), md, out)
		}
		if strings.Contains(md, "evil") && !strings.Contains(html.UnescapeString(out), evilPerson) {
			t.Errorf("%s does not show the person as they are:\n%s\n%s", d.Template(), md, out)
		}
	}
	if shown < 20 {
		t.Errorf("only %d texts show a person", shown)
	}
}

// setPeople sets every person field of v, in v and its rows, to evilPerson.
func setPeople(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		for i := range v.Len() {
			setPeople(v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !slices.Contains(personFields, v.Type().Field(i).Name) {
				setPeople(f)
				continue
			}
			switch f.Kind() {
			case reflect.String:
				f.SetString(evilPerson)
			case reflect.Slice:
				s := reflect.MakeSlice(f.Type(), 2, 2)
				for j := range 2 {
					s.Index(j).SetString(evilPerson)
				}
				f.Set(s)
			}
		}
	}
}

func TestACodeSpanHoldsAnything(t *testing.T) {
	for _, s := range []string{"KEY", "a`b", "``", "`x", "x\ny"} {
		out := format.RenderMarkdown("see "+CodeSpan(s), true, false).FormattedBody
		want := strings.ReplaceAll(s, "\n", " ")
		if !strings.Contains(out, "<code>"+want+"</code>") {
			t.Errorf("CodeSpan(%q) renders as %q", s, out)
		}
	}
}
