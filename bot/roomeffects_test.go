package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
)

var opaqueAlias = regexp.MustCompile(`^secbot-[0-9a-f]{32}$`)

// initialState is a createRoom request's initial state by event type.
func initialState(t *testing.T, req map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	list, _ := req["initial_state"].([]any)
	for _, e := range list {
		evt := e.(map[string]any)
		if sk, _ := evt["state_key"].(string); sk != "" {
			t.Errorf("initial state %v has state key %q", evt["type"], sk)
		}
		out[evt["type"].(string)], _ = evt["content"].(map[string]any)
	}
	return out
}

func TestACaseRoomIsCreatedEncryptedInviteOnlyMarkedAndRecorded(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := effect(t, 1, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{
		CaseID: c.ID.String(), Name: "Security report " + c.ID.String(),
		Invite: []disclosure.Person{"matrix:@reporter:x", "matrix:@alice:x"}, Team: []disclosure.Person{"matrix:@alice:x"},
	})
	res, err := b.execCreateCaseRoom(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.created) != 1 {
		t.Fatalf("%d rooms created, want 1", len(h.created))
	}
	req := h.created[0]
	if req["preset"] != "private_chat" || req["visibility"] != "private" || req["name"] != "Security report "+c.ID.String() {
		t.Errorf("preset %v, visibility %v, name %v", req["preset"], req["visibility"], req["name"])
	}
	if fmt.Sprint(req["invite"]) != "[@reporter:x @alice:x]" {
		t.Errorf("invites %v", req["invite"])
	}
	for _, key := range []string{"topic", "is_direct"} {
		if v, ok := req[key]; ok {
			t.Errorf("the case room's request sets %s = %v: a case room has no topic", key, v)
		}
	}
	// Its alias, which lets a retry find it, says nothing and is gone
	// from the directory and the room's state once the room is recorded.
	alias, _ := req["room_alias_name"].(string)
	if !opaqueAlias.MatchString(alias) {
		t.Errorf("the case room's alias %q, want secbot- and 32 hex digits", alias)
	}
	state := initialState(t, req)
	want := map[string][2]string{
		"m.room.encryption":         {"algorithm", string(id.AlgorithmMegolmV1)},
		"m.room.join_rules":         {"join_rule", "invite"},
		"m.room.guest_access":       {"guest_access", "forbidden"},
		"m.room.history_visibility": {"history_visibility", "invited"},
		"org.secbot.case":           {"case_id", c.ID.String()},
	}
	for typ, kv := range want {
		if got := state[typ][kv[0]]; got != kv[1] {
			t.Errorf("initial %s: %s = %v, want %s", typ, kv[0], got, kv[1])
		}
	}
	if len(state) != len(want) {
		t.Errorf("initial state %v, want exactly %d events", state, len(want))
	}
	users := path(req, "power_level_content_override", "users")
	if path(users, string(botID)) != float64(100) || path(users, "@alice:x") != float64(50) || path(users, "@reporter:x") != nil {
		t.Errorf("power levels of users %v, want the bot 100, the team 50, the reporter default", users)
	}
	roomID := id.RoomID("!room1:x")
	if res != (CreateRoomResult{Room: "matrix:" + roomID.String()}) {
		t.Errorf("result %v, want %s", res, roomID)
	}
	got, err := st.Case(ctx, c.ID)
	if err != nil || got.CaseRoom != "matrix:"+roomID.String() {
		t.Errorf("the case's room is %q (%v), want %s", got.CaseRoom, err, roomID)
	}
	if fmt.Sprint(h.deletedAliases) != "[#"+alias+":x]" || len(h.aliases) != 0 {
		t.Errorf("aliases removed %v, left %v, want #%s:x removed", h.deletedAliases, h.aliases, alias)
	}
	if len(h.stateSends) != 1 || h.stateSends[0].Type != "m.room.canonical_alias" || h.stateSends[0].Room != roomID || len(h.stateSends[0].Body) != 0 {
		t.Errorf("state sent %+v, want the room's canonical alias emptied", h.stateSends)
	}
	// Run again (the outbox retries an effect whose result was not
	// recorded): the recorded room, no second room.
	e.Attempts = 2
	if res, err := b.execCreateCaseRoom(ctx, e); err != nil || res != (CreateRoomResult{Room: "matrix:" + roomID.String()}) || len(h.created) != 1 {
		t.Errorf("run again: %v, %v after %d rooms created, want %s and no new room", res, err, len(h.created), roomID)
	}
}

