package rctest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func schemaOf(t *testing.T, text string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The AJV-isms of rest-typings' schemas mean in Go what they mean in AJV.
func TestSchemasAreJudgedAsAJVJudgesThem(t *testing.T) {
	schema := schemaOf(t, `{
		"type": "object",
		"properties": {
			"count": {"type": "number", "nullable": true},
			"flag": {"type": "boolean"},
			"name": {"type": "string", "nullable": true, "isNotEmpty": true},
			"email": {"type": "string", "format": "basic_email"},
			"types": {"type": "array", "items": {"type": "string"}},
			"extra": {"type": "object", "dependencies": {"a": ["b"]}}
		},
		"additionalProperties": false
	}`)
	body, err := compileAJV("body", schema, false)
	if err != nil {
		t.Fatal(err)
	}
	query, err := compileAJV("query", schema, true)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		v     *routeValidator
		in    string
		valid bool
		check func(map[string]any) bool
	}{
		{"a numeric string is coerced to the number", body, `{"count": "5"}`, true,
			func(m map[string]any) bool { return m["count"] == json.Number("5") }},
		{"a word is not a number", body, `{"count": "five"}`, false, nil},
		{"nullable admits null", body, `{"count": null, "name": null}`, true, nil},
		{"\"true\" is coerced to true", body, `{"flag": "true"}`, true,
			func(m map[string]any) bool { return m["flag"] == true }},
		{"a number is coerced to a string", body, `{"name": 7}`, true,
			func(m map[string]any) bool { return m["name"] == "7" }},
		{"isNotEmpty refuses blanks", body, `{"name": "  "}`, false, nil},
		{"basic_email", body, `{"email": "no-at-sign"}`, false, nil},
		{"an unknown property", body, `{"other": 1}`, false, nil},
		{"dependencies still bind (as dependentRequired)", body, `{"extra": {"a": 1}}`, false, nil},
		{"ajv does not wrap a scalar into an array", body, `{"types": "c"}`, false, nil},
		{"ajvQuery does (coerceTypes: array)", query, `{"types": "c"}`, true,
			func(m map[string]any) bool { a, _ := m["types"].([]any); return len(a) == 1 && a[0] == "c" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, msgs := tc.v.check(schemaOf(t, tc.in))
			if (msgs == nil) != tc.valid {
				t.Fatalf("valid = %v, want %v (%v)", msgs == nil, tc.valid, msgs)
			}
			if tc.check != nil && !tc.check(out) {
				t.Fatalf("coerced to %v", out)
			}
		})
	}
}

type ajvCase struct {
	Route   string          `json:"route"`
	Params  json.RawMessage `json:"params"`
	Valid   bool            `json:"valid"`
	Coerced json.RawMessage `json:"coerced"`
}

func readAJVCases(t *testing.T) []ajvCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ajv-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []ajvCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestTheGoValidatorAgreesWithRestTypingsAJV judges the cases that
// scripts/rocketchat/ajv-agreement.test.mjs has rest-typings' own AJV
// validators judge (TestRestTypingsAJVAgreesWithTheCases runs it): the
// same verdict, and the same coerced parameters.
func TestTheGoValidatorAgreesWithRestTypingsAJV(t *testing.T) {
	vs, err := loadValidators()
	if err != nil {
		t.Fatal(err)
	}
	cases := readAJVCases(t)
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		v := vs.byRoute[c.Route]
		if v == nil {
			t.Errorf("%s: not in the fixture", c.Route)
			continue
		}
		params := schemaOf(t, string(c.Params))
		out, msgs := v.check(params)
		if (msgs == nil) != c.Valid {
			t.Errorf("%s %s: valid = %v, AJV says %v (%v)", c.Route, c.Params, msgs == nil, c.Valid, msgs)
			continue
		}
		if c.Coerced != nil {
			got, _ := json.Marshal(out)
			var a, b any
			_ = json.Unmarshal(got, &a)
			_ = json.Unmarshal(c.Coerced, &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s %s: coerced to %s, AJV to %s", c.Route, c.Params, got, c.Coerced)
			}
		}
	}
}

// TestRestTypingsAJVAgreesWithTheCases runs the node half: rest-typings'
// AJV validators judge the same cases.
func TestRestTypingsAJVAgreesWithTheCases(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to run rest-typings' validators (apt-get install nodejs npm): ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := scriptsDir(t)
	npmCI(t, ctx, dir)
	cmd := exec.CommandContext(ctx, node, "--test", "ajv-agreement.test.mjs")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test ajv-agreement.test.mjs: %v\n%s", err, out)
	}
}
