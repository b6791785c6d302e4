package store

import "testing"

// The outbox holds rows with these lanes: the strings must stay as they were.
func TestLanesKeepTheirStoredStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{CaseLane("SR-2026-0007"), "SR-2026-0007"},
		{GitHubLane("SR-2026-0007"), "github:SR-2026-0007"},
		{GitHubStatusLane, "github:status"},
		{TimersLane("SR-2026-0007"), "timers:SR-2026-0007"},
		{RoomLane("!abc:example.org"), "room:!abc:example.org"},
		{ReplyLane("SR-2026-0007"), "reply:SR-2026-0007"},
		{AnnounceLane("SR-2026-0007", "!news:example.org"), "announce:SR-2026-0007:!news:example.org"},
	} {
		if c.got != c.want {
			t.Errorf("lane %q, want %q", c.got, c.want)
		}
	}
}
