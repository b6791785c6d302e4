package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// Part is one event of a post: a notice (Markdown, then Verbatim text
// shown as it is, never read as markup), or a file (encrypted, into an
// encrypted room). Else, if set, is posted instead when the part's
// encrypted event would be too large for the homeserver (a long text: a
// short notice, then the text as a file).
type Part = chat.Part

// File is a file to post, encrypted, into an encrypted room.
type File = chat.File

// partMarker is the content field numbering the parts of one effect's post
// ("2", or "2.1" for the second event posted instead of part 2).
const partMarker = "org.secbot.part"

// maxEventContent bounds the encrypted content of an event secbot posts.
// The homeserver refuses an event over 64 KiB, counted on the whole event
// (its content plus room, sender, hashes, signatures, auth and previous
// events), and megolm base64s the ciphertext of a text that Matrix holds
// twice (body and formatted_body): the size is measured on the encrypted
// content itself, and leaves 8 KiB to the rest.
const maxEventContent = 56 << 10

// ErrTooLarge is an event too large for the homeserver.
var ErrTooLarge = errors.New("the event is too large for the homeserver")

// Ready returns nil once the target room exists, ErrNotReady before.
func (b *Bot) Ready(ctx context.Context, to outbox.Target) error {
	_, err := b.resolve(ctx, to)
	return err
}

// Post posts parts into an encrypted room for the outbox effect e: each
// part once, even when e is retried after a crash. Each part made is
// recorded in the store, so a retry goes on where the last try stopped,
// however many parts there are. It refuses a room that is not end-to-end
// encrypted: what it posts may be a reporter's words.
func (b *Bot) Post(ctx context.Context, e store.Effect, to outbox.Target, parts []Part) error {
	roomID, err := b.resolve(ctx, to)
	if err != nil {
		return err
	}
	if b.crypto == nil {
		return fmt.Errorf("%w: no end-to-end encryption", ErrPermanent)
	}
	encrypted, err := b.Client.StateStore.IsEncrypted(ctx, roomID)
	if err != nil {
		return err
	}
	if !encrypted {
		return fmt.Errorf("%w: %s is not end-to-end encrypted", ErrPermanent, roomID)
	}
	if e.Attempts > 1 {
		if err := backoff.Sleep(ctx, retrySettle); err != nil {
			return err
		}
	}
	if err := b.store.ForgetPostedParts(ctx); err != nil {
		return err
	}
	done, err := b.store.PostedParts(ctx, e.ID)
	if err != nil {
		return err
	}
	p := &posting{b: b, e: e, room: roomID, done: done, search: e.Attempts > 1}
	for i, part := range parts {
		if err := p.post(ctx, strconv.Itoa(i), part, true); err != nil {
			return err
		}
	}
	return nil
}

// posting is one try at an effect's post.
type posting struct {
	b    *Bot
	e    store.Effect
	room id.RoomID
	// done holds the parts made (by key), recorded or found.
	done map[string]string
	// search is set while a retry has still to look for the one part an
	// earlier try may have made without recording it (parts are made in
	// order, so only the first part not recorded can be one).
	search bool
}

// made reports whether the part key was made, or the parts instead of it
// (alternative: some part key.N was).
func (p *posting) made(key string) (whole, alternative bool) {
	if _, ok := p.done[key]; ok {
		return true, false
	}
	for k := range p.done {
		if strings.HasPrefix(k, key+".") {
			return false, true
		}
	}
	return false, false
}