// A room made just before a crash (the homeserver made it, secbot never
// heard back) that a busy homeserver does not list among the bot's rooms
// yet is found by its alias and adopted: the retry makes no second room.
func TestACaseRoomMadeBeforeACrashIsAdoptedBeforeItIsListed(t *testing.T) {
	for _, tc := range []struct {
		name string
		lag  int // alias lookups that miss it
	}{
		{"found by its alias", 0},
		// The lookup came before the homeserver set the alias: creating
		// the room again is refused (M_ROOM_IN_USE), and the room adopted.
		{"the second creation refused", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, h, st := newMockBot(t)
			ctx := context.Background()
			c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			payload := outbox.CreateCaseRoomEffect{
				CaseID: c.ID.String(), Name: "Security report " + c.ID.String(),
				Invite: []disclosure.Person{"matrix:@reporter:x", "matrix:@alice:x"}, Team: []disclosure.Person{"matrix:@alice:x"},
			}
			h.loseCreates = 1
			if _, err := b.execCreateCaseRoom(ctx, effect(t, 5, 1, outbox.KindCreateCaseRoom, payload)); err == nil || errors.Is(err, ErrPermanent) {
				t.Fatalf("the attempt cut off: %v, want an error to retry", err)
			}
			const made = id.RoomID("!room1:x")
			h.mu.Lock()
			h.unlisted[made] = true
			h.aliasLag = tc.lag
			h.mu.Unlock()
			res, err := b.execCreateCaseRoom(ctx, effect(t, 5, 2, outbox.KindCreateCaseRoom, payload))
			if err != nil {
				t.Fatal(err)
			}
			if len(h.created) != 1 || res != (CreateRoomResult{Room: "matrix:" + made.String()}) {
				t.Fatalf("the retry: %v after %d rooms created, want the first one, %s, and no second room", res, len(h.created), made)
			}
			if got, _ := st.Case(ctx, c.ID); got.CaseRoom != "matrix:"+made.String() {
				t.Errorf("the case's room %q, want %s", got.CaseRoom, made)
			}
			if len(h.invites) != 0 {
				t.Errorf("invited again %+v, want nobody: creation invited them", h.invites)
			}
			if len(h.aliases) != 0 || len(h.stateSends) != 1 || h.stateSends[0].Type != "m.room.canonical_alias" {
				t.Errorf("aliases left %v, state sent %+v, want the alias removed and emptied in the room's state", h.aliases, h.stateSends)
			}
		})
	}
}

// The alias is the outbox row's under the installation's secret: the same
// for every attempt of the row, another for another row or installation,
// and it names neither the case nor the reporter.
func TestACaseRoomsAliasIsTheRowsAndRevealsNothing(t *testing.T) {
	b, _, _ := newMockBot(t)
	ctx := context.Background()
	first, alias, err := b.caseRoomAlias(ctx, 7, "SR-2026-0001")
	if err != nil {
		t.Fatal(err)
	}
	if !opaqueAlias.MatchString(first) || alias != id.RoomAlias("#"+first+":x") {
		t.Errorf("alias %q (%s), want secbot- and 32 hex digits on the bot's server", first, alias)
	}
	again, _, _ := b.caseRoomAlias(ctx, 7, "SR-2026-0001")
	otherRow, _, _ := b.caseRoomAlias(ctx, 8, "SR-2026-0001")
	otherCase, _, _ := b.caseRoomAlias(ctx, 7, "SR-2026-0002")
	other, _, _ := newMockBot(t)
	otherInstallation, _, err := other.caseRoomAlias(ctx, 7, "SR-2026-0001")
	if err != nil {
		t.Fatal(err)
	}
	if again != first || otherRow == first || otherCase == first || otherInstallation == first {
		t.Errorf("aliases %s, again %s, another row %s, another case %s, another installation %s", first, again, otherRow, otherCase, otherInstallation)
	}
	if strings.Contains(first, "2026") || strings.Contains(first, "0001") {
		t.Errorf("alias %s shows the case ID", first)
	}
}

