// Package templates holds every text a person reads from secbot, as
// embedded text/template files that an operator may override.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"text/template"
	"time"
)

//go:embed text/*.md
var embedded embed.FS

// Set is the parsed collection of templates.
type Set struct {
	// tmpl is swapped whole by Replace (a config reload).
	tmpl atomic.Pointer[template.Template]
}

// Names lists the embedded templates (without the .md extension).
func Names() []string {
	entries, _ := fs.ReadDir(embedded, "text")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".md"))
	}
	return names
}

// funcs are the templates' helpers. Every person and address a text
// shows (a user ID, an email address, a login: what someone else chose)
// goes through md, people or code, so that a name like
// "[Verify](https://evil.example)"@evil.example shows as itself and never as a link.
var funcs = template.FuncMap{
	"md":     EscapeMarkdown,
	"people": EscapePeople,
	"code":   CodeSpan,
	"date":   func(t time.Time) string { return t.Format("Mon 2 Jan 2006 15:04 MST") },
	"day":    func(t time.Time) string { return t.Format("Mon 2 Jan 2006") },
	"join":   strings.Join,
}

// Load parses the embedded templates, then the files NAME.md in dir (if dir
// is not empty), which replace the embedded ones of the same name. A file
// in dir that names no known template is an error, so typos are caught.
func Load(dir string) (*Set, error) {
	root := template.New("secbot").Funcs(funcs).Option("missingkey=error")
	known := map[string]bool{}
	for _, name := range Names() {
		data, err := embedded.ReadFile("text/" + name + ".md")
		if err != nil {
			return nil, err
		}
		if _, err := root.New(name).Parse(string(data)); err != nil {
			return nil, fmt.Errorf("embedded template %s: %w", name, err)
		}
		known[name] = true
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("templates dir: %w", err)
		}
		var problems []error
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
				continue
			}
			name := strings.TrimSuffix(e.Name(), ".md")
			if !known[name] {
				problems = append(problems, fmt.Errorf("%s: no template is named %q", filepath.Join(dir, e.Name()), name))
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				problems = append(problems, err)
				continue
			}
			if _, err := root.New(name).Parse(string(data)); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err))
			}
		}
		if len(problems) > 0 {
			return nil, errors.Join(problems...)
		}
	}
	set := &Set{}
	set.tmpl.Store(root)
	return set, nil
}

// Replace puts other's templates in force in s, for everyone holding s.
func (s *Set) Replace(other *Set) { s.tmpl.Store(other.tmpl.Load()) }

// Render executes the named template with data and returns Markdown.
func (s *Set) Render(name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := s.tmpl.Load().ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return strings.TrimSpace(buf.String()), nil
}

// EscapeMarkdown makes untrusted text appear literally in Markdown: every
// character Markdown or HTML could treat as markup is backslash-escaped.
func EscapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '-', '.', '!', '|', '<', '>', '~', '&', '"', '\'', '=', ':', '@':
			b.WriteByte('\\')
		case '\n', '\r':
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// EscapePeople is a list of people (or addresses), each escaped, joined by
// commas.
func EscapePeople(people []string) string {
	out := make([]string, len(people))
	for i, p := range people {
		out[i] = EscapeMarkdown(p)
	}
	return strings.Join(out, ", ")
}

// CodeSpan shows s literally as inline code, whatever it holds: the fence
// is longer than any run of backticks in s, and line breaks are spaces.
func CodeSpan(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// RenderData renders the template that d's type belongs to.
func (s *Set) RenderData(d Data) (string, error) { return s.Render(d.Template(), d) }

// Truncate shortens s to at most n characters (runes), marking the cut
// with an ellipsis: what people typed is quoted back only in part.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// markdownEscape finds what EscapeMarkdown escaped; strong finds bold.
var (
	markdownEscape = regexp.MustCompile(`\\([\\` + "`" + `*_{}\[\]()#+\-.!|<>~&"'=:@])`)
	strong         = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
)

// Unescape drops EscapeMarkdown's backslashes: the text as people read it,
// markup aside.
func Unescape(md string) string { return markdownEscape.ReplaceAllString(md, "$1") }

// PlainText turns a rendered text into what reads well in a plain-text
// email: no bold markers and no backslash escapes. Text people wrote
// stays as they wrote it.
func PlainText(md string) string {
	return markdownEscape.ReplaceAllString(strong.ReplaceAllString(md, "$1"), "$1")
}
