package disclosure

import (
	"errors"
	"strings"
	"testing"
)

func TestTheDeviceAMemberMayCommandFrom(t *testing.T) {
	signed := Identity{Current: "KEY1", DeviceSigned: true}
	for _, tc := range []struct {
		name       string
		identities map[Person]string
		pinned     string
		id         Identity
		want       DeviceTrust
	}{
		{"signed by the pinned identity", nil, "KEY1", signed, DeviceVerified},
		{"not signed", nil, "KEY1", Identity{Current: "KEY1"}, DeviceUnverified},
		{"no cross-signing at all", nil, "", Identity{}, DeviceUnverified},
		{"never pinned", nil, "", signed, DeviceUnverified},
		{"a new identity signed its own device", nil, "KEY0", signed, IdentityChanged},
		{"sent in the clear", nil, "KEY1", Identity{Current: "KEY1", Unencrypted: true}, SentInTheClear},
		{"strict: the configured identity", map[Person]string{"@bob:x": "KEY1"}, "", signed, DeviceVerified},
		{"strict: a pin of another key counts for nothing", map[Person]string{"@bob:x": "KEY0"}, "KEY1", signed, IdentityChanged},
		{"the pinned account", nil, "ID1", Identity{Current: "ID1", DeviceSigned: true, Account: true}, DeviceVerified},
		{"another account under the username", nil, "ID0", Identity{Current: "ID1", DeviceSigned: true, Account: true}, AccountChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			p.Identities = tc.identities
			if got := p.TrustOf("@bob:x", tc.pinned, tc.id); got != tc.want {
				t.Errorf("trust %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFirstSightPinsOnlyOutsideStrictMode(t *testing.T) {
	p := testPolicy()
	id := Identity{Current: "KEY1"}
	if !p.FirstSight("@bob:x", "", id) {
		t.Error("a member's first identity is not pinned")
	}
	if p.FirstSight("@bob:x", "KEY0", id) || p.FirstSight("@mallory:x", "", id) || p.FirstSight("@bob:x", "", Identity{}) {
		t.Error("pinned over an existing pin, an outsider, or nothing")
	}
	p.Identities = map[Person]string{"@alice:x": "KEYA"}
	if p.FirstSight("@bob:x", "", id) {
		t.Error("strict mode pinned a member the config names no identity for")
	}
}

func TestTheTeamIsToldOncePerChangedIdentity(t *testing.T) {
	p := testPolicy()
	if !p.IdentityNews("@bob:x", "KEY0", "", Identity{Current: "KEY1"}) {
		t.Error("a changed identity is not news")
	}
	if p.IdentityNews("@bob:x", "KEY0", "KEY1", Identity{Current: "KEY1"}) {
		t.Error("told twice about the same key")
	}
	if p.IdentityNews("@bob:x", "KEY1", "", Identity{Current: "KEY1"}) || p.IdentityNews("@reporter:x", "KEY0", "", Identity{Current: "KEY1"}) {
		t.Error("news of an unchanged identity, or of a reporter's")
	}
}

func TestTeamCommandsNeedAVerifiedDevice(t *testing.T) {
	p := testPolicy()
	for _, trust := range []DeviceTrust{DeviceUnverified, IdentityChanged, SentInTheClear, AccountChanged} {
		_, err := p.TeamCommand("list", AllCases, "@bob:x", trust, Place{Kind: TeamRoom}, CaseID{})
		var r *Refusal
		if !errors.As(err, &r) || !strings.Contains(r.Reason, "cannot tell") {
			t.Errorf("trust %v: %v", trust, err)
		}
	}
	c := &Case{ID: one, Stage: StageReceived, Deadlines: []Deadline{{Kind: DeadlineAcknowledge, DueAt: now.Add(48 * 3600e9)}}}
	r := req("@bob:x", Place{Kind: CaseRoom, Case: one})
	r.Device = DeviceUnverified
	if d := c.TeamSpoke(r); d.Changes() {
		t.Errorf("a message from an unverified device met a deadline: %+v", d.Deadlines)
	}
}

func TestOnlyTheCoordinatorRepinsAChangedIdentity(t *testing.T) {
	changed := Identity{Current: "KEY1", DeviceSigned: true}
	if _, err := testPolicy().Trust(req("@bob:x", Place{Kind: TeamRoom}), "@bob:x", "KEY0", changed, ""); err == nil {
		t.Error("a member re-pinned their own identity")
	}
	if _, err := testPolicy().Trust(req("@alice:x", Place{Kind: TeamRoom}), "@mallory:x", "", changed, ""); err == nil {
		t.Error("an outsider's identity was pinned")
	}
	if _, err := testPolicy().Trust(req("@alice:x", Place{Kind: TeamRoom}), "@bob:x", "KEY1", changed, ""); err == nil {
		t.Error("re-pinned an unchanged identity")
	}
	strict := testPolicy()
	strict.Identities = map[Person]string{"@bob:x": "KEY0"}
	if _, err := strict.Trust(Request{By: "@alice:x", Policy: strict}, "@bob:x", "KEY0", changed, ""); err == nil {
		t.Error("re-pinned over the config")
	}
	if _, err := testPolicy().Trust(req("@alice:x", Place{Kind: TeamRoom}), "@bob:x", "KEY0", changed, "KEY9"); err == nil {
		t.Error("pinned a key other than the one the coordinator checked")
	}
	d, err := testPolicy().Trust(req("@alice:x", Place{Kind: TeamRoom}), "@bob:x", "KEY0", changed, "KEY1")
	if err != nil || d.Action != "trust" {
		t.Errorf("the coordinator's re-pin: %+v, %v", d, err)
	}
}
