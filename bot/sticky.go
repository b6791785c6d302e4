package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/sqlstatestore"
)

// stickyState is the state store as the client and the crypto machine see
// it, with encryption made sticky the way clients make it: a room secbot
// created encrypted or once saw encrypted stays encrypted, whatever the
// homeserver later puts into its state. mautrix decides whether to encrypt
// a send (SendMessageEvent, execSend, Post) and which room session to use
// from this store, so a forged m.room.encryption {"algorithm": "none"}
// would otherwise turn every later message to that room into plaintext.
//
// The rooms are recorded in secbot's own table (encrypted_rooms), so a
// state store that lost the event, or a downgrade that reached it before
// this check existed, is mended on the next read.
type stickyState struct {
	*sqlstatestore.SQLStateStore
	b *Bot

	mu    sync.Mutex
	known map[id.RoomID]*event.EncryptionEventContent
}

// keepEncryption puts the sticky state store under the client and the
// crypto machine, records the rooms the state store knows encrypted (a
// database from before the table), and watches m.room.encryption events.
func (b *Bot) keepEncryption(ctx context.Context) error {
	inner, ok := b.Client.StateStore.(*sqlstatestore.SQLStateStore)
	if !ok {
		return fmt.Errorf("the state store is a %T, not mautrix's SQL one", b.Client.StateStore)
	}
	s := &stickyState{SQLStateStore: inner, b: b, known: map[id.RoomID]*event.EncryptionEventContent{}}
	if err := s.seed(ctx); err != nil {
		return err
	}
	b.Client.StateStore = s
	b.crypto.Machine().StateStore = s
	syncer, ok := b.Client.Syncer.(mautrix.ExtensibleSyncer)
	if !ok {
		return errors.New("the client syncer cannot take handlers")
	}
	syncer.OnEventType(event.StateEncryption, b.sawEncryption)
	return nil
}

