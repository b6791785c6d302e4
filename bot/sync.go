package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
)

// handledTypes are the event types passed to the handler.
var handledTypes = []event.Type{event.EventMessage, event.EventSticker, event.EventReaction, event.EventRedaction, event.StateMember}

// Run syncs until ctx ends. Unlike mautrix's own loop, which saves the sync
// position before running handlers (at-most-once), Run keeps its own
// position and advances it only after every handler of the batch committed,
// so a crash redelivers the batch and the handled-event table drops what
// was already done.
func (b *Bot) Run(ctx context.Context, h Handler) error {
	b.handler = h
	syncer, ok := b.Client.Syncer.(mautrix.ExtensibleSyncer)
	if !ok {
		return errors.New("the client syncer cannot take handlers")
	}
	for _, t := range handledTypes {
		syncer.OnEventType(t, b.dispatch)
	}
	since, err := b.store.SyncPosition(ctx)
	if err != nil {
		return fmt.Errorf("load sync position: %w", err)
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
	failures, handlerFailures := 0, 0
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
			if err = b.process(ctx, resp, since); err != nil {
				handlerFailures++
				if handlerFailures >= maxBatchRetries {
					// A batch that fails every time would stop the bot for
					// good; the events that did commit stay handled.
					b.log.Error().Err(err).Int("attempts", handlerFailures).Msg("Giving up on a batch whose handlers keep failing")
					err = nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			b.healthy.Store(false)
			wait := backoff(failures)
			b.log.Warn().Err(err).Int("failures", failures).Dur("retry_in", wait).Msg("Sync failed")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		if err := b.store.SetSyncPosition(ctx, resp.NextBatch); err != nil {
			return fmt.Errorf("save sync position: %w", err)
		}
		since, caughtUp = resp.NextBatch, true
		failures, handlerFailures = 0, 0
		b.healthy.Store(true)
		b.lastSync.Store(time.Now().UnixMilli())
	}
}

// process runs the syncer (encryption first, then the handlers) over one
// batch and reports whether every handler succeeded.
func (b *Bot) process(ctx context.Context, resp *mautrix.RespSync, since string) error {
	if since == "" {
		// First start: what happened in joined rooms before the bot existed
		// is history, not requests. Invites are still answered.
		for _, room := range resp.Rooms.Join {
			room.Timeline.Events = nil
		}
	}
	b.batchErr.Store(nil)
	if err := b.Client.Syncer.ProcessResponse(ctx, resp, since); err != nil {
		return err
	}
	if errp := b.batchErr.Load(); errp != nil {
		return *errp
	}
	return nil
}

func (b *Bot) dispatch(ctx context.Context, evt *event.Event) {
	if evt.Sender == b.Client.UserID && evt.Type != event.StateMember {
		return // our own echoes
	}
	log := b.log.With().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Str("type", evt.Type.Type).Logger()
	ctx = log.WithContext(ctx)
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("handler panicked: %v", r)
			log.Error().Any("panic", r).Stack().Msg("Handler panicked")
			b.failBatch(err)
		}
	}()
	if err := b.handler.HandleEvent(ctx, evt); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Handling event failed; the batch will be synced again")
		b.failBatch(err)
	}
}

func (b *Bot) failBatch(err error) {
	b.batchErr.CompareAndSwap(nil, &err)
}

// maxBatchRetries is how often a batch whose handlers fail is synced again.
const maxBatchRetries = 5

// backoff is the wait before the n-th consecutive retry: 1 s doubling to a minute.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 6)
	return min(d, time.Minute)
}
