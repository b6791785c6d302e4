package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func readExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// secretFiles finds the example's *_file keys that name a file.
var secretFiles = regexp.MustCompile(`(?m)^(\w+_file) = ".+"$`)

func TestTheExampleIsValidWithSecretsFromTheEnvironment(t *testing.T) {
	example := readExample(t)
	if !secretFiles.MatchString(example) {
		t.Fatal("the example names no secret file")
	}
	// The example names secret files, which this machine does not have; with
	// those keys emptied the environment supplies the secrets.
	data := secretFiles.ReplaceAllString(example, `$1 = ""`)
	cfg, err := Parse([]byte(data), t.TempDir(), getenv(baseEnv))
	if err != nil {
		t.Fatalf("config.example.toml is not valid:\n%v", err)
	}
	if !cfg.GitHub.Enabled() || cfg.GitHub.AuthMode() != AuthToken || len(cfg.Team.MemberIDs) != 3 || len(cfg.Announce.Rooms) != 1 {
		t.Errorf("the example is read as\n%s", cfg.Summary())
	}
	if !reflect.DeepEqual(cfg.Escalation, DefaultEscalation) {
		t.Errorf("the example's ladder %v is not the default %v, which it says it is", cfg.Escalation, DefaultEscalation)
	}
}

// exampleKey is a key = value line of the example and the comment above it.
type exampleKey struct {
	value, comment string
}

// exampleKeys reads the example into section → key → the first line
// setting it, with its comment.
func exampleKeys(example string) map[string]map[string]exampleKey {
	keys := map[string]map[string]exampleKey{}
	section := ""
	var comment []string
	for _, line := range strings.Split(example, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			if keys[section] == nil {
				keys[section] = map[string]exampleKey{}
			}
		case strings.Contains(line, " = "):
			k, v, _ := strings.Cut(line, " = ")
			if _, seen := keys[section][k]; !seen {
				keys[section][k] = exampleKey{value: v, comment: strings.Join(comment, "\n")}
			}
		}
		comment = nil
	}
	return keys
}

func TestTheExampleDocumentsEveryKeyWithItsDefault(t *testing.T) {
	keys := exampleKeys(readExample(t))
	defaults := reflect.ValueOf(Defaults())
	cfgType := reflect.TypeOf(Config{})
	n := 0
	for i := range cfgType.NumField() {
		section := cfgType.Field(i)
		name := section.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		typ := section.Type
		if typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if keys[name] == nil {
			t.Errorf("config.example.toml has no [%s]", name)
			continue
		}
		for j := range typ.NumField() {
			field := typ.Field(j)
			key := field.Tag.Get("toml")
			if key == "" || key == "-" {
				continue
			}
			n++
			ex, ok := keys[name][key]
			switch {
			case !ok:
				t.Errorf("config.example.toml does not show %s.%s", name, key)
				continue
			case ex.comment == "":
				t.Errorf("config.example.toml does not explain %s.%s", name, key)
				continue
			}
			def, hasDefault := strings.CutPrefix(lastLine(ex.comment), "Default: ")
			switch {
			case hasDefault && section.Type.Kind() == reflect.Slice:
				t.Errorf("%s.%s: a step of a list has no default of its own", name, key)
			case hasDefault:
				// The stated default, decoded, must be what Defaults gives.
				var got Config
				if _, err := toml.Decode("["+name+"]\n"+key+" = "+def, &got); err != nil {
					t.Errorf("%s.%s: the stated default %s does not parse: %v", name, key, def, err)
					continue
				}
				want := defaults.Field(i).Field(j).Interface()
				if g := reflect.ValueOf(got).Field(i).Field(j).Interface(); !sameValue(g, want) {
					t.Errorf("%s.%s: the example says the default is %s; it is %#v", name, key, def, want)
				}
			case !strings.Contains(ex.comment, "Required"):
				t.Errorf("%s.%s: the comment gives neither its default (a last line \"Default: …\") nor that it is required", name, key)
			default:
				if want := defaults.Field(i); section.Type.Kind() != reflect.Slice && !want.Field(j).IsZero() {
					t.Errorf("%s.%s is documented as required but has the default %#v", name, key, want.Field(j).Interface())
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d keys were found: the walk is broken", n)
	}
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// sameValue is reflect.DeepEqual, but an empty list is the same as none.
func sameValue(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	empty := func(v reflect.Value) bool {
		return (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.Len() == 0
	}
	if empty(va) && empty(vb) && va.Kind() == vb.Kind() {
		return true
	}
	return reflect.DeepEqual(a, b)
}
