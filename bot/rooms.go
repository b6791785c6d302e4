package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/store"
)

// CaseStateType is the state event that marks a room as a case's private
// room, so the room is found again if secbot crashed while creating it.
var CaseStateType = event.Type{Type: "org.secbot.case", Class: event.StateEventType}

// CaseState is the content of CaseStateType.
type CaseState struct {
	CaseID string `json:"case_id"`
}

func init() {
	event.TypeMap[CaseStateType] = reflect.TypeOf(CaseState{})
}

// JoinRoom joins a room the bot was invited to. In an encrypted direct
// chat it then shares its room key with the other side in the background,
// so that its first answer there is encrypted and sent at once.
func (b *Bot) JoinRoom(ctx context.Context, roomID id.RoomID) error {
	if _, err := b.Client.JoinRoomByID(ctx, roomID); err != nil {
		return err
	}
	crashpoint.Hit("bot.room_joined")
	// The room's members reach the state store only with the next sync:
	// ask now, so that whoever counts them (a "direct" chat with a third
	// member is left at once) counts them all.
	if _, err := b.Client.Members(ctx, roomID); err != nil {
		return fmt.Errorf("members of %s: %w", roomID, err)
	}
	if b.crypto != nil {
		go b.shareRoomKeyEarly(ctx, roomID)
	}
	return nil
}

// shareRoomKeyEarly shares the bot's megolm session of a direct chat it
// just joined with the other member's devices. Otherwise the first answer
// there waits for it: the reporter's device keys (and, with them known at
// once, their message is decrypted without fetching them in the sync loop
// too), an Olm message to each device and a to-device request, on the
// busiest path a reporter waits on. The session is the one the first
// answer uses (mautrix drops it when the membership or the reporter's
// devices change, and shares a new one then); a failure here only leaves
// the sharing to the first message, as before.
func (b *Bot) shareRoomKeyEarly(ctx context.Context, roomID id.RoomID) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log := b.log.With().Stringer("room_id", roomID).Logger()
	// The room's state reaches the state store only with the next sync: ask.
	if _, err := b.Client.State(ctx, roomID); err != nil {
		log.Debug().Err(err).Msg("Could not read a joined room's state to share the room key early")
		return
	}
	if encrypted, err := b.Client.StateStore.IsEncrypted(ctx, roomID); err != nil || !encrypted {
		return
	}
	members, err := b.Client.StateStore.GetRoomJoinedOrInvitedMembers(ctx, roomID)
	if err != nil || len(members) != 2 {
		return // a direct chat only: larger rooms change members before the bot speaks
	}
	if err := b.crypto.Machine().ShareGroupSession(ctx, roomID, members); err != nil {
		log.Debug().Err(err).Msg("Could not share the room key early; the first message will")
		return
	}
	log.Debug().Msg("Shared the room key of a direct chat ahead of the first answer")
}

// LeaveRoom leaves (or declines the invite to) a room.
func (b *Bot) LeaveRoom(ctx context.Context, roomID id.RoomID, reason string) error {
	_, err := b.Client.LeaveRoom(ctx, roomID, &mautrix.ReqLeave{Reason: reason})
	if isHTTPStatus(err, http.StatusForbidden) || isHTTPStatus(err, http.StatusNotFound) {
		return nil // not in the room (any more)
	}
	return err
}

// createCaseRoom creates a case's private room: encrypted from its first
// event, invite-only, no guests, history visible from the invite on (so the
// welcome reaches invitees who join later), a neutral name, no topic, the
// org.secbot.case marker, and aliasLocalpart (caseRoomAlias) as its alias
// until it is recorded. Not published in the room directory.
func (b *Bot) createCaseRoom(ctx context.Context, caseID, aliasLocalpart, name string, invite, team []id.UserID) (id.RoomID, error) {
	resp, err := b.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset:             "private_chat",
		Visibility:         "private",
		RoomAliasName:      aliasLocalpart,
		Name:               name,
		Invite:             invite,
		PowerLevelOverride: caseRoomPowerLevels(b.Client.UserID, team),
		InitialState: []*event.Event{
			{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}},
			{Type: event.StateJoinRules, Content: event.Content{Parsed: &event.JoinRulesEventContent{JoinRule: event.JoinRuleInvite}}},
			{Type: event.StateGuestAccess, Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessForbidden}}},
			{Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityInvited}}},
			{Type: CaseStateType, Content: event.Content{Parsed: &CaseState{CaseID: caseID}}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create room for %s: %w", caseID, err)
	}
	return resp.RoomID, nil
}