// A room at the alias that the bot did not make for the case (nobody
// without the secret can name it, but a homeserver admin can point it
// anywhere) is neither adopted nor a reason to make a second room.
func TestARoomAtACaseRoomsAliasThatIsNotTheBotsIsNotAdopted(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, alias, err := b.caseRoomAlias(ctx, 3, c.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.aliases[alias] = "!trap:x"
	h.setState("!trap:x", "m.room.create", "", "@mallory:x", map[string]any{})
	h.setState("!trap:x", "org.secbot.case", "", "@mallory:x", map[string]any{"case_id": c.ID.String()})
	h.mu.Unlock()
	payload := outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"matrix:@reporter:x"}}
	for attempt := 1; attempt <= 2; attempt++ {
		if _, err := b.execCreateCaseRoom(ctx, effect(t, 3, attempt, outbox.KindCreateCaseRoom, payload)); err == nil || errors.Is(err, ErrPermanent) {
			t.Errorf("attempt %d: %v, want an error to retry", attempt, err)
		}
	}
	if len(h.created) != 0 || len(h.invites) != 0 {
		t.Errorf("%d rooms created, invites %+v, want none", len(h.created), h.invites)
	}
	if got, _ := st.Case(ctx, c.ID); got.CaseRoom != "" {
		t.Errorf("the case's room %q, want none", got.CaseRoom)
	}
}

// A homeserver whose rules let the bot make no alias still gets its case
// rooms, made without one.
func TestACaseRoomIsMadeWithoutAnAliasWhereNoneIsAllowed(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	h.noAliases = true
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.execCreateCaseRoom(ctx, effect(t, 1, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"matrix:@reporter:x"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.created) != 1 || h.created[0]["room_alias_name"] != nil || res != (CreateRoomResult{Room: "matrix:!room1:x"}) {
		t.Errorf("%v, %d rooms created (%v), want !room1:x made without an alias", res, len(h.created), h.created)
	}
	if len(h.stateSends) != 0 {
		t.Errorf("state sent %+v, want none", h.stateSends)
	}
}

func TestACaseRoomForAnUnknownCaseOrRefusedIsPermanent(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	if _, err := b.execCreateCaseRoom(ctx, effect(t, 1, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: "not a case"})); !errors.Is(err, ErrPermanent) {
		t.Errorf("a malformed case ID: %v, want permanent", err)
	}
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.fail["create"] = failure{http.StatusBadRequest, "M_INVALID_PARAM", "bad invite"}
	if _, err := b.execCreateCaseRoom(ctx, effect(t, 2, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String(), Invite: []disclosure.Person{"bad"}})); !errors.Is(err, ErrPermanent) {
		t.Errorf("a refused createRoom: %v, want permanent", err)
	}
	h.fail["create"] = failure{http.StatusBadGateway, "M_UNKNOWN", "upstream"}
	if _, err := b.execCreateCaseRoom(ctx, effect(t, 3, 1, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: c.ID.String()})); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("a createRoom that met a 502: %v, want an error to retry", err)
	}
	if got, _ := st.Case(ctx, c.ID); got.CaseRoom != "" {
		t.Errorf("a case room %q recorded although none was made", got.CaseRoom)
	}
}