func (p *posting) post(ctx context.Context, key string, part Part, alternatives bool) error {
	whole, alternative := p.made(key)
	if whole {
		return nil
	}
	if !alternative && p.search {
		// The latest events hold any part made but not recorded (one, or
		// those of a post made before parts were recorded: the search goes
		// on while it finds them).
		sent, found, err := p.b.findPart(ctx, p.room, p.e.ID, key)
		if err != nil {
			return classify(err)
		}
		p.search = sent != ""
		if sent != "" {
			if err := p.record(ctx, found, sent); err != nil {
				return err
			}
			whole, alternative = p.made(key)
			if whole {
				return nil
			}
		}
	}
	if alternative {
		return p.instead(ctx, key, part)
	}
	content, err := p.b.partContent(ctx, part)
	if err != nil {
		return err
	}
	raw := map[string]any{effectMarker: p.e.ID, partMarker: key}
	sealed, err := p.b.crypto.Encrypt(ctx, p.room, event.EventMessage, &event.Content{Parsed: content, Raw: raw})
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	wire := &event.Content{Parsed: sealed, Raw: raw}
	if n, err := encodedSize(wire); err != nil {
		return err
	} else if n > maxEventContent {
		if alternatives && len(part.Else) > 0 {
			return p.instead(ctx, key, part)
		}
		return fmt.Errorf("%w: %w: part %s is %d bytes encrypted (at most %d)", ErrPermanent, ErrTooLarge, key, n, maxEventContent)
	}
	resp, err := p.b.Client.SendMessageEvent(ctx, p.room, event.EventEncrypted, wire, mautrix.ReqSendEvent{TransactionID: txnID(p.e) + "." + key})
	if err != nil {
		return classify(err)
	}
	crashpoint.Hit("post.before_record")
	if err := p.record(ctx, key, resp.EventID); err != nil {
		return err
	}
	crashpoint.Hit("post.after_record")
	return nil
}

// instead posts the parts that stand for part key.
func (p *posting) instead(ctx context.Context, key string, part Part) error {
	for j, alt := range part.Else {
		if err := p.post(ctx, key+"."+strconv.Itoa(j), alt, false); err != nil {
			return err
		}
	}
	return nil
}

func (p *posting) record(ctx context.Context, key string, eventID id.EventID) error {
	if err := p.b.store.RecordPostedPart(ctx, p.e.ID, key, eventID.String()); err != nil {
		return err
	}
	p.done[key] = eventID.String()
	return nil
}

// encodedSize is the size of an event's content as it is sent.
func encodedSize(c *event.Content) (int, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	return len(data), nil
}

// findPart looks through the room's latest events for part key of the
// effect's post, or a part posted instead of it; it returns the event and
// the key it has.
func (b *Bot) findPart(ctx context.Context, roomID id.RoomID, effectID int64, key string) (id.EventID, string, error) {
	var found string
	sent, err := b.findMarked(ctx, roomID, func(content map[string]any) bool {
		if !marked(content, effectID) {
			return false
		}
		var k string
		switch v := content[partMarker].(type) {
		case string:
			k = v
		case float64: // posts made before parts had keys
			k = strconv.Itoa(int(v))
		default:
			return false
		}
		if k == key || strings.HasPrefix(k, key+".") {
			found = k
			return true
		}
		return false
	})
	return sent, found, err
}

func (b *Bot) partContent(ctx context.Context, part Part) (*event.MessageEventContent, error) {
	if f := part.File; f != nil {
		ef := attachment.NewEncryptedFile()
		cipher := bytes.Clone(f.Data)
		ef.EncryptInPlace(cipher)
		up, err := b.Client.UploadBytes(ctx, cipher, "application/octet-stream")
		if err != nil {
			return nil, classify(err)
		}
		return &event.MessageEventContent{
			MsgType: event.MsgFile, Body: f.Name, FileName: f.Name,
			Info:     &event.FileInfo{MimeType: f.Type, Size: len(f.Data)},
			File:     &event.EncryptedFileInfo{EncryptedFile: *ef, URL: up.ContentURI.CUString()},
			Mentions: &event.Mentions{},
		}, nil
	}
	content := Notice(part.Markdown)
	if part.Verbatim != "" {
		if content.FormattedBody == "" {
			content.Format, content.FormattedBody = event.FormatHTML, html.EscapeString(content.Body)
		}
		content.Body += "\n\n" + part.Verbatim
		content.FormattedBody += "<pre><code>" + html.EscapeString(part.Verbatim) + "</code></pre>"
	}
	// Nobody is pinged by what a reporter wrote.
	content.Mentions = &event.Mentions{}
	return content, nil
}

// findMarked looks through the room's latest events for the bot's event
// whose content (outside its ciphertext, or inside it) matches.
func (b *Bot) findMarked(ctx context.Context, roomID id.RoomID, match func(map[string]any) bool) (id.EventID, error) {
	resp, err := b.Client.Messages(ctx, roomID, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		return "", err
	}
	for _, evt := range resp.Chunk {
		if evt.Sender != b.Client.UserID {
			continue
		}
		if match(evt.Content.Raw) {
			return evt.ID, nil
		}
	}
	return "", nil
}