// caseRoomAlias is the alias a case room is created with, the same for
// every attempt of one outbox row: a retry after a crash finds the room an
// earlier attempt made by asking the homeserver's directory (which, unlike
// the bot's list of joined rooms, has it as soon as the room is complete),
// and the homeserver refuses to make a second room with it (M_ROOM_IN_USE).
// It is an HMAC of the row under the installation's secret: it names no
// case and no reporter, and nobody without the secret can take it first.
func (b *Bot) caseRoomAlias(ctx context.Context, effectID int64, caseID string) (string, id.RoomAlias, error) {
	secret, err := b.installationSecret(ctx)
	if err != nil {
		return "", "", err
	}
	localpart := "secbot-" + store.Tag(secret, fmt.Sprintf("matrix.case_room\x00%d\x00%s", effectID, caseID), 16)
	return localpart, id.NewRoomAlias(localpart, b.Client.UserID.Homeserver()), nil
}

func (b *Bot) installationSecret(ctx context.Context) ([]byte, error) {
	if s := b.secret.Load(); s != nil {
		return *s, nil
	}
	s, err := b.store.InstallationSecret(ctx)
	if err != nil {
		return nil, err
	}
	b.secret.Store(&s)
	return s, nil
}

// clearCanonicalAlias empties a recorded case room's m.room.canonical_alias
// (which the homeserver set from the creation's alias), so that no client
// shows or links the alias that forgetCaseRoomAlias removes. A failure
// leaves a meaningless, unusable name in the room's state: logged only.
func (b *Bot) clearCanonicalAlias(ctx context.Context, roomID id.RoomID) {
	if _, err := b.Client.SendStateEvent(ctx, roomID, event.StateCanonicalAlias, "", map[string]any{}); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", roomID).Msg("Could not clear the case room's alias from its state")
	}
}

// forgetCaseRoomAlias removes a case room's alias from the homeserver's
// directory once the room is recorded: it served only to find the room
// again. One left behind (a crash, an error) is harmless: unguessable, it
// leads to an invite-only room, and is logged only.
func (b *Bot) forgetCaseRoomAlias(ctx context.Context, alias id.RoomAlias) {
	if _, err := b.Client.DeleteAlias(ctx, alias); err != nil && !isHTTPStatus(err, http.StatusNotFound) {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not remove the case room's alias from the directory")
	}
}

// caseRoomPowerLevels make the bot the room's only admin: team members may
// invite (someone who left, a need-to-know person) and redact; nobody else
// may invite, kick, or change the room's state (its name, its encryption).
func caseRoomPowerLevels(self id.UserID, team []id.UserID) *event.PowerLevelsEventContent {
	admin, member := 100, 50
	users := map[id.UserID]int{self: admin}
	for _, u := range team {
		if u != self {
			users[u] = member
		}
	}
	return &event.PowerLevelsEventContent{
		Users:           users,
		StateDefaultPtr: &admin,
		InvitePtr:       &member,
		KickPtr:         &admin,
		BanPtr:          &admin,
		RedactPtr:       &member,
	}
}

