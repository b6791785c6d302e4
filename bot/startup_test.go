package bot

import (
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// A first start that syncs from scratch again (the first was cut short)
// handles what followed the bot's own join, and nothing from before it.
func TestAFirstSyncHandlesWhatFollowsTheBotsJoin(t *testing.T) {
	const self = id.UserID("@bot:x")
	parse := func(raw string) *event.Event {
		var evt event.Event
		if err := json.Unmarshal([]byte(raw), &evt); err != nil {
			t.Fatal(err)
		}
		return &evt
	}
	before := parse(`{"type":"m.room.message","event_id":"$before","sender":"@alice:x","content":{"body":"old"}}`)
	invite := parse(`{"type":"m.room.member","event_id":"$invite","sender":"@alice:x","state_key":"@bot:x","content":{"membership":"invite"}}`)
	join := parse(`{"type":"m.room.member","event_id":"$join","sender":"@bot:x","state_key":"@bot:x","content":{"membership":"join"},"unsigned":{"prev_content":{"membership":"invite"}}}`)
	rename := parse(`{"type":"m.room.member","event_id":"$rename","sender":"@bot:x","state_key":"@bot:x","content":{"membership":"join","displayname":"secbot"},"unsigned":{"prev_content":{"membership":"join"}}}`)
	after := parse(`{"type":"m.room.message","event_id":"$after","sender":"@alice:x","content":{"body":"!sec help"}}`)
	other := parse(`{"type":"m.room.member","event_id":"$other","sender":"@bob:x","state_key":"@bob:x","content":{"membership":"join"}}`)

	history, rest := splitAtOwnJoin([]*event.Event{before, invite, join, rename, after}, self)
	if len(history) != 2 || len(rest) != 3 || rest[0].ID != "$join" || rest[2].ID != "$after" {
		t.Errorf("split at the join: got %v and %v, want [$before $invite] and [$join $rename $after]", ids(history), ids(rest))
	}
	// Joined before the first start: all of it is history.
	if history, rest := splitAtOwnJoin([]*event.Event{before, other, rename, after}, self); len(history) != 4 || len(rest) != 0 {
		t.Errorf("without the bot's join: got %v and %v, want all history", ids(history), ids(rest))
	}
}
func ids(events []*event.Event) []id.EventID {
	out := make([]id.EventID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}
