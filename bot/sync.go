package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/store"
)

// handledTypes are the event types passed to the handler.
var handledTypes = []event.Type{event.EventMessage, event.EventSticker, event.EventReaction, event.EventRedaction, event.StateMember}

// Run syncs until ctx ends. Unlike mautrix's own loop, which saves the sync
// position before running handlers (at-most-once), Run keeps its own
// position and advances it only after every handler of the batch committed,
// so a crash redelivers the batch and the handled-event table drops what
// was already done.
func (b *Bot) Run(ctx context.Context, h Handler) error {
	b.handler, b.runCtx = h, ctx
	syncer, ok := b.Client.Syncer.(mautrix.ExtensibleSyncer)
	if !ok {
		return errors.New("the client syncer cannot take handlers")
	}
	for _, t := range handledTypes {
		syncer.OnEventType(t, b.dispatch)
	}
	if err := b.retryAwaiting(ctx); err != nil {
		return err
	}
	since, err := b.store.SyncPosition(ctx)
	if err != nil {
		return fmt.Errorf("load sync position: %w", err)
	}
	if since != "" {
		b.answerPendingInvites(ctx)
	} else if b.firstAgain, err = b.store.BeginFirstSync(ctx); err != nil {
		return fmt.Errorf("mark the first sync: %w", err)
	}
	// Presence, typing, receipts and room tags mean nothing to secbot;
	// leaving them out spares the homeserver work on every sync.
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter, err := b.Client.CreateFilter(ctx, &mautrix.Filter{
		Presence: none,
		Room: &mautrix.RoomFilter{
			Timeline:    &mautrix.FilterPart{Limit: 100},
			State:       &mautrix.FilterPart{LazyLoadMembers: false},
			Ephemeral:   none,
			AccountData: none,
		},
	})
	if err != nil {
		return fmt.Errorf("create sync filter: %w", err)
	}
	failures, batchFailures := 0, 0
	caughtUp := false
	for {
		// The first sync after a start (or a failure) returns at once, with
		// the backlog or nothing, so the bot is known to be in sync without
		// waiting out a long poll.
		timeout := 30000
		if failures > 0 || !caughtUp {
			timeout = 0
		}
		resp, err := b.Client.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: timeout, Since: since, FilterID: filter.FilterID})
		if err == nil {
			// An event whose handler keeps failing parks itself (see handle);
			// a batch failing for no one event parks its unhandled events.
			if err = b.process(ctx, resp, since); errors.Is(err, errBatchBroken) {
				batchFailures++
				if batchFailures >= maxBatchRetries && ctx.Err() == nil {
					b.log.Error().Err(err).Int("attempts", batchFailures).Msg("Parking the unhandled events of a batch that keeps failing")
					err = b.parkBatch(ctx, resp)
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			b.healthy.Store(false)
			wait := b.retryWait(failures)
			b.log.Warn().Err(err).Int("failures", failures).Dur("retry_in", wait).Msg("Sync failed")
			select {
			case <-ctx.Done():
				return nil
			case <-b.after(wait):
			}
			continue
		}
		if since == "" {
			crashpoint.Hit("sync.first_handled")
		}
		if err := b.store.SetSyncPosition(ctx, resp.NextBatch); err != nil {
			return fmt.Errorf("save sync position: %w", err)
		}
		since, caughtUp = resp.NextBatch, true
		failures, batchFailures = 0, 0
		b.forgetBatch()
		b.healthy.Store(true)
		b.lastSync.Store(time.Now().UnixMilli())
		b.syncedOnce.Do(func() {
			if b.synced != nil { // nil in tests that build a Bot by hand
				close(b.synced)
			}
		})
	}
}

