package disclosure

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// words normalises text for matching: NFKC folds look-alike forms
// (fullwidth letters, ligatures), case is folded, and everything that is
// not a letter or digit separates words.
func words(text string) []string {
	text = strings.ToLower(norm.NFKC.String(text))
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// subjects are what a report is about; each is a sequence of word stems.
var subjects = [][]string{
	{"security", "issue"}, {"security", "bug"}, {"security", "problem"}, {"security", "flaw"},
	{"security", "hole"}, {"security", "vulnerabilit"}, {"security", "concern"}, {"security", "report"},
	{"security", "defect"}, {"security", "weakness"}, {"security", "risk"},
	{"vulnerabilit"}, {"vuln"}, {"cve"}, {"exploit"}, {"zero", "day"}, {"0day"},
	{"responsible", "disclosure"}, {"coordinated", "disclosure"},
}

// asks are words that turn a subject into a request to report it.
var asks = map[string]bool{
	"report": true, "reporting": true, "reported": true, "found": true, "find": true, "discovered": true,
	"discover": true, "disclose": true, "disclosing": true, "submit": true, "share": true, "tell": true,
	"contact": true, "talk": true, "speak": true, "raise": true, "flag": true, "notify": true, "who": true,
	"where": true, "how": true, "want": true, "wanted": true, "like": true, "need": true, "have": true,
	"think": true, "believe": true, "possible": true, "potential": true, "suspect": true, "may": true,
	"might": true, "identified": true, "noticed": true, "spotted": true, "came": true, "got": true, "do": true,
}

// strongAsks override the context words below.
var strongAsks = map[string]bool{"report": true, "reporting": true, "disclose": true, "disclosing": true, "submit": true}

// offTopic marks talk about vulnerabilities rather than a report of one.
var offTopic = map[string]bool{
	"scanner": true, "scanners": true, "scanning": true, "news": true, "article": true, "blog": true, "read": true,
	"reading": true, "webinar": true, "training": true, "course": true, "management": true, "fixed": true,
	"fixing": true, "patched": true, "thanks": true, "database": true, "tool": true, "tools": true,
}

// IsReportIntent reports whether a message asks to report a security
// issue ("I want to report a security issue", "found a vuln", "who do I
// talk to about a vulnerability?"), while talk about security ("the
// security guard", "a security update is out") is not.
func IsReportIntent(text string) bool {
	if len(text) > 4096 {
		text = text[:4096]
	}
	ws := words(text)
	if !hasSubject(ws) {
		return false
	}
	ask, strong, off := false, false, false
	for _, w := range ws {
		ask = ask || asks[w]
		strong = strong || strongAsks[w]
		off = off || offTopic[w]
	}
	if off && !strong {
		return false
	}
	// A short message that names the subject ("Security issue!") is a
	// request by itself, to a bot that takes reports.
	return ask || len(ws) <= 4
}

func hasSubject(ws []string) bool {
	for i := range ws {
		for _, subject := range subjects {
			if i+len(subject) > len(ws) {
				continue
			}
			match := true
			for j, stem := range subject {
				if !strings.HasPrefix(ws[i+j], stem) || (stem == "cve" && !isCVEWord(ws[i+j])) {
					match = false
					break
				}
			}
			if match {
				return true
			}
		}
	}
	return false
}

// isCVEWord keeps "cve"/"cves" and avoids words that merely start with it.
func isCVEWord(w string) bool { return w == "cve" || w == "cves" }

// DetailsLength is how long a message may be before it looks like details.
const DetailsLength = 280

var (
	linkPattern = regexp.MustCompile(`(?i)(https?://|www\.|\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|org|net|io|dev|app|sh|co|xyz|me|gov|edu)(/|\b))`)
	codePattern = regexp.MustCompile("(```|`[^`\n]+`|(?m)^(    |\t)\\S)")
)

// LooksLikeDetails reports whether a first message seems to carry details
// already: long, with code, a link or an attachment.
func LooksLikeDetails(text string, hasAttachment bool) bool {
	return hasAttachment || utf8.RuneCountInString(text) > DetailsLength || codePattern.MatchString(text) || linkPattern.MatchString(text)
}
