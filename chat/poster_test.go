package chat

import (
	"context"
	"errors"
	"testing"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// posting is a platform that posts messages of many parts.
type posting struct {
	recorder
	files bool
}

func (posting) Ready(context.Context, outbox.Target) error { return nil }
func (p posting) Post(context.Context, store.Effect, outbox.Target, []Part) error {
	*p.got = append(*p.got, string(p.name)+" post")
	return nil
}
func (p posting) PostsFiles() bool { return p.files }

// A post (an email into its case room) is made by the platform of the
// case's room, whichever it is; a case room still to come is waited for;
// a platform that cannot post such messages, or one secbot is not on,
// fails for good.
func TestAPostGoesToThePlatformOfTheCaseRoom(t *testing.T) {
	var got []string
	rooms := map[disclosure.CaseID]string{
		{Year: 2026, Seq: 1}: "toy:case-1", {Year: 2026, Seq: 2}: "matrix:!case:x", {Year: 2026, Seq: 3}: "",
		{Year: 2026, Seq: 4}: "plain:case-4", {Year: 2026, Seq: 5}: "rocketchat:case-5",
	}
	r := Router{Platforms: NewPlatforms(posting{recorder{"matrix", &got}, true}, posting{recorder{"toy", &got}, false}, recorder{"plain", &got}),
		CaseRoom: func(_ context.Context, id disclosure.CaseID) (string, error) { return rooms[id], nil }}
	for caseID, want := range map[string]string{"SR-2026-0001": "toy", "SR-2026-0002": "matrix"} {
		got = nil
		to := outbox.Target{CaseRoomOf: caseID}
		p, err := r.Poster(context.Background(), to)
		if err != nil {
			t.Fatalf("%s: %v", caseID, err)
		}
		if err := p.Post(context.Background(), store.Effect{}, to, nil); err != nil || len(got) != 1 || got[0] != want+" post" {
			t.Errorf("%s: posted by %v (%v), want %s", caseID, got, err, want)
		}
		if p.PostsFiles() != (want == "matrix") {
			t.Errorf("%s: PostsFiles is %v", caseID, p.PostsFiles())
		}
	}
	if _, err := r.Poster(context.Background(), outbox.Target{CaseRoomOf: "SR-2026-0003"}); !errors.Is(err, ErrNotReady) {
		t.Errorf("a case room still to come: %v", err)
	}
	for _, caseID := range []string{"SR-2026-0004", "SR-2026-0005"} {
		if _, err := r.Poster(context.Background(), outbox.Target{CaseRoomOf: caseID}); !errors.Is(err, ErrPermanent) {
			t.Errorf("%s: %v", caseID, err)
		}
	}
}