// process runs the syncer (encryption first, then the handlers) over one
// batch and reports whether every handler succeeded.
func (b *Bot) process(ctx context.Context, resp *mautrix.RespSync, since string) error {
	if since == "" {
		// First start: what happened in joined rooms before the bot existed
		// is history, not requests. Invites are still answered. A first
		// start cut short (a kill after answering an invite, before the
		// position was saved) syncs from scratch again: what came after
		// the bot's own join then is no history, and is handled. (A lost
		// database is a first start too: it handles nothing old.)
		for _, room := range resp.Rooms.Join {
			history, rest := room.Timeline.Events, []*event.Event(nil)
			if b.firstAgain {
				history, rest = splitAtOwnJoin(room.Timeline.Events, b.Client.UserID)
			}
			// The state changes among the history still tell the state
			// store what the room is (encrypted, who is in it).
			for _, evt := range history {
				if evt.StateKey != nil && *evt.StateKey != b.Client.UserID.String() {
					room.State.Events = append(room.State.Events, evt)
				}
			}
			room.Timeline.Events = rest
		}
	}
	b.batchErr.Store(nil)
	b.syncingFromScratch.Store(since == "")
	defer b.syncingFromScratch.Store(false)
	if err := b.Client.Syncer.ProcessResponse(ctx, resp, since); err != nil {
		return fmt.Errorf("%w: %w", errBatchBroken, err)
	}
	// mautrix fetched the changed device lists while processing.
	if err := b.devicesChanged(ctx, resp.DeviceLists.Changed); err != nil {
		return fmt.Errorf("%w: device changes: %w", errBatchBroken, err)
	}
	if errp := b.batchErr.Load(); errp != nil {
		return *errp
	}
	return nil
}

// answerPendingInvites answers, at a start, the invites still waiting for
// the bot: an invite whose batch was given up on (parked, or cut short by
// a crash in a way that saved the position) would otherwise never be seen
// again, and the team room's invite would be lost. A sync from scratch
// that carries nothing but invites (and no timeline) lists them.
func (b *Bot) answerPendingInvites(ctx context.Context) {
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter := &mautrix.Filter{
		Presence:    none,
		AccountData: none,
		Room: &mautrix.RoomFilter{
			Timeline:    &mautrix.FilterPart{Limit: 0, NotTypes: []event.Type{{Type: "*"}}},
			State:       none,
			Ephemeral:   none,
			AccountData: none,
		},
	}
	raw, err := json.Marshal(filter)
	if err != nil {
		return
	}
	resp, err := b.Client.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 0, FilterID: string(raw)})
	if err != nil {
		b.log.Warn().Err(err).Msg("Could not look for pending invites at start")
		return
	}
	for roomID, room := range resp.Rooms.Invite {
		for _, evt := range room.State.Events {
			if evt.Type.Type != event.StateMember.Type || evt.GetStateKey() != b.Client.UserID.String() {
				continue
			}
			evt.RoomID, evt.Type.Class = roomID, event.StateEventType
			if err := evt.Content.ParseRaw(evt.Type); err != nil || evt.Content.AsMember().Membership != event.MembershipInvite {
				continue
			}
			b.log.Info().Stringer("room_id", roomID).Stringer("sender", evt.Sender).Msg("Answering an invite still pending at start")
			if err := b.answerInvite(ctx, evt); err != nil {
				b.log.Warn().Err(err).Stringer("room_id", roomID).Msg("Could not answer a pending invite; the next invite or start will")
			}
		}
	}
}

// answerInvite passes a pending invite (stripped state: no event ID, so
// no dead letter) to the handler.
func (b *Bot) answerInvite(ctx context.Context, evt *event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	return b.handler.HandleEvent(b.log.With().Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Logger().WithContext(ctx), evt)
}

// splitAtOwnJoin splits a timeline at self's join to the room: what came
// before is history; the join and what follows it are not. Without the
// join (the bot was there before), all of it is history.
func splitAtOwnJoin(timeline []*event.Event, self id.UserID) (history, rest []*event.Event) {
	for i, evt := range timeline {
		if ownJoin(evt, self) {
			return timeline[:i], timeline[i:]
		}
	}
	return timeline, nil
}