// seed records the rooms the state store itself holds as encrypted: a
// database from before secbot kept its own record (or a record lost in a
// crash between a room's creation and its recording).
func (s *stickyState) seed(ctx context.Context) error {
	rows, err := s.b.store.DB.Query(ctx, `SELECT room_id, encryption FROM mx_room_state WHERE encryption IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("list the encrypted rooms of the state store: %w", err)
	}
	found := map[id.RoomID]*event.EncryptionEventContent{}
	for rows.Next() {
		var room id.RoomID
		var raw []byte
		if err := rows.Scan(&room, &raw); err != nil {
			_ = rows.Close()
			return err
		}
		var content event.EncryptionEventContent
		if json.Unmarshal(raw, &content) == nil && content.Algorithm == id.AlgorithmMegolmV1 {
			found[room] = &content
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for room, content := range found {
		if err := s.record(ctx, room, content); err != nil {
			return err
		}
	}
	return nil
}

// record notes that room is encrypted with content (the first record stays).
func (s *stickyState) record(ctx context.Context, room id.RoomID, content *event.EncryptionEventContent) error {
	s.mu.Lock()
	_, done := s.known[room]
	s.mu.Unlock()
	if done {
		return nil
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return err
	}
	if err := s.b.store.RecordEncrypted(ctx, coreRoom(room), string(raw), time.Now()); err != nil {
		return fmt.Errorf("record %s as encrypted: %w", room, err)
	}
	// What is recorded is what the table holds, the first content seen.
	_, err = s.recorded(ctx, room)
	return err
}

// recorded is the encryption content recorded for room, nil if none.
func (s *stickyState) recorded(ctx context.Context, room id.RoomID) (*event.EncryptionEventContent, error) {
	s.mu.Lock()
	content, ok := s.known[room]
	s.mu.Unlock()
	if ok {
		return content, nil
	}
	raw, ok, err := s.b.store.EncryptedRoom(ctx, coreRoom(room))
	if err != nil || !ok {
		return nil, err
	}
	content = &event.EncryptionEventContent{}
	if err := json.Unmarshal([]byte(raw), content); err != nil || content.Algorithm != id.AlgorithmMegolmV1 {
		// Recorded means encrypted, whatever became of the details.
		content = &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}
	}
	s.mu.Lock()
	s.known[room] = content
	s.mu.Unlock()
	return content, nil
}

// SetEncryptionEvent records a room's encryption, and keeps a recorded
// room's: a later event without megolm is not taken into the store
// (sawEncryption tells the team).
func (s *stickyState) SetEncryptionEvent(ctx context.Context, room id.RoomID, content *event.EncryptionEventContent) error {
	if content != nil && content.Algorithm == id.AlgorithmMegolmV1 {
		if err := s.record(ctx, room, content); err != nil {
			return err
		}
		return s.SQLStateStore.SetEncryptionEvent(ctx, room, content)
	}
	kept, err := s.recorded(ctx, room)
	if err != nil {
		return err
	}
	if kept != nil {
		zerolog.Ctx(ctx).Warn().Stringer("room_id", room).Msg("Not taking a downgrade of a room's encryption into the state store")
		return nil
	}
	return s.SQLStateStore.SetEncryptionEvent(ctx, room, content)
}

// GetEncryptionEvent is the room's encryption as recorded when the state
// store lost it (the store is mended, the team told).
func (s *stickyState) GetEncryptionEvent(ctx context.Context, room id.RoomID) (*event.EncryptionEventContent, error) {
	current, err := s.SQLStateStore.GetEncryptionEvent(ctx, room)
	if err != nil {
		return nil, err
	}
	if current != nil && current.Algorithm == id.AlgorithmMegolmV1 {
		return current, nil
	}
	kept, err := s.recorded(ctx, room)
	if err != nil || kept == nil {
		return current, err
	}
	algorithm := ""
	if current != nil {
		algorithm = string(current.Algorithm)
	}
	log := zerolog.Ctx(ctx).With().Stringer("room_id", room).Str("algorithm", algorithm).Logger()
	log.Error().Msg("The state store says an encrypted room is not encrypted; encrypting anyway and mending the store")
	if err := s.SQLStateStore.SetEncryptionEvent(ctx, room, kept); err != nil {
		log.Warn().Err(err).Msg("Could not mend the state store's encryption event")
	}
	if err := s.b.encryptionDowngraded(ctx, room, algorithm, ""); err != nil {
		// Encrypting is what matters here; the team is told at the next read.
		log.Warn().Err(err).Msg("Could not tell the team about the lost encryption")
	}
	return kept, nil
}

// IsEncrypted reports whether room is encrypted, sticky as above.
func (s *stickyState) IsEncrypted(ctx context.Context, room id.RoomID) (bool, error) {
	content, err := s.GetEncryptionEvent(ctx, room)
	return content != nil && content.Algorithm == id.AlgorithmMegolmV1, err
}

// sawEncryption looks at every m.room.encryption event synced: megolm is
// recorded (the state store did it already), anything else in a room
// recorded encrypted is a downgrade, logged, audited and told once.
func (b *Bot) sawEncryption(ctx context.Context, evt *event.Event) {
	s, ok := b.Client.StateStore.(*stickyState)
	if !ok {
		return
	}
	content := evt.Content.AsEncryption()
	if content.Algorithm == id.AlgorithmMegolmV1 {
		if err := s.record(ctx, evt.RoomID, content); err != nil {
			b.failBatch(fmt.Errorf("%w: %w", errBatchBroken, err))
		}
		return
	}
	kept, err := s.recorded(ctx, evt.RoomID)
	if err != nil {
		b.failBatch(fmt.Errorf("%w: %w", errBatchBroken, err))
		return
	}
	if kept == nil {
		return
	}
	b.log.Error().Stringer("room_id", evt.RoomID).Stringer("event_id", evt.ID).Stringer("sender", evt.Sender).Str("algorithm", string(content.Algorithm)).
		Msg("A room's encryption was turned off in its state; secbot keeps encrypting there")
	if err := b.encryptionDowngraded(ctx, evt.RoomID, string(content.Algorithm), evt.Sender); err != nil {
		b.failBatch(fmt.Errorf("%w: tell the team about a downgrade: %w", errBatchBroken, err))
	}
}

// encryptionDowngraded tells the watcher (once per room: it keeps count).
func (b *Bot) encryptionDowngraded(ctx context.Context, room id.RoomID, algorithm string, by id.UserID) error {
	if b.watcher == nil {
		return nil
	}
	return b.watcher.EncryptionDowngraded(ctx, coreRoom(room), algorithm, corePerson(by))
}

// recordEncrypted records a room the bot made (or adopted) encrypted with
// megolm, whatever the state store got of it.
func (b *Bot) recordEncrypted(ctx context.Context, room id.RoomID) error {
	s, ok := b.Client.StateStore.(*stickyState)
	if !ok {
		return nil
	}
	return s.record(ctx, room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1})
}
