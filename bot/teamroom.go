package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/outbox"
)

// ErrTeamRoomNotReady means the team room refused a post because the bot
// is not (yet) in it, or it is not yet known to be encrypted: the note
// waits, retried, and is never dropped.
var ErrTeamRoomNotReady = errors.New("the team room is not ready for secbot's posts")

// ErrTeamRoomUnencrypted refuses a team room that is not end-to-end
// encrypted: what secbot posts there names reporters.
var ErrTeamRoomUnencrypted = errors.New("the room is not end-to-end encrypted: the homeserver could read what secbot posts there")

// teamRoomRetryCap bounds the wait between two tries of a team-room post
// that is not ready: an operator who invites the bot sees the notes soon.
const teamRoomRetryCap = 10 * time.Second

// teamRoomState is what the bot knows of the team room's readiness.
type teamRoomState struct {
	// current names the team room in force ("" if none).
	current func() id.RoomID
	// waiting is set while the team room refuses posts; refusals counts them.
	waiting  atomic.Bool
	refusals atomic.Int64

	mu sync.Mutex
	// sealed are team rooms put in force by a reload: never posted to in
	// the clear, even before the bot is in them.
	sealed map[id.RoomID]bool
}

// FollowTeamRoom tells the bot where the team room in force is, so that a
// refusal there counts as "not ready" rather than permanent.
func (b *Bot) FollowTeamRoom(current func() string) {
	b.team.current = func() id.RoomID {
		if room := current(); chat.PlatformOf(room) == disclosure.Matrix {
			return matrixRoom(room)
		}
		return ""
	}
}

func (b *Bot) isTeamRoom(room id.RoomID) bool {
	return b.team.current != nil && room != "" && b.team.current() == room
}

// TeamRoomWaiting reports whether the team room refuses secbot's posts
// now, and how many posts it has refused since the start.
func (b *Bot) TeamRoomWaiting() (bool, int64) {
	return b.team.waiting.Load(), b.team.refusals.Load()
}

// CheckTeamRoom is the check a new team room meets when a reload names it:
// a room the bot is invited to is joined; a room known to be unencrypted
// is refused; a room the bot cannot read yet (not invited yet) is accepted,
// but nothing is posted there until the bot is in it and it is encrypted.
func (b *Bot) CheckTeamRoom(ctx context.Context, room string) error {
	roomID := matrixRoom(room)
	known, encrypted := b.Encrypted(ctx, roomID)
	if !known {
		if err := b.JoinRoom(ctx, roomID); err != nil {
			b.log.Warn().Err(err).Stringer("room_id", roomID).Msg("Could not join the new team room (not invited yet?): its notes wait until secbot is in it")
		} else {
			known, encrypted = b.Encrypted(ctx, roomID)
		}
	}
	if known && !encrypted {
		return ErrTeamRoomUnencrypted
	}
	b.team.mu.Lock()
	if b.team.sealed == nil {
		b.team.sealed = map[id.RoomID]bool{}
	}
	b.team.sealed[roomID] = true
	b.team.mu.Unlock()
	return nil
}

// teamRoomReady refuses, as not ready, a post in the clear to a team room
// a reload put in force: the bot may have joined it before its state (its
// encryption) reached the state store.
func (b *Bot) teamRoomReady(room id.RoomID, evtType event.Type, attempts int) error {
	b.team.mu.Lock()
	sealed := b.team.sealed[room]
	b.team.mu.Unlock()
	if !sealed || evtType == event.EventEncrypted {
		return nil
	}
	return b.teamRoomRefused(room, attempts, errors.New("not known to be end-to-end encrypted yet"))
}

// classifyPost classifies the outcome of a post to room: in the team room
// "forbidden" or "not found" (the bot is not in it yet, or no longer) is
// not ready, retried; elsewhere it is as classify says.
func (b *Bot) classifyPost(room id.RoomID, attempts int, err error) error {
	if !b.isTeamRoom(room) {
		return classify(err)
	}
	if err == nil {
		if b.team.waiting.Swap(false) {
			b.log.Info().Stringer("room_id", room).Msg("The team room takes secbot's posts again")
		}
		return nil
	}
	if isHTTPStatus(err, http.StatusForbidden) || isHTTPStatus(err, http.StatusNotFound) {
		return b.teamRoomRefused(room, attempts, err)
	}
	return classify(err)
}

func (b *Bot) teamRoomRefused(room id.RoomID, attempts int, err error) error {
	b.team.refusals.Add(1)
	if !b.team.waiting.Swap(true) {
		b.log.Error().Err(err).Stringer("room_id", room).Msg("The team room refuses secbot's posts: its notes wait and are retried; invite secbot there (an encrypted room)")
	}
	return &outbox.RetryAfterError{
		Err:   fmt.Errorf("%w: %w", ErrTeamRoomNotReady, err),
		After: backoff.Exponential(attempts, time.Second, teamRoomRetryCap),
	}
}