// ownJoin reports whether evt is self joining a room (not a profile change).
func ownJoin(evt *event.Event, self id.UserID) bool {
	return evt.Type.Type == event.StateMember.Type && evt.GetStateKey() == self.String() && membership(&evt.Content) == event.MembershipJoin &&
		(evt.Unsigned.PrevContent == nil || membership(evt.Unsigned.PrevContent) != event.MembershipJoin)
}

// membership reads a member event's membership before its content is parsed.
func membership(c *event.Content) event.Membership {
	if m, ok := c.Raw["membership"].(string); ok {
		return event.Membership(m)
	}
	if m, ok := c.Parsed.(*event.MemberEventContent); ok {
		return m.Membership
	}
	return ""
}

// errBatchBroken marks a batch failure that no one event's handler owns
// (the crypto machinery, noting an encrypted event): only the batch as a
// whole can be retried or given up on.
var errBatchBroken = errors.New("the batch could not be processed")

func (b *Bot) dispatch(ctx context.Context, evt *event.Event) {
	if err := b.handle(ctx, evt); err != nil {
		b.failBatch(err)
	}
	// What waited in the room's line before the bot's own join is
	// history: nothing later waits for it.
	if evt.Mautrix.EventSource&event.SourceTimeline != 0 && ownJoin(evt, b.Client.UserID) {
		b.joinedAt(ctx, evt.RoomID, time.UnixMilli(evt.Timestamp))
	}
}

// handle passes one event to the handler; an error means nothing of it
// was committed. An event that fails maxBatchRetries times is parked as a
// dead letter and counts as handled, so that it cannot hold up the sync.
func (b *Bot) handle(ctx context.Context, evt *event.Event) (err error) {
	if evt.Sender == b.Client.UserID && evt.Type != event.StateMember {
		return nil // our own echoes
	}
	log := b.log.With().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Str("type", evt.Type.Type).Logger()
	ctx = log.WithContext(ctx)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
			// zerolog's Stack() needs an error carrying a stack; take it here.
			log.Error().Err(err).Str("stack", string(debug.Stack())).Msg("Handler panicked")
		}
		switch {
		case err == nil:
			b.noteDone(evt.ID)
		case ctx.Err() == nil: // stopping is no failure of the event
			err = b.eventFailed(ctx, evt, err)
		}
	}()
	if err := b.handler.HandleEvent(ctx, evt); err != nil {
		log.Error().Err(err).Msg("Handling event failed; the batch will be synced again")
		return err
	}
	return nil
}

var errPanicked = errors.New("handler panicked")

// eventFailed counts a failure of evt's handler and, at the last allowed
// one, parks evt and reports success so the batch goes on.
func (b *Bot) eventFailed(ctx context.Context, evt *event.Event, err error) error {
	b.outcomeMu.Lock()
	if b.failedEvents == nil {
		b.failedEvents = map[id.EventID]int{}
	}
	b.failedEvents[evt.ID]++
	attempts := b.failedEvents[evt.ID]
	b.outcomeMu.Unlock()
	if attempts < maxBatchRetries {
		return err
	}
	category := failureCategory(err)
	if perr := b.park(ctx, evt.RoomID, evt.ID, attempts, category); perr != nil {
		return errors.Join(err, perr)
	}
	zerolog.Ctx(ctx).Error().Int("attempts", attempts).Str("category", category).Msg("Handler keeps failing; event parked as a dead letter")
	b.noteDone(evt.ID)
	return nil
}

func (b *Bot) park(ctx context.Context, room id.RoomID, evt id.EventID, attempts int, category string) error {
	return b.store.ParkEvent(ctx, store.DeadLetter{Room: room.String(), Event: evt.String(), ParkedAt: time.Now(), Attempts: attempts, Category: category})
}

// noteDone remembers, until the batch's sync position is saved, that an
// event is done with (handled or parked).
func (b *Bot) noteDone(evt id.EventID) {
	b.outcomeMu.Lock()
	defer b.outcomeMu.Unlock()
	if b.doneEvents == nil {
		b.doneEvents = map[id.EventID]bool{}
	}
	b.doneEvents[evt] = true
}