func TestADirectChatIsOpenedRecordedAndReused(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "email", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := effect(t, 1, 1, outbox.KindOpenDM, outbox.OpenDMEffect{User: "matrix:@reporter:x", CaseID: c.ID.String()})
	res, err := b.execOpenDM(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.created) != 1 {
		t.Fatalf("%d rooms created, want 1", len(h.created))
	}
	req := h.created[0]
	if req["is_direct"] != true || req["preset"] != "trusted_private_chat" || fmt.Sprint(req["invite"]) != "[@reporter:x]" {
		t.Errorf("direct chat request %v", req)
	}
	if state := initialState(t, req); state["m.room.encryption"]["algorithm"] != string(id.AlgorithmMegolmV1) || state["m.room.history_visibility"]["history_visibility"] != "invited" {
		t.Errorf("direct chat initial state %v, want encrypted, history from the invite", state)
	}
	dm := id.RoomID("!room1:x")
	if res != (CreateRoomResult{Room: "matrix:" + dm.String()}) {
		t.Errorf("result %v, want %s", res, dm)
	}
	var direct map[id.UserID][]id.RoomID
	if err := json.Unmarshal(h.AccountData[botID][event.AccountDataDirectChats], &direct); err != nil || fmt.Sprint(direct["@reporter:x"]) != "["+dm.String()+"]" {
		t.Errorf("m.direct %v (%v), want the new room for @reporter:x", direct, err)
	}
	if got, err := st.DMRoom(ctx, "matrix:@reporter:x"); err != nil || got != "matrix:"+dm.String() {
		t.Errorf("stored direct chat %q (%v), want %s", got, err, dm)
	}
	if got, err := st.Case(ctx, c.ID); err != nil || got.DMRoom != "matrix:"+dm.String() {
		t.Errorf("the case's direct chat %q (%v), want %s", got.DMRoom, err, dm)
	}
	// The reporter is still there: the same chat, no new room.
	if res, err := b.execOpenDM(ctx, effect(t, 2, 1, outbox.KindOpenDM, outbox.OpenDMEffect{User: "@reporter:x"})); err != nil || res != (CreateRoomResult{Room: "matrix:" + dm.String()}) || len(h.created) != 1 {
		t.Errorf("again: %v, %v, %d rooms, want %s and no new room", res, err, len(h.created), dm)
	}
	// The reporter left it: a new chat, which replaces the old one.
	h.mu.Lock()
	h.members[dm]["@reporter:x"] = event.MembershipLeave
	h.mu.Unlock()
	res, err = b.execOpenDM(ctx, effect(t, 3, 1, outbox.KindOpenDM, outbox.OpenDMEffect{User: "@reporter:x"}))
	if err != nil || res != (CreateRoomResult{Room: "matrix:!room2:x"}) || len(h.created) != 2 {
		t.Errorf("after the reporter left: %v, %v, %d rooms, want a new room !room2:x", res, err, len(h.created))
	}
	if got, _ := st.DMRoom(ctx, "matrix:@reporter:x"); got != "matrix:!room2:x" {
		t.Errorf("stored direct chat %q, want !room2:x", got)
	}
}

// An m.direct chat the bot is still in with the user is adopted (a crash
// after creating it, before recording it): no second chat.
func TestADirectChatInMDirectIsFoundAgain(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	h.joined = []id.RoomID{"!gone:x", "!old:x"}
	h.members["!old:x"] = map[id.UserID]event.Membership{botID: event.MembershipJoin, "@reporter:x": event.MembershipJoin}
	h.members["!left:x"] = map[id.UserID]event.Membership{botID: event.MembershipJoin, "@reporter:x": event.MembershipLeave}
	h.joined = append(h.joined, "!left:x")
	// The bot left this one (the reporter is still in it): not joined, not a chat.
	h.members["!notjoined:x"] = map[id.UserID]event.Membership{"@reporter:x": event.MembershipJoin}
	h.AccountData[botID] = map[event.Type]json.RawMessage{event.AccountDataDirectChats: json.RawMessage(`{"@reporter:x":["!old:x","!left:x","!notjoined:x"]}`)}
	res, err := b.execOpenDM(ctx, effect(t, 1, 2, outbox.KindOpenDM, outbox.OpenDMEffect{User: "@reporter:x"}))
	if err != nil || res != (CreateRoomResult{Room: "matrix:!old:x"}) || len(h.created) != 0 {
		t.Errorf("%v, %v, %d rooms created, want !old:x and none created", res, err, len(h.created))
	}
	if got, _ := st.DMRoom(ctx, "matrix:@reporter:x"); got != "matrix:!old:x" {
		t.Errorf("stored direct chat %q, want !old:x", got)
	}
}