// findCaseRoom finds the room an earlier attempt created for caseID before
// secbot could record it: by its alias (see caseRoomAlias), else among the
// bot's rooms for one marked with caseID (a room made before case rooms
// had an alias, or one whose creation was cut off before the homeserver
// gave it the alias, and so before it invited anyone). aliased says
// whether the room's state still names the alias.
func (b *Bot) findCaseRoom(ctx context.Context, alias id.RoomAlias, caseID string) (id.RoomID, bool, error) {
	found, foundAliased, err := b.aliasedCaseRoom(ctx, alias, caseID)
	if err != nil {
		return "", false, err
	}
	joined, err := b.Client.JoinedRooms(ctx)
	if err != nil {
		return "", false, err
	}
	// Every marked room is looked at, so that each trap is named in the log
	// (the room at the alias, if any, is the one taken).
	for _, roomID := range joined.JoinedRooms {
		if roomID == found {
			continue
		}
		var marker CaseState
		if err := b.Client.StateEvent(ctx, roomID, CaseStateType, "", &marker); err != nil || marker.CaseID != caseID {
			continue
		}
		state, err := b.Client.State(ctx, roomID)
		if err != nil {
			return "", false, err
		}
		if ok, why := adoptable(state, b.Client.UserID, caseID); !ok {
			// Case IDs are sequential and anyone can invite the bot to a
			// direct chat: a room prepared for the next case is a trap.
			b.log.Warn().Stringer("room_id", roomID).Str("case_id", caseID).Str("why", why).Msg("Not adopting a room marked for a case")
			continue
		}
		if found == "" {
			// One cut off before the homeserver set the alias still
			// names it in its state.
			found, foundAliased = roomID, namesAlias(state)
		}
	}
	return found, foundAliased, nil
}

// aliasedCaseRoom returns the room alias leads to, "" if none does. A room
// there that the bot did not make for caseID is an error (retried, not
// adopted): nobody without the installation's secret can name the alias.
func (b *Bot) aliasedCaseRoom(ctx context.Context, alias id.RoomAlias, caseID string) (id.RoomID, bool, error) {
	resp, err := b.Client.ResolveAlias(ctx, alias)
	if isHTTPStatus(err, http.StatusNotFound) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("resolve the case room's alias: %w", err)
	}
	state, err := b.Client.State(ctx, resp.RoomID)
	if err != nil {
		return "", false, fmt.Errorf("state of the room of the case room's alias: %w", err)
	}
	if ok, why := adoptable(state, b.Client.UserID, caseID); !ok {
		b.log.Warn().Stringer("room_id", resp.RoomID).Str("case_id", caseID).Str("why", why).Msg("Not adopting the room of a case room's alias")
		return "", false, fmt.Errorf("the room of %s's alias is not one the bot made for it: %s", caseID, why)
	}
	return resp.RoomID, namesAlias(state), nil
}

// namesAlias reports whether a room's state names an alias.
func namesAlias(state mautrix.RoomStateMap) bool {
	canonical := state[event.StateCanonicalAlias][""]
	return canonical != nil && canonical.Content.AsCanonicalAlias().Alias != ""
}

// adoptable reports whether a room marked for caseID is one the bot made
// for it: created by the bot, marked by the bot, encrypted and invite-only.
// Anything else may be an outsider's room, and the reporter and the team
// would be invited into it.
func adoptable(state mautrix.RoomStateMap, self id.UserID, caseID string) (bool, string) {
	create := state[event.StateCreate][""]
	marker := state[CaseStateType][""]
	encryption := state[event.StateEncryption][""]
	joinRules := state[event.StateJoinRules][""]
	switch {
	case create == nil || create.Sender != self:
		return false, "not created by the bot"
	case marker == nil || marker.Sender != self:
		return false, "not marked by the bot"
	case !markedFor(marker, caseID):
		return false, "marked for another case"
	case encryption == nil || encryption.Content.AsEncryption().Algorithm != id.AlgorithmMegolmV1:
		return false, "not encrypted"
	case joinRules == nil || joinRules.Content.AsJoinRules().JoinRule != event.JoinRuleInvite:
		return false, "not invite-only"
	}
	return true, ""
}

func markedFor(marker *event.Event, caseID string) bool {
	m, ok := marker.Content.Parsed.(*CaseState)
	return ok && m.CaseID == caseID
}

// createDM creates an encrypted direct chat with user and records it in the
// bot's m.direct account data, where a retry finds it again.
func (b *Bot) createDM(ctx context.Context, user id.UserID) (id.RoomID, error) {
	resp, err := b.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset:   "trusted_private_chat",
		IsDirect: true,
		Invite:   []id.UserID{user},
		InitialState: []*event.Event{
			{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}},
			{Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityInvited}}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create direct chat: %w", err)
	}
	direct := event.DirectChatsEventContent{}
	_ = b.Client.GetAccountData(ctx, event.AccountDataDirectChats.Type, &direct)
	direct[user] = append(direct[user], resp.RoomID)
	if err := b.Client.SetAccountData(ctx, event.AccountDataDirectChats.Type, &direct); err != nil {
		b.log.Warn().Err(err).Msg("Could not record the direct chat in m.direct")
	}
	return resp.RoomID, nil
}