// forgetBatch drops what handle remembered of the batch just saved.
func (b *Bot) forgetBatch() {
	b.outcomeMu.Lock()
	defer b.outcomeMu.Unlock()
	clear(b.failedEvents)
	clear(b.doneEvents)
}

// parkBatch parks every event of a batch that the handler would have seen
// and that is not done with, so that giving up on the batch loses none
// silently. Invites carry no event IDs and are left to the next invite.
func (b *Bot) parkBatch(ctx context.Context, resp *mautrix.RespSync) error {
	// The syncer fills in an event's room only when it gets that far.
	timelines := map[id.RoomID][]*event.Event{}
	for room, data := range resp.Rooms.Join {
		timelines[room] = data.Timeline.Events
	}
	for room, data := range resp.Rooms.Leave {
		timelines[room] = append(timelines[room], data.Timeline.Events...)
	}
	b.outcomeMu.Lock()
	done := map[id.EventID]bool{}
	maps.Copy(done, b.doneEvents)
	b.outcomeMu.Unlock()
	// A noted encrypted event is not lost: the next start tries it again.
	noted, err := b.store.AwaitingEvents(ctx)
	if err != nil {
		return fmt.Errorf("load noted encrypted events: %w", err)
	}
	for _, a := range noted {
		done[id.EventID(a.Event)] = true
	}
	parked := 0
	for room, events := range timelines {
		for _, evt := range events {
			handled := slices.Contains(handledTypes, evt.Type) || evt.Type == event.EventEncrypted
			if !handled || done[evt.ID] || evt.Sender == b.Client.UserID {
				continue
			}
			if err := b.park(ctx, room, evt.ID, maxBatchRetries, categoryBatch); err != nil {
				return fmt.Errorf("park event of a failing batch: %w", err)
			}
			parked++
		}
	}
	b.log.Error().Int("events", parked).Msg("Parked the unhandled events of a failing batch as dead letters")
	return nil
}

// The categories of dead letters: fixed words, because an error's text
// may quote the message that caused it.
const (
	categoryPanic   = "panic"
	categoryTimeout = "timeout"
	categoryMatrix  = "matrix"
	categoryHandler = "handler"
	categoryBatch   = "batch"
)

func failureCategory(err error) string {
	var httpErr mautrix.HTTPError
	switch {
	case errors.Is(err, errPanicked):
		return categoryPanic
	case errors.Is(err, context.DeadlineExceeded):
		return categoryTimeout
	case errors.As(err, &httpErr):
		return categoryMatrix
	default:
		return categoryHandler
	}
}

// noteEncrypted notes an encrypted event before it is decrypted: if its
// key comes only after the batch, it is handled after the sync position
// has moved on, and the note is what survives a crash in between.
func (b *Bot) noteEncrypted(ctx context.Context, evt *event.Event) {
	if evt.Sender == b.Client.UserID {
		return // our own echoes are never handled: nothing to lose
	}
	if err := b.store.NoteEncrypted(ctx, evt.RoomID.String(), evt.ID.String(), time.Now()); err != nil {
		b.failBatch(fmt.Errorf("%w: note encrypted event: %w", errBatchBroken, err))
		return
	}
	b.admit(ctx, evt)
}

// afterDecrypt handles a decrypted event, in its batch or later when its
// key arrived, and forgets the note once it has been handled.
func (b *Bot) afterDecrypt(ctx context.Context, evt *event.Event) {
	if evt.Sender == b.Client.UserID {
		return // an echo: neither noted nor handled
	}
	if b.settle(ctx, evt, evt, nil, false) {
		return // handled in its turn
	}
	if b.lines.forgotten(evt.ID) {
		// Its key came after the room was told it was given up on (and
		// asked to send it again): handling it now would break the order.
		zerolog.Ctx(ctx).Warn().Stringer("event_id", evt.ID).Msg("Not handling a message decrypted after it was given up on")
		if err := b.store.DoneEncrypted(ctx, evt.ID.String()); err != nil {
			b.log.Warn().Err(err).Stringer("event_id", evt.ID).Msg("Could not forget a handled encrypted event")
		}
		return
	}
	b.handleDecrypted(ctx, evt)
}

