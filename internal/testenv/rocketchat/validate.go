package rctest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"
)

// validatorsJSON is exported from @rocket.chat/rest-typings by
// scripts/rocketchat/export.mjs; it is never edited by hand.
//
//go:embed testdata/validators.json
var validatorsJSON []byte

// fixture is the shape of testdata/validators.json.
type fixture struct {
	Source           string                  `json:"source"`
	Routes           map[string]fixtureRoute `json:"routes"`
	WithoutValidator []string                `json:"withoutValidator"`
}

type fixtureRoute struct {
	Validator  string         `json:"validator"`
	Ajv        string         `json:"ajv"`        // "ajv" (coerceTypes: true) or "ajvQuery" (coerceTypes: "array")
	Checks     string         `json:"checks"`     // "body" or "query"
	Registered string         `json:"registered"` // "validateParams" or "typed"
	Schema     map[string]any `json:"schema"`
}

// routeValidator checks one route's parameters as the server's AJV would.
type routeValidator struct {
	name       string
	checks     string
	registered string
	arrays     bool // coerceTypes: "array"
	raw        map[string]any
	schema     *jsonschema.Schema
}

// validators are compiled once; the fixture is part of the binary.
type validators struct {
	source  string
	byRoute map[string]*routeValidator // "POST chat.sendMessage"
	none    map[string]bool            // routes the server registers without a validator
}

func loadValidators() (*validators, error) {
	var f fixture
	dec := json.NewDecoder(bytes.NewReader(validatorsJSON))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read validators fixture: %w", err)
	}
	vs := &validators{source: f.Source, byRoute: map[string]*routeValidator{}, none: map[string]bool{}}
	for _, r := range f.WithoutValidator {
		vs.none[r] = true
	}
	keys := make([]string, 0, len(f.Routes))
	for k := range f.Routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		r := f.Routes[key]
		v, err := compileAJV(key, r.Schema, r.Ajv == "ajvQuery")
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", key, r.Validator, err)
		}
		v.name, v.checks, v.registered = r.Validator, r.Checks, r.Registered
		vs.byRoute[key] = v
	}
	return vs, nil
}

// compileAJV compiles one of rest-typings' AJV schemas as a JSON Schema
// 2020-12 validator with rest-typings' keyword and formats.
func compileAJV(name string, schema map[string]any, arrays bool) (*routeValidator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertVocabs()
	c.RegisterVocabulary(isNotEmptyVocab())
	for _, f := range ajvFormats {
		c.RegisterFormat(f)
	}
	loc := "rest-typings://" + strings.ReplaceAll(name, " ", "/") + ".json"
	doc := toDraft2020(deepCopy(schema)).(map[string]any)
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, err
	}
	return &routeValidator{arrays: arrays, raw: schema, schema: sch}, nil
}

// check coerces params in place as AJV's coerceTypes does and validates
// them; it returns the coerced params and AJV-like messages on failure.
func (v *routeValidator) check(params map[string]any) (map[string]any, []string) {
	coerced := coerce(v.raw, params, v.arrays)
	obj, _ := coerced.(map[string]any)
	err := v.schema.Validate(coerced)
	if err == nil {
		return obj, nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return obj, []string{err.Error()}
	}
	var msgs []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		where := u.InstanceLocation
		if where == "" {
			where = "/"
		}
		msgs = append(msgs, where+": "+u.Error.String())
	}
	if len(msgs) == 0 {
		msgs = []string{ve.Error()}
	}
	return obj, msgs
}

// toDraft2020 rewrites the AJV-isms of rest-typings' schemas into plain
// JSON Schema 2020-12 with the same meaning: AJV's "nullable: true" is a
// "null" added to "type", and the old "dependencies" keyword (which AJV
// still honours) is "dependentRequired" / "dependentSchemas".
func toDraft2020(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			x[k] = toDraft2020(sub)
		}
		if n, ok := x["nullable"].(bool); ok {
			delete(x, "nullable")
			if n {
				switch t := x["type"].(type) {
				case string:
					x["type"] = []any{t, "null"}
				case []any:
					x["type"] = append(t, "null")
				}
			}
		}
		if deps, ok := x["dependencies"].(map[string]any); ok {
			delete(x, "dependencies")
			req, schemas := map[string]any{}, map[string]any{}
			for k, d := range deps {
				if arr, ok := d.([]any); ok {
					req[k] = arr
				} else {
					schemas[k] = d
				}
			}
			if len(req) > 0 {
				x["dependentRequired"] = req
			}
			if len(schemas) > 0 {
				x["dependentSchemas"] = schemas
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = toDraft2020(x[i])
		}
		return x
	}
	return v
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, sub := range x {
			m[k] = deepCopy(sub)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i := range x {
			a[i] = deepCopy(x[i])
		}
		return a
	}
	return v
}

// coerce mirrors AJV's type coercion (coerceTypes: true, or "array"): where
// a schema names a type the data does not have, a scalar is converted the
// way AJV converts it ("5" → 5, "true" → true, 5 → "5", null → "" …), and
// with arrays a scalar becomes a one-element array (and back). AJV coerces
// in place while it evaluates, branch after branch of anyOf/oneOf, so this
// walks the branches in order on the same data.
func coerce(schema map[string]any, data any, arrays bool) any {
	if schema == nil {
		return data
	}
	if types := schemaTypes(schema); len(types) > 0 {
		data = coerceValue(types, schema["nullable"] == true, data, arrays)
	}
	switch d := data.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for k, val := range d {
			if ps, ok := props[k].(map[string]any); ok {
				d[k] = coerce(ps, val, arrays)
			} else if ap, ok := schema["additionalProperties"].(map[string]any); ok {
				d[k] = coerce(ap, val, arrays)
			}
		}
	case []any:
		if it, ok := schema["items"].(map[string]any); ok {
			for i := range d {
				d[i] = coerce(it, d[i], arrays)
			}
		}
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
		branches, _ := schema[kw].([]any)
		for _, b := range branches {
			if bs, ok := b.(map[string]any); ok {
				data = coerce(bs, data, arrays)
			}
		}
	}
	return data
}

