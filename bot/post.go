package bot

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/store"
)

// Part is one event of a post: a notice (Markdown, then Verbatim text
// shown as it is, never read as markup), or a file.
type Part struct {
	Markdown, Verbatim string
	File               *File
}

// File is a file to post, encrypted, into an encrypted room.
type File struct {
	Name, Type string
	Data       []byte
}

// partMarker is the content field numbering the parts of one effect's post.
const partMarker = "org.secbot.part"

// Ready returns nil once the target room exists, ErrNotReady before.
func (b *Bot) Ready(ctx context.Context, to store.Target) error {
	_, err := b.resolve(ctx, to)
	return err
}

// Post posts parts into an encrypted room for the outbox effect e: each
// part once, even when e is retried after a crash. It refuses a room that
// is not end-to-end encrypted: what it posts may be a reporter's words.
func (b *Bot) Post(ctx context.Context, e store.Effect, to store.Target, parts []Part) error {
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retrySettle):
		}
	}
	for i, part := range parts {
		if e.Attempts > 1 {
			sent, err := b.findMarked(ctx, roomID, func(content map[string]any) bool {
				p, ok := content[partMarker].(float64)
				return marked(content, e.ID) && ok && int(p) == i
			})
			if err != nil {
				return classify(err)
			}
			if sent != "" {
				continue
			}
		}
		content, err := b.partContent(ctx, part)
		if err != nil {
			return err
		}
		raw := map[string]any{effectMarker: e.ID, partMarker: i}
		sealed, err := b.crypto.Encrypt(ctx, roomID, event.EventMessage, &event.Content{Parsed: content, Raw: raw})
		if err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		if _, err := b.Client.SendMessageEvent(ctx, roomID, event.EventEncrypted, &event.Content{Parsed: sealed, Raw: raw},
			mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("%s.%d", txnID(e), i)}); err != nil {
			return classify(err)
		}
	}
	return nil
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
