package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// A post for a case room that the room refused as unusable goes to the
// reporter's direct chat, once, when the reporter reads that room; for a
// reporter who does not (on another chat, or by email: the room was the
// team's alone, and they got their copy when it was decided) it fails as
// before, and nothing of it reaches them.
func TestAPostTheCaseRoomRefusedAsUnusableReachesOnlyItsReporter(t *testing.T) {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	w := newWorld(t, start)
	ctx := context.Background()
	refused := func(context.Context, store.Effect) (any, error) {
		return nil, fmt.Errorf("%w: the group is encrypted", chat.ErrRoomUnusable)
	}
	exec := w.h.RerouteUnusable(refused)
	// post queues a post for the case room of a new case of reporter and
	// returns it as the outbox hands it over.
	post := func(reporter disclosure.Person, room string) (disclosure.CaseID, store.Effect) {
		t.Helper()
		c, err := w.store.CreateCase(ctx, reporter, "", "", start)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.store.SetCaseRoom(ctx, c.ID, room, start); err != nil {
			t.Fatal(err)
		}
		id, err := outbox.Enqueue(ctx, w.store, store.CaseLane(c.ID), outbox.KindSend,
			outbox.SendEffect{To: outbox.Target{CaseRoomOf: c.ID.String()}, Markdown: "Welcome to " + c.ID.String(), ReplyTo: "$x"}, start)
		if err != nil {
			t.Fatal(err)
		}
		due, err := w.store.DueEffects(ctx, start.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range due {
			if e.ID == id {
				return c.ID, e
			}
		}
		t.Fatalf("effect %d is not due", id)
		return c.ID, store.Effect{}
	}
	// copies are the posts to who's direct chat (notices apart: see told).
	copies := func(who disclosure.Person) []outbox.SendEffect {
		t.Helper()
		sends, states, err := w.store.EffectsOfKind(ctx, outbox.KindSend)
		if err != nil {
			t.Fatal(err)
		}
		var out []outbox.SendEffect
		for i, e := range sends {
			var s outbox.SendEffect
			if states[i] == "pending" && e.Decode(&s) == nil && s.To.DMWith == who && !strings.Contains(s.Markdown, "cannot be used") {
				out = append(out, s)
			}
		}
		return out
	}

	// A Matrix reporter of a Matrix case room: theirs to read.
	caseID, e := post(reporter, caseRoom)
	_, err := exec(ctx, e)
	if !errors.As(err, new(*outbox.RefusedError)) {
		t.Fatalf("the refused post for the reporter's room: %v", err)
	}
	got := copies(reporter)
	if len(got) != 1 || !strings.HasSuffix(got[0].Markdown, "\n\nWelcome to "+caseID.String()) || !strings.Contains(got[0].Markdown, "This was for the private room of "+caseID.String()) || got[0].ReplyTo != "" {
		t.Fatalf("the reporter's copy: %+v", got)
	}
	// Tried again (a crash before the outbox heard): no second copy.
	if _, err := exec(ctx, e); err == nil {
		t.Error("the post tried again made no error")
	}
	if got := copies(reporter); len(got) != 1 {
		t.Errorf("the reporter got %d copies", len(got))
	}
	// The room refused the post as unusable: the case goes on without it,
	// told once to the team room and to the reporter.
	sends, states, err := w.store.EffectsOfKind(ctx, outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	told := map[string]int{}
	for i, e := range sends {
		var s outbox.SendEffect
		if states[i] == "pending" && e.Decode(&s) == nil && strings.Contains(s.Markdown, "cannot be used") {
			told[s.To.Room+string(s.To.DMWith)]++
		}
	}
	if told[teamRoom] != 1 || told[string(reporter)] != 1 {
		t.Errorf("told that the room cannot be used: %v", told)
	}

	// A Rocket.Chat reporter of a Matrix case room, and an email reporter:
	// the room was the team's alone.
	for i, other := range []disclosure.Person{"rocketchat:rita", disclosure.EmailPerson("rita@example.org")} {
		_, e := post(other, fmt.Sprintf("matrix:!case%d:x", i))
		if _, err := exec(ctx, e); !errors.Is(err, chat.ErrRoomUnusable) {
			t.Errorf("the refused post for %s's case room, the team's alone: %v", other, err)
		}
		if got := copies(other); len(got) != 0 {
			t.Errorf("%s got the team room's post: %+v", other, got)
		}
	}
}
