package store

import (
	"testing"

	"github.com/enarx/secbot/disclosure"
)

// The outbox holds rows with these lanes: the strings must stay as they
// are (v21 gave the rooms of pending rows their platform).
func TestLanesKeepTheirStoredStrings(t *testing.T) {
	id := disclosure.CaseID{Year: 2026, Seq: 7}
	for _, c := range []struct{ got, want string }{
		{CaseLane(id), "SR-2026-0007"},
		{GitHubLane(id), "github:SR-2026-0007"},
		{GitHubStatusLane, "github:status"},
		{GitHubPollLane(id), "github-poll:SR-2026-0007"},
		{TimersLane(id), "timers:SR-2026-0007"},
		{RoomLane("matrix:!abc:example.org"), "room:matrix:!abc:example.org"},
		{ReplyLane(id), "reply:SR-2026-0007"},
		{AnnounceLane(id, "matrix:!news:example.org"), "announce:SR-2026-0007:matrix:!news:example.org"},
	} {
		if c.got != c.want {
			t.Errorf("lane %q, want %q", c.got, c.want)
		}
	}
}
