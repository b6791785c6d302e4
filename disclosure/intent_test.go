package disclosure

import (
	"strings"
	"testing"
)

func TestReportIntentIsTolerant(t *testing.T) {
	for _, s := range []string{
		"I want to report a security issue",
		"i want to report a security issue.",
		"Hi! I'd like to report a security issue, please.",
		"I WANT TO REPORT A SECURITY ISSUE",
		"security issue",
		"Security bug!",
		"I found a security bug in enarx",
		"I think I found a vulnerability",
		"report a vuln",
		"I need to report a security problem",
		"I'd like to report a vulnerability",
		"Who do I talk to about a security vulnerability?",
		"Where can I report security bugs?",
		"I have a CVE to report",
		"I discovered a security hole in the loader",
		"I want to disclose a vulnerability",
		"responsible disclosure",
		"I'd like to do a responsible disclosure",
		"Is this where I report security issues?",
		"potential vulnerability in the parser",
		"I may have found an exploit",
		"hello, how do I report a vulnerability",
		"can I talk to someone about a security concern",
		"I noticed a security flaw",
		"ｉ ｗａｎｔ ｔｏ ｒｅｐｏｒｔ ａ ｓｅｃｕｒｉｔｙ ｉｓｓｕｅ",
		"I want to report a security\u00a0issue",
		"I want to report a security-issue",
		"vulnerability report",
		"Found a vuln, who should I tell?",
		"I want to submit a security report",
		"There's a 0day in your project, how do I contact you?",
	} {
		if !IsReportIntent(s) {
			t.Errorf("IsReportIntent(%q) = false, want true", s)
		}
	}
}

func TestReportIntentIgnoresNearMisses(t *testing.T) {
	for _, s := range []string{
		"the security guard",
		"a security update is out",
		"security team meeting at 3",
		"is there a vulnerability scanner you like",
		"I read about a vulnerability in the news",
		"the security of the project is great",
		"how do I update my security settings",
		"bug report: the UI is broken",
		"I want to report a bug",
		"CVE-2021-44228 was a famous one in Java land",
		"thanks for fixing the vulnerability last week",
		"our vulnerability management process needs work",
		"I exploit this feature every single day",
		"hello",
		"",
		"security",
		"Can you review my pull request?",
		"what's the security model of enarx?",
		"We talked about security yesterday",
		"did you see the article on vulnerabilities in the blog",
		"cvent registration link",
	} {
		if IsReportIntent(s) {
			t.Errorf("IsReportIntent(%q) = true, want false", s)
		}
	}
}

func TestLooksLikeDetails(t *testing.T) {
	for s, want := range map[string]bool{
		"I want to report a security issue":                       false,
		"I want to report a security issue: see https://x.io/poc": true,
		"I want to report a security issue in `parse()`":          true,
		"here:\n```\nmemcpy(a, b, n)\n```":                        true,
		"here:\n    memcpy(a, b, n)":                              true,
		"see www.example.org":                                     true,
		"see example.com/poc":                                     true,
		strings.Repeat("a", DetailsLength+1):                      true,
		strings.Repeat("é", DetailsLength):                        false,
		"version 1.2.3 is affected":                               false,
	} {
		if got := LooksLikeDetails(s, false); got != want {
			t.Errorf("LooksLikeDetails(%q) = %v, want %v", s, got, want)
		}
	}
	if !LooksLikeDetails("", true) {
		t.Error("an attachment is details")
	}
}

func FuzzIsReportIntent(f *testing.F) {
	for _, s := range []string{"I want to report a security issue", "security guard", "ｃｖｅ", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := IsReportIntent(s)
		// Case must not change the answer (for text whose case folds back).
		if upper := strings.ToUpper(s); strings.EqualFold(upper, s) && IsReportIntent(upper) != got {
			t.Fatalf("case changed the answer for %q", s)
		}
		_ = LooksLikeDetails(s, false)
	})
}

func FuzzParseSpan(f *testing.F) {
	for _, s := range []string{"48h", "3 days", "5 working days", "-1h", "1e9h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		span, err := ParseSpan(s)
		if err != nil {
			return
		}
		if span.Fixed < 0 || span.WorkingDays < 0 {
			t.Fatalf("%q parsed to a negative span %+v", s, span)
		}
		back, err := ParseSpan(span.String())
		if err != nil || back != span {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, span, span.String(), back, err)
		}
	})
}

func FuzzParseCaseID(f *testing.F) {
	for _, s := range []string{"SR-2026-0007", "sr-2026-12345", "SR-2026-0000", "SR--", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCaseID(s)
		if err != nil {
			return
		}
		if c.IsZero() {
			t.Fatalf("%q parsed to the zero ID", s)
		}
		if back, err := ParseCaseID(c.String()); err != nil || back != c {
			t.Fatalf("%q → %v does not round-trip", s, c)
		}
	})
}