// handleDecrypted handles a decrypted event and forgets its note.
func (b *Bot) handleDecrypted(ctx context.Context, evt *event.Event) {
	crashpoint.Hit("decrypt.before_handle")
	if slices.Contains(handledTypes, evt.Type) {
		if err := b.handle(ctx, evt); err != nil {
			b.failBatch(err) // in its batch: synced again; later: tried at the next start
			return
		}
	}
	if err := b.store.DoneEncrypted(ctx, evt.ID.String()); err != nil {
		b.log.Warn().Err(err).Stringer("event_id", evt.ID).Msg("Could not forget a handled encrypted event")
	}
}

// awaitingGiveUp is how long a noted event is fetched again at start
// before it is given up on (its key will not come any more).
const awaitingGiveUp = 7 * 24 * time.Hour

// retryAwaiting fetches the encrypted events noted but not handled before
// the last stop and decrypts them again; their keys may be here by now, or
// are waited for as for any event.
func (b *Bot) retryAwaiting(ctx context.Context) error {
	noted, err := b.store.AwaitingEvents(ctx)
	if err != nil {
		return fmt.Errorf("load noted encrypted events: %w", err)
	}
	var fetched []*event.Event
	for _, a := range noted {
		log := b.log.With().Str("event_id", a.Event).Str("room_id", a.Room).Logger()
		evt, err := b.Client.GetEvent(ctx, id.RoomID(a.Room), id.EventID(a.Event))
		if err == nil {
			evt.RoomID = id.RoomID(a.Room)
			err = evt.Content.ParseRaw(evt.Type)
		}
		if err != nil || evt.Type != event.EventEncrypted {
			if time.Since(a.NotedAt) < awaitingGiveUp && isTransient(err) {
				log.Warn().Err(err).Msg("Could not fetch a noted encrypted event; will try at the next start")
				continue
			}
			log.Warn().Err(err).Msg("Giving up on a noted encrypted event")
			if err := b.store.DoneEncrypted(ctx, a.Event); err != nil {
				return err
			}
			continue
		}
		fetched = append(fetched, evt)
	}
	// Noted in the same millisecond, events come back in any order: the
	// homeserver's timestamps put each room's back in its timeline order.
	slices.SortStableFunc(fetched, func(x, y *event.Event) int { return cmp.Compare(x.Timestamp, y.Timestamp) })
	for _, evt := range fetched {
		log := b.log.With().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Logger()
		log.Info().Msg("Handling an encrypted event noted before the last stop")
		b.admit(log.WithContext(ctx), evt)
		b.crypto.HandleEncrypted(log.WithContext(ctx), evt)
	}
	return nil
}

func (b *Bot) failBatch(err error) {
	if errors.Is(err, errBatchBroken) {
		b.batchErr.Store(&err) // what decides the batch's fate outranks an event's failure
		return
	}
	b.batchErr.CompareAndSwap(nil, &err)
}

// maxBatchRetries is how often a batch whose handlers fail is synced again.
const maxBatchRetries = 5

// after is Clock's After, or time.After without a Clock.
func (b *Bot) after(d time.Duration) <-chan time.Time {
	if b.Clock == nil {
		return time.After(d)
	}
	return b.Clock.After(d)
}

// retryWait is the wait before the n-th consecutive retry of a sync.
func (b *Bot) retryWait(n int) time.Duration {
	if b.syncBackoff != nil {
		return b.syncBackoff(n)
	}
	// One second, doubling to a minute.
	return backoff.Exponential(n, time.Second, time.Minute)
}

// isTransient reports whether a failed request may succeed later.
func isTransient(err error) bool { return err != nil && !errors.Is(classify(err), ErrPermanent) }
