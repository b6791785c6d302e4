package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// holdBound is how long the messages of a room wait behind an earlier one
// whose key has not come. mautrix gives up on a missing key after 25 s
// (3 s, then a key request and 22 s more); this is the bound in case its
// word never comes.
const holdBound = 30 * time.Second

// A line keeps the encrypted messages of one room in their timeline order
// while one of them waits for its key: later ones, decrypted, wait behind
// it until it is decrypted or given up on, and are then handled in order.
// State events (memberships) are not held: they are no commands, and the
// held messages are noted encrypted events, which a crash does not lose.
type line struct {
	slots    []*slot
	draining bool
}

type slot struct {
	evt     *event.Event // as synced (encrypted)
	ready   *event.Event // decrypted, once it is
	pending bool         // still waiting for its key
	givenUp error        // why it was given up on, if it was
	held    bool         // something later waited behind it
}

type lines struct {
	mu    sync.Mutex
	rooms map[id.RoomID]*line
	// gone are the events given up on, so that a key coming after all
	// does not handle one out of turn.
	gone map[id.EventID]bool
	// joined is when the bot joined each room it has asked about.
	joined map[id.RoomID]time.Time
	// bound replaces holdBound, keyHere the crypto store's word (tests).
	bound   time.Duration
	keyHere func(*event.Event) bool
}

func (o *lines) forgotten(evt id.EventID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gone[evt]
}

// admit gives an encrypted event its place in its room's line, before it
// is decrypted: when its key is missing (it will wait), or when an earlier
// one of its room already waits. Either way it is handled only in turn.
func (b *Bot) admit(ctx context.Context, evt *event.Event) {
	if (b.crypto == nil && b.lines.keyHere == nil) || evt.RoomID == "" {
		return
	}
	o := &b.lines
	bound := holdBound
	if o.bound > 0 {
		bound = o.bound
	}
	// Only a team member's recent message whose key is missing makes the
	// later ones wait. An outsider's holds up nobody's commands; one that
	// is older than the bound when it reaches the bot, or older than the
	// bot's own join (history, one noted before a restart whose key never
	// came), is not late but lost: a key that is only late is seconds late.
	pending := !b.hasKey(ctx, evt)
	blocking := pending && b.onTeam(evt.Sender) && time.Since(time.UnixMilli(evt.Timestamp)) <= bound && !b.beforeJoin(ctx, evt)
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.rooms[evt.RoomID]
	if l != nil {
		for _, s := range l.slots {
			if s.evt.ID == evt.ID {
				return // a batch synced again
			}
		}
	}
	if pending && !blocking {
		return // handled (or given up on) whenever mautrix says
	}
	if l == nil {
		if !blocking {
			return // decrypted at once, and nothing before it waits
		}
		if o.rooms == nil {
			o.rooms = map[id.RoomID]*line{}
		}
		l = &line{}
		o.rooms[evt.RoomID] = l
	}
	for _, s := range l.slots {
		s.held = true
	}
	l.slots = append(l.slots, &slot{evt: evt, pending: true})
	if blocking {
		zerolog.Ctx(ctx).Info().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Msg("The key of a message has not come yet: the later messages of its room wait for it")
		time.AfterFunc(bound, func() {
			b.settle(context.WithoutCancel(ctx), evt, nil, fmt.Errorf("its key did not come within %s", bound), true)
		})
	} else if len(l.slots) > 1 {
		zerolog.Ctx(ctx).Info().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Msg("Holding a message until an earlier one of its room is decrypted")
	}
}

// beforeJoin reports whether evt was sent before the bot's own (latest)
// join to its room: history, whose keys were never meant for the bot. The
// join's time is asked once per room (and learnt from the sync).
func (b *Bot) beforeJoin(ctx context.Context, evt *event.Event) bool {
	o := &b.lines
	o.mu.Lock()
	joined, known := o.joined[evt.RoomID]
	o.mu.Unlock()
	if !known {
		if o.keyHere != nil {
			return false // tests: no homeserver to ask
		}
		member, err := b.Client.FullStateEvent(ctx, evt.RoomID, event.StateMember, b.Client.UserID.String())
		if err != nil || member == nil {
			return false
		}
		joined = time.UnixMilli(member.Timestamp)
		b.noteJoined(evt.RoomID, joined)
	}
	return time.UnixMilli(evt.Timestamp).Before(joined)
}

// noteJoined remembers when the bot joined a room.
func (b *Bot) noteJoined(room id.RoomID, at time.Time) {
	o := &b.lines
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.joined == nil {
		o.joined = map[id.RoomID]time.Time{}
	}
	o.joined[room] = at
}

// hasKey reports whether the megolm session of an encrypted event is here.
func (b *Bot) hasKey(ctx context.Context, evt *event.Event) bool {
	if b.lines.keyHere != nil {
		return b.lines.keyHere(evt)
	}
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok {
		return true // not ours to order: mautrix says what it is
	}
	sess, err := b.crypto.Machine().CryptoStore.GetGroupSession(ctx, evt.RoomID, content.SessionID)
	return err == nil && sess != nil
}

