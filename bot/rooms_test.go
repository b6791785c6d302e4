package bot

import (
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

const self id.UserID = "@secbot:x"

func stateEvent(t event.Type, sender id.UserID, content any) *event.Event {
	return &event.Event{Type: t, Sender: sender, Content: event.Content{Parsed: content}}
}

// caseRoomState is the state of a room as createCaseRoom makes it, with
// edit applied.
func caseRoomState(edit func(mautrix.RoomStateMap)) mautrix.RoomStateMap {
	s := mautrix.RoomStateMap{
		event.StateCreate:     {"": stateEvent(event.StateCreate, self, &event.CreateEventContent{})},
		CaseStateType:         {"": stateEvent(CaseStateType, self, &CaseState{CaseID: "SR-2026-0003"})},
		event.StateEncryption: {"": stateEvent(event.StateEncryption, self, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1})},
		event.StateJoinRules:  {"": stateEvent(event.StateJoinRules, self, &event.JoinRulesEventContent{JoinRule: event.JoinRuleInvite})},
	}
	if edit != nil {
		edit(s)
	}
	return s
}

func TestOnlyARoomTheBotMadeIsAdoptedAsACaseRoom(t *testing.T) {
	const mallory id.UserID = "@mallory:x"
	for _, tc := range []struct {
		name string
		edit func(mautrix.RoomStateMap)
		ok   bool
	}{
		{"the bot's own room", nil, true},
		{"created by an outsider", func(s mautrix.RoomStateMap) { s[event.StateCreate][""].Sender = mallory }, false},
		{"marked by an outsider in the bot's room", func(s mautrix.RoomStateMap) { s[CaseStateType][""].Sender = mallory }, false},
		{"marked for another case", func(s mautrix.RoomStateMap) {
			s[CaseStateType][""].Content.Parsed = &CaseState{CaseID: "SR-2026-0004"}
		}, false},
		{"not encrypted", func(s mautrix.RoomStateMap) { delete(s, event.StateEncryption) }, false},
		{"public", func(s mautrix.RoomStateMap) {
			s[event.StateJoinRules][""].Content.Parsed = &event.JoinRulesEventContent{JoinRule: event.JoinRulePublic}
		}, false},
		{"no create event seen", func(s mautrix.RoomStateMap) { delete(s, event.StateCreate) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok, why := adoptable(caseRoomState(tc.edit), self, "SR-2026-0003"); ok != tc.ok {
				t.Errorf("adoptable = %v (%s), want %v", ok, why, tc.ok)
			}
		})
	}
}

func TestInCaseRoomsOnlyTheBotIsAdminAndTheTeamMayInvite(t *testing.T) {
	pl := caseRoomPowerLevels(self, []id.UserID{"@alice:x", "@bob:x", self})
	if pl.GetUserLevel(self) != 100 || pl.GetUserLevel("@alice:x") != 50 || pl.GetUserLevel("@reporter:x") != 0 {
		t.Errorf("levels: %+v", pl.Users)
	}
	if pl.Invite() != 50 || pl.Kick() != 100 || pl.StateDefault() != 100 {
		t.Errorf("invite %d, kick %d, state %d", pl.Invite(), pl.Kick(), pl.StateDefault())
	}
	// The reporter may not invite anyone; a team member may.
	if pl.GetUserLevel("@reporter:x") >= pl.Invite() || pl.GetUserLevel("@alice:x") < pl.Invite() {
		t.Error("the wrong people may invite")
	}
}