func TestInvitesGoToTheirRoomAndAreClassified(t *testing.T) {
	b, h, st := newMockBot(t)
	ctx := context.Background()
	invite := func(n int64, to outbox.Target) error {
		_, err := b.execInvite(ctx, effect(t, n, 1, outbox.KindInvite, outbox.InviteEffect{To: to, User: "@bob:x"}))
		return err
	}
	if err := invite(1, outbox.Target{Room: "!r:x"}); err != nil {
		t.Fatal(err)
	}
	if len(h.invites) != 1 || h.invites[0] != (roomUser{Room: "!r:x", User: "@bob:x"}) {
		t.Errorf("invites %+v, want @bob:x to !r:x", h.invites)
	}
	c, err := st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := invite(2, outbox.Target{CaseRoomOf: c.ID.String()}); !errors.Is(err, ErrNotReady) {
		t.Errorf("to a case room still to come: %v, want not ready", err)
	}
	if err := invite(3, outbox.Target{DMWith: "@nobody:x"}); !errors.Is(err, ErrNotReady) {
		t.Errorf("to a direct chat still to come: %v, want not ready", err)
	}
	if err := st.SetCaseRoom(ctx, c.ID, "matrix:!case:x", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := invite(4, outbox.Target{CaseRoomOf: c.ID.String()}); err != nil || h.invites[len(h.invites)-1].Room != "!case:x" {
		t.Errorf("to the case room: %v, invites %+v", err, h.invites)
	}
	if err := invite(5, outbox.Target{}); !errors.Is(err, ErrPermanent) {
		t.Errorf("to no room: %v, want permanent", err)
	}
	h.fail["invite"] = failure{http.StatusForbidden, "M_FORBIDDEN", "user is already joined to room"}
	if err := invite(6, outbox.Target{Room: "!r:x"}); err != nil {
		t.Errorf("someone already in the room: %v, want done", err)
	}
	h.fail["invite"] = failure{http.StatusForbidden, "M_FORBIDDEN", "you may not invite"}
	if err := invite(7, outbox.Target{Room: "!r:x"}); !errors.Is(err, ErrPermanent) {
		t.Errorf("a refused invite: %v, want permanent", err)
	}
	h.fail["invite"] = failure{http.StatusServiceUnavailable, "M_UNKNOWN", "busy"}
	if err := invite(8, outbox.Target{Room: "!r:x"}); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("an invite that met a 503: %v, want an error to retry", err)
	}
}

func TestKicksCarryTheirReasonAndSomeoneGoneIsDone(t *testing.T) {
	b, h, _ := newMockBot(t)
	ctx := context.Background()
	kick := func(n int64) error {
		_, err := b.execKick(ctx, effect(t, n, 1, outbox.KindKick, outbox.KickEffect{To: outbox.Target{Room: "!case:x"}, User: "@mallory:x", Reason: "removed from the case"}))
		return err
	}
	if err := kick(1); err != nil {
		t.Fatal(err)
	}
	if len(h.kicks) != 1 || h.kicks[0] != (roomUser{Room: "!case:x", User: "@mallory:x", Reason: "removed from the case"}) {
		t.Errorf("kicks %+v", h.kicks)
	}
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		h.fail["kick"] = failure{status, "M_FORBIDDEN", "not in room"}
		if err := kick(2); err != nil {
			t.Errorf("a kick met by %d (not in the room): %v, want done", status, err)
		}
	}
	h.fail["kick"] = failure{http.StatusBadRequest, "M_BAD_JSON", "bad"}
	if err := kick(3); !errors.Is(err, ErrPermanent) {
		t.Errorf("a kick met by 400: %v, want permanent", err)
	}
	h.fail["kick"] = failure{http.StatusInternalServerError, "M_UNKNOWN", "oops"}
	if err := kick(4); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("a kick met by 500: %v, want an error to retry", err)
	}
}

func TestClientErrorsArePermanentAndTheRestRetried(t *testing.T) {
	httpErr := func(status int) error {
		return fmt.Errorf("wrapped: %w", mautrix.HTTPError{Response: &http.Response{StatusCode: status}, RespError: &mautrix.RespError{ErrCode: "M_X"}})
	}
	for status, permanent := range map[int]bool{400: true, 401: true, 403: true, 404: true, 413: true, 408: false, 429: false, 500: false, 502: false, 504: false} {
		err := classify(httpErr(status))
		if err == nil || errors.Is(err, ErrPermanent) != permanent {
			t.Errorf("%d: %v, want permanent %v", status, err, permanent)
		}
	}
	if err := classify(errors.New("connection refused")); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("a network error: %v, want an error to retry", err)
	}
	if err := classify(nil); err != nil {
		t.Errorf("no error: %v", err)
	}
}