func schemaTypes(schema map[string]any) []string {
	switch t := schema["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if isInteger(x) {
			return "integer"
		}
		return "number"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func isInteger(n json.Number) bool {
	f, err := n.Float64()
	return err == nil && f == math.Trunc(f)
}

func typeMatches(types []string, v any) bool {
	jt := jsonType(v)
	for _, t := range types {
		if t == jt || (t == "number" && jt == "integer") {
			return true
		}
	}
	return false
}

func coerceValue(types []string, nullable bool, v any, arrays bool) any {
	if typeMatches(types, v) || (nullable && v == nil) {
		return v
	}
	if arrays {
		if arr, ok := v.([]any); ok && len(arr) == 1 && !contains(types, "array") {
			v = arr[0]
			if typeMatches(types, v) {
				return v
			}
		}
	}
	// AJV tries the types in this order.
	for _, t := range []string{"string", "number", "integer", "boolean", "null"} {
		if !contains(types, t) {
			continue
		}
		if c, ok := coerceTo(t, v); ok {
			return c
		}
	}
	if arrays && contains(types, "array") {
		switch v.(type) {
		case []any, map[string]any:
		default:
			return []any{v}
		}
	}
	return v
}

func coerceTo(t string, v any) (any, bool) {
	switch t {
	case "string":
		switch x := v.(type) {
		case json.Number:
			return x.String(), true
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), true
		case bool:
			return strconv.FormatBool(x), true
		case nil:
			return "", true
		}
	case "number", "integer":
		switch x := v.(type) {
		case string:
			s := x
			if s == "" {
				return nil, false
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, false
			}
			if t == "integer" && f != math.Trunc(f) {
				return nil, false
			}
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
		case bool:
			if x {
				return json.Number("1"), true
			}
			return json.Number("0"), true
		case nil:
			return json.Number("0"), true
		}
	case "boolean":
		switch x := v.(type) {
		case string:
			if x == "true" {
				return true, true
			}
			if x == "false" {
				return false, true
			}
		case json.Number:
			if x.String() == "1" {
				return true, true
			}
			if x.String() == "0" {
				return false, true
			}
		case nil:
			return false, true
		}
	case "null":
		switch x := v.(type) {
		case string:
			if x == "" {
				return nil, true
			}
		case json.Number:
			if x.String() == "0" {
				return nil, true
			}
		case bool:
			if !x {
				return nil, true
			}
		}
	}
	return nil, false
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// queryParams turns a query string into what the server's router hands
// its validators: one value is a string, a repeated key an array.
func queryParams(q url.Values) map[string]any {
	out := make(map[string]any, len(q))
	for k, vs := range q {
		k = strings.TrimSuffix(k, "[]")
		if len(vs) == 1 {
			out[k] = vs[0]
			continue
		}
		arr := make([]any, len(vs))
		for i, v := range vs {
			arr[i] = v
		}
		out[k] = arr
	}
	return out
}

// The custom keyword rest-typings registers on both AJV instances.
func isNotEmptyVocab() *jsonschema.Vocabulary {
	return &jsonschema.Vocabulary{
		URL: "rest-typings://vocab/isNotEmpty",
		Compile: func(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
			if _, ok := obj["isNotEmpty"]; !ok {
				return nil, nil
			}
			return isNotEmpty{}, nil
		},
	}
}

type isNotEmpty struct{}

func (isNotEmpty) Validate(ctx *jsonschema.ValidatorContext, v any) {
	// AJV's keyword has type: "string": it only looks at strings.
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		ctx.AddError(notEmptyError{})
	}
}

type notEmptyError struct{}

func (notEmptyError) KeywordPath() []string { return []string{"isNotEmpty"} }
func (notEmptyError) LocalizedString(*message.Printer) string {
	return `must pass "isNotEmpty" keyword validation`
}

// The formats rest-typings adds (basic_email, rfc_email) and the ajv-formats
// ones its schemas use that JSON Schema itself does not define.
var ajvFormats = []*jsonschema.Format{
	regexpFormat("basic_email", `^[^@]+@[^@]+$`),
	regexpFormat("rfc_email", "^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"),
	regexpFormat("iso-date-time", `(?i)^\d\d\d\d-[0-1]\d-[0-3]\d[t\s](?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)?$`),
	regexpFormat("iso-time", `(?i)^(?:[0-2]\d:[0-5]\d:[0-5]\d|23:59:60)(?:\.\d+)?(?:z|[+-]\d\d(?::?\d\d)?)?$`),
}

func regexpFormat(name, expr string) *jsonschema.Format {
	re := regexp.MustCompile(expr)
	return &jsonschema.Format{Name: name, Validate: func(v any) error {
		s, ok := v.(string)
		if !ok || re.MatchString(s) {
			return nil
		}
		return fmt.Errorf("must match format %q", name)
	}}
}
