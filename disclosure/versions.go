package disclosure

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/enarx/secbot/templates"
)

// version is one version as people write them: 1.4, v2.0.1, 1.0.0-rc.1.
var version = regexp.MustCompile(`^v?[0-9][0-9A-Za-z.+_]*(?:-[0-9A-Za-z.+_]+)?$`)

// operators are the comparisons GitHub's vulnerable_version_range takes.
var operators = []string{">=", "<=", ">", "<", "="}

// VersionRange turns affected versions as people type them into GitHub's
// range syntax (">= 1.0, < 1.2"): a bound or two ("<1.2", ">= 1.0, < 1.2"),
// a span ("1.0-1.1" or "1.0 1.1": from the first to the last, inclusive) or
// one version ("1.0"). What cannot be made one is refused, saying why.
func VersionRange(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("no versions given")
	}
	if strings.ContainsAny(s, "<>=") {
		var bounds []string
		for _, part := range strings.Split(s, ",") {
			bound, err := parseBound(strings.TrimSpace(part))
			if err != nil {
				return "", err
			}
			bounds = append(bounds, bound)
		}
		if len(bounds) > 2 {
			return "", fmt.Errorf("a range has at most two bounds, like >= 1.0, < 1.2")
		}
		return strings.Join(bounds, ", "), nil
	}
	words := strings.Fields(s)
	if len(words) == 1 && looksLikeSpan(s) {
		from, to, _ := strings.Cut(s, "-")
		words = []string{from, to}
	}
	for _, w := range words {
		if !version.MatchString(w) {
			return "", fmt.Errorf("%q is not a version like 1.4.2", templates.Truncate(w, 30))
		}
	}
	switch len(words) {
	case 1:
		return "= " + words[0], nil
	case 2:
		return ">= " + words[0] + ", <= " + words[1], nil
	}
	return "", fmt.Errorf("give one version, a span like 1.0-1.1, or bounds like >= 1.0, < 1.2")
}

// looksLikeSpan tells "1.0-1.1" (a span) from "1.0.0-rc.1" (a version).
func looksLikeSpan(s string) bool {
	from, to, ok := strings.Cut(s, "-")
	return ok && version.MatchString(from) && version.MatchString(to) && to != "" && to[0] >= '0' && to[0] <= '9'
}

func parseBound(part string) (string, error) {
	for _, op := range operators {
		if rest, ok := strings.CutPrefix(part, op); ok {
			v := strings.TrimSpace(rest)
			if !version.MatchString(v) {
				return "", fmt.Errorf("%q is not a version like 1.4.2", templates.Truncate(v, 30))
			}
			return op + " " + v, nil
		}
	}
	return "", fmt.Errorf("%q is not a bound like >= 1.0 or < 1.2", templates.Truncate(part, 30))
}
