package disclosure

import "testing"

func TestVersionRangesBecomeGitHubsSyntax(t *testing.T) {
	for in, want := range map[string]string{
		"1.0 1.1":          ">= 1.0, <= 1.1",
		"<1.2":             "< 1.2",
		"< 1.2":            "< 1.2",
		"1.0-1.1":          ">= 1.0, <= 1.1",
		">= 1.0, < 1.2":    ">= 1.0, < 1.2",
		">=1.0,<1.2":       ">= 1.0, < 1.2",
		"1.4.2":            "= 1.4.2",
		"v2.0.1":           "= v2.0.1",
		"1.0.0-rc.1":       "= 1.0.0-rc.1",
		"<= 0.9.0-beta.2 ": "<= 0.9.0-beta.2",
	} {
		got, err := VersionRange(in)
		if err != nil || got != want {
			t.Errorf("VersionRange(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "all of them", "1.0 1.1 1.2", "< latest", "> 1, < 2, < 3", "=> 1.0", "1.0; DROP TABLE"} {
		if got, err := VersionRange(bad); err == nil {
			t.Errorf("VersionRange(%q) = %q, want a refusal", bad, got)
		}
	}
}
