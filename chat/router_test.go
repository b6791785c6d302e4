package chat

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// recorder is a platform that records which kinds it was handed.
type recorder struct {
	name disclosure.Platform
	got  *[]string
}

func (r recorder) Name() disclosure.Platform                              { return r.name }
func (r recorder) Self() disclosure.Person                                { return disclosure.PersonOn(r.name, "bot") }
func (r recorder) Vouching() Vouching                                     { return VouchesForAccount }
func (r recorder) JoinRoom(context.Context, string) error                 { return nil }
func (r recorder) LeaveRoom(context.Context, string, string) error        { return nil }
func (r recorder) JoinedMemberCount(context.Context, string) (int, error) { return 2, nil }
func (r recorder) ParsePerson(string) (disclosure.Person, bool)           { return "", false }
func (r recorder) RoomLink(string) string                                 { return "" }
func (r recorder) Executors() map[string]outbox.Executor {
	out := map[string]outbox.Executor{}
	for _, kind := range ChatKinds {
		out[kind] = func(context.Context, store.Effect) (any, error) {
			*r.got = append(*r.got, string(r.name)+" "+kind)
			return nil, nil
		}
	}
	return out
}

// Each chat effect is made by the platform of the room or person it
// names; a name from before platforms had names is Matrix's; a platform
// secbot is not on fails for good; a case room still to come is waited for.
func TestTheRouterHandsEachEffectToItsPlatform(t *testing.T) {
	var got []string
	rooms := map[disclosure.CaseID]string{{Year: 2026, Seq: 1}: "toy:case-1", {Year: 2026, Seq: 2}: ""}
	r := Router{Platforms: NewPlatforms(recorder{"matrix", &got}, recorder{"toy", &got}), CaseRoom: func(_ context.Context, id disclosure.CaseID) (string, error) {
		return rooms[id], nil
	}}
	ex := r.Executors()
	run := func(kind string, payload any) error {
		raw, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ex[kind](context.Background(), store.Effect{Kind: kind, Payload: raw})
		return err
	}
	for _, c := range []struct {
		kind    string
		payload any
		want    string
	}{
		{outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "toy:team"}}, "toy chat.send"},
		{outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "!old:x"}}, "matrix chat.send"},
		{outbox.KindSend, outbox.SendEffect{To: outbox.Target{CaseRoomOf: "SR-2026-0001"}}, "toy chat.send"},
		{outbox.KindSend, outbox.SendEffect{To: outbox.Target{DMWith: "matrix:@alice:x"}}, "matrix chat.send"},
		{outbox.KindInvite, outbox.InviteEffect{To: outbox.Target{Room: "toy:case-1"}, User: "toy:bob"}, "toy chat.invite"},
		{outbox.KindKick, outbox.KickEffect{To: outbox.Target{Room: "matrix:!case:x"}, User: "matrix:@m:x"}, "matrix chat.kick"},
		{outbox.KindOpenDM, outbox.OpenDMEffect{User: "toy:rita"}, "toy chat.open_dm"},
		{outbox.KindOpenDM, outbox.OpenDMEffect{User: "@old:x"}, "matrix chat.open_dm"},
		{outbox.KindReact, outbox.ReactEffect{Room: "toy:team", Event: "e", Key: "👍"}, "toy chat.react"},
		{outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: "SR-2026-0003", Platform: "toy"}, "toy chat.create_case_room"},
		{outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: "SR-2026-0003"}, "matrix chat.create_case_room"},
	} {
		got = nil
		if err := run(c.kind, c.payload); err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("%s %+v: made by %v (%v), want %s", c.kind, c.payload, got, err, c.want)
		}
	}
	got = nil
	if err := run(outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: "rocketchat:GENERAL"}}); !errors.Is(err, ErrPermanent) || len(got) != 0 {
		t.Errorf("a platform secbot is not on: %v, made by %v", err, got)
	}
	if err := run(outbox.KindSend, outbox.SendEffect{To: outbox.Target{CaseRoomOf: "SR-2026-0002"}}); !errors.Is(err, ErrNotReady) || len(got) != 0 {
		t.Errorf("a case room still to come: %v, made by %v", err, got)
	}
	if err := run(outbox.KindSend, outbox.SendEffect{}); !errors.Is(err, ErrPermanent) {
		t.Errorf("no room at all: %v", err)
	}
}

// People and rooms read with their platform; those of an older secbot
// (Matrix's, without one) too; email and GitHub people are no chat's.
func TestNamesCarryTheirPlatform(t *testing.T) {
	for _, c := range []struct {
		name     string
		platform disclosure.Platform
		native   string
	}{
		{"matrix:@alice:example.org", "matrix", "@alice:example.org"},
		{"rocketchat:alice", "rocketchat", "alice"},
		{"@alice:example.org", "matrix", "@alice:example.org"},
		{"!room:example.org", "matrix", "!room:example.org"},
		{"#news:example.org", "matrix", "#news:example.org"},
		{"mailto:a@example.org", "", "mailto:a@example.org"},
		{"github:octocat", "", "github:octocat"},
		{"", "", ""},
	} {
		if p, n := PlatformOf(c.name), Native(c.name); p != c.platform || n != c.native {
			t.Errorf("%q: %q %q, want %q %q", c.name, p, n, c.platform, c.native)
		}
	}
	if got := Qualified("@alice:x"); got != "matrix:@alice:x" {
		t.Errorf("Qualified: %q", got)
	}
	if got := disclosure.Person("rocketchat:alice").String(); got != "rocketchat:alice" {
		t.Errorf("a Rocket.Chat user shows as %q", got)
	}
	if got := disclosure.Person("matrix:@alice:x").String(); got != "@alice:x" {
		t.Errorf("a Matrix user shows as %q", got)
	}
}