// findDM returns a direct chat with user that the bot is still in, if any.
func (b *Bot) findDM(ctx context.Context, user id.UserID) (id.RoomID, error) {
	direct := event.DirectChatsEventContent{}
	if err := b.Client.GetAccountData(ctx, event.AccountDataDirectChats.Type, &direct); err != nil {
		if isHTTPStatus(err, http.StatusNotFound) {
			return "", nil
		}
		return "", err
	}
	joined, err := b.Client.JoinedRooms(ctx)
	if err != nil {
		return "", err
	}
	in := make(map[id.RoomID]bool, len(joined.JoinedRooms))
	for _, r := range joined.JoinedRooms {
		in[r] = true
	}
	rooms := direct[user]
	for i := len(rooms) - 1; i >= 0; i-- {
		if !in[rooms[i]] {
			continue
		}
		if ok, err := b.stillThere(ctx, rooms[i], user); err != nil {
			return "", err
		} else if ok {
			return rooms[i], nil
		}
	}
	return "", nil
}

// stillThere reports whether user is joined to (or invited to) a direct
// chat: one they left reaches nobody, however often the bot writes there.
func (b *Bot) stillThere(ctx context.Context, roomID id.RoomID, user id.UserID) (bool, error) {
	resp, err := b.Client.Members(ctx, roomID)
	if isHTTPStatus(err, http.StatusForbidden) || isHTTPStatus(err, http.StatusNotFound) {
		return false, nil // the bot is not in it either
	} else if err != nil {
		return false, err
	}
	for _, evt := range resp.Chunk {
		if evt.GetStateKey() == user.String() {
			m := evt.Content.AsMember().Membership
			return m == event.MembershipJoin || m == event.MembershipInvite, nil
		}
	}
	return false, nil
}

func isHTTPStatus(err error, status int) bool {
	var httpErr mautrix.HTTPError
	return errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode == status
}

// JoinedMemberCount returns how many users are joined to or invited to a
// room, from the bot's state store (no request to the homeserver).
func (b *Bot) JoinedMemberCount(ctx context.Context, roomID id.RoomID) (int, error) {
	ss, ok := b.Client.StateStore.(interface {
		GetRoomJoinedOrInvitedMembers(context.Context, id.RoomID) ([]id.UserID, error)
	})
	if !ok {
		return 0, errors.New("the state store cannot list members")
	}
	members, err := ss.GetRoomJoinedOrInvitedMembers(ctx, roomID)
	return len(members), err
}

// Encrypted reports whether a room is end-to-end encrypted; known is false
// while the bot cannot read the room's state (it has not joined yet).
func (b *Bot) Encrypted(ctx context.Context, roomID id.RoomID) (known, encrypted bool) {
	// An invitee gets "not found" for the room's state too: only a member
	// can tell a missing encryption event from a hidden one.
	joined, err := b.Client.JoinedRooms(ctx)
	if err != nil || !slices.Contains(joined.JoinedRooms, roomID) {
		return false, false
	}
	var content event.EncryptionEventContent
	err = b.Client.StateEvent(ctx, roomID, event.StateEncryption, "", &content)
	switch {
	case err == nil:
		return true, content.Algorithm == id.AlgorithmMegolmV1
	case isHTTPStatus(err, http.StatusNotFound):
		return true, false
	}
	return false, false
}

// HasEncryption reports whether a user has published the device keys of
// at least one end-to-end encryption device.
func (b *Bot) HasEncryption(ctx context.Context, user id.UserID) (bool, error) {
	// A reporter who wrote in an encrypted room is known already: asking
	// the homeserver would hold up the first answer by a round trip.
	if devices, err := b.cryptoStore().GetDevices(ctx, user); err == nil && len(devices) > 0 {
		return true, nil
	}
	resp, err := b.Client.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{user: mautrix.DeviceIDList{}}, Timeout: 10000})
	if err != nil {
		return false, err
	}
	return len(resp.DeviceKeys[user]) > 0, nil
}