// settle settles an event's place in its line: decrypted (ready), or
// given up on (err). It reports whether the event had a place; if so, the
// line handles it in turn and the caller does nothing more with it.
// A bound's timeout gives up only on a place still waiting for its key.
func (b *Bot) settle(ctx context.Context, evt *event.Event, decrypted *event.Event, err error, timeout bool) bool {
	o := &b.lines
	o.mu.Lock()
	l := o.rooms[evt.RoomID]
	var found *slot
	if l != nil {
		for _, s := range l.slots {
			if s.evt.ID == evt.ID {
				found = s
				break
			}
		}
	}
	if found == nil || (!found.pending && timeout) {
		o.mu.Unlock()
		return found != nil
	}
	found.pending = false
	found.ready, found.givenUp = decrypted, err
	if err != nil {
		if o.gone == nil {
			o.gone = map[id.EventID]bool{}
		}
		o.gone[evt.ID] = true
	}
	o.mu.Unlock()
	b.drain(ctx, evt.RoomID)
	return true
}

// drain handles the settled events at the head of a room's line, in order,
// until one still waits for its key or the line is empty.
func (b *Bot) drain(ctx context.Context, room id.RoomID) {
	o := &b.lines
	for {
		o.mu.Lock()
		l := o.rooms[room]
		if l == nil || l.draining {
			o.mu.Unlock()
			return
		}
		if len(l.slots) == 0 {
			delete(o.rooms, room)
			o.mu.Unlock()
			return
		}
		head := l.slots[0]
		if head.pending {
			o.mu.Unlock()
			return
		}
		l.slots = l.slots[1:]
		l.draining = true
		o.mu.Unlock()
		if head.givenUp != nil {
			b.gaveUp(ctx, head.evt, head.givenUp, head.held)
		} else {
			b.handleDecrypted(ctx, head.ready)
		}
		o.mu.Lock()
		l.draining = false
		o.mu.Unlock()
	}
}

// joinedAt drops from a room's line what came before the bot's own join:
// history, whose keys were never meant for the bot. It is not waited for.
func (b *Bot) joinedAt(ctx context.Context, room id.RoomID, at time.Time) {
	b.noteJoined(room, at)
	o := &b.lines
	o.mu.Lock()
	l := o.rooms[room]
	if l == nil {
		o.mu.Unlock()
		return
	}
	kept := l.slots[:0]
	for _, s := range l.slots {
		if !s.pending {
			kept = append(kept, s)
		}
	}
	dropped := len(l.slots) - len(kept)
	l.slots = kept
	o.mu.Unlock()
	if dropped > 0 {
		zerolog.Ctx(ctx).Debug().Int("events", dropped).Stringer("room_id", room).Msg("Not holding later messages behind history from before the bot joined")
	}
	b.drain(ctx, room)
}

// gaveUp tells the handler about a message given up on and forgets its
// note; if later messages waited behind it, the room is told which one
// was skipped (its sender and time, never its unreadable content).
func (b *Bot) gaveUp(ctx context.Context, evt *event.Event, why error, held bool) {
	b.log.Warn().Err(why).Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Msg("Could not decrypt event")
	if b.handler != nil {
		b.handler.HandleUndecryptable(ctx, evt)
	}
	if held && b.onTeam(evt.Sender) && b.groupRoom(ctx, evt.RoomID) {
		sent := time.UnixMilli(evt.Timestamp).UTC().Format("15:04:05 MST")
		notice := fmt.Sprintf("⚠️ I could not read the message %s sent at %s: its encryption key did not reach me. I waited for it, then handled the messages after it without it; if it was a command, send it again.", evt.Sender, sent)
		if _, err := outbox.Enqueue(ctx, b.store, store.RoomLane(coreRoom(evt.RoomID)), outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: coreRoom(evt.RoomID)}, Markdown: notice, ReplyTo: evt.ID.String()}, time.Now()); err != nil {
			b.log.Error().Err(err).Stringer("room_id", evt.RoomID).Msg("Could not tell the room about a message given up on")
		} else if b.Kick != nil {
			b.Kick()
		}
	}
	if err := b.store.DoneEncrypted(ctx, evt.ID.String()); err != nil {
		b.log.Warn().Err(err).Stringer("event_id", evt.ID).Msg("Could not forget an undecryptable event")
	}
}

// onTeam reports whether a user is on the security team (everyone, if
// the bot was not told who is).
func (b *Bot) onTeam(user id.UserID) bool {
	return b.IsTeam == nil || b.IsTeam(corePerson(user))
}

// groupRoom reports whether a room has more than two members: in a direct
// chat the handler's own answer to an unreadable message says enough.
func (b *Bot) groupRoom(ctx context.Context, room id.RoomID) bool {
	n, err := b.JoinedMemberCount(ctx, room)
	return err == nil && n > 2
}
