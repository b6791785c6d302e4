package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Poster posts into a case's encrypted room, each part once per effect
// even when the effect is retried (the Matrix side: bot.Bot).
type Poster interface {
	// Ready returns nil once the room exists (or the error that says it
	// does not yet), so a message is fetched only when it can be posted.
	Ready(ctx context.Context, to outbox.Target) error
	Post(ctx context.Context, e store.Effect, to outbox.Target, parts []Part) error
}

// FilePolicy is a Poster whose rooms may take no files (a platform
// without them): an email's files are then named and left in the mailbox,
// and a text too long for one post is cut, never made a file.
type FilePolicy interface {
	// PostsFiles reports whether files are posted into the target's room.
	PostsFiles(ctx context.Context, to outbox.Target) (bool, error)
}

// Part is one event of a post: a notice (Markdown, then Verbatim text
// shown as it is), or a file.
type Part struct {
	Markdown, Verbatim string
	File               *Attachment
	// Else is posted instead when the part's encrypted event would be too
	// large to send (a long text: a notice, then the text as a file).
	Else []Part
}

// NotPosted tells the team room that an email's post failed for good
// (err): which case, which email (its UID and Message-ID, never its
// text), and that it is still in the mailbox.
func (x *Effects) NotPosted(ctx context.Context, e store.Effect, err error) error {
	if e.Kind != outbox.KindMailPost || x.Store == nil || x.TeamRoom == nil {
		return nil
	}
	room := x.TeamRoom()
	if room == "" {
		return nil
	}
	var p outbox.MailPostEffect
	if derr := e.Decode(&p); derr != nil {
		return derr
	}
	note := templates.EmailNotPosted{CaseID: p.CaseID, Mailbox: x.Config.Mailbox, MessageID: p.MessageID, UID: p.UID,
		Reason: templates.Truncate(neutralText(err.Error()), 300)}
	return outbox.Say(ctx, x.Store, x.Templates, store.RoomLane(room), outbox.SendEffect{To: outbox.Target{Room: room}}, note, time.Now(), false)
}

// post fetches a reporter's message from the mailbox and posts its text
// and files into the case room. Nothing of it is kept or logged.
func (x *Effects) post(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.MailPostEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	to := outbox.Target{CaseRoomOf: p.CaseID}
	if err := x.Poster.Ready(ctx, to); err != nil {
		return nil, err
	}
	if x.Store != nil {
		// A room that proved unusable (a Rocket.Chat group the server
		// encrypts) gets nothing of the email: the team is told it is in
		// the mailbox (NotPosted).
		caseID, err := disclosure.ParseCaseID(p.CaseID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
		}
		c, err := x.Store.Case(ctx, caseID)
		if err != nil {
			return nil, err
		}
		if c.RoomUnusable {
			return nil, fmt.Errorf("%w: the case room cannot be used", chat.ErrPermanent)
		}
	}
	content, err := x.Config.FetchPosted(ctx, Ref{UIDValidity: p.UIDValidity, UID: p.UID}, p.MessageID)
	if err == nil && p.MessageID != "" && content.MessageID != p.MessageID {
		// Another message under the same UID (a mailbox made anew): the
		// one the effect names is gone, and this one is not the case's.
		err = fmt.Errorf("%w: another message has its UID", ErrGone)
	}
	if errors.Is(err, ErrGone) {
		md, rerr := x.Templates.RenderData(templates.EmailGone{CaseID: p.CaseID})
		if rerr != nil {
			return nil, rerr
		}
		return nil, x.Poster.Post(ctx, e, to, []Part{{Markdown: md}})
	}
	if errors.Is(err, ErrMalformed) {
		// No retry mends it; the team is told, and it stays in the mailbox.
		md, rerr := x.Templates.RenderData(templates.EmailGone{CaseID: p.CaseID, Malformed: true})
		if rerr != nil {
			return nil, rerr
		}
		return nil, x.Poster.Post(ctx, e, to, []Part{{Markdown: md}})
	}
	if err != nil {
		return nil, err
	}
	files := true
	if fp, ok := x.Poster.(FilePolicy); ok {
		if files, err = fp.PostsFiles(ctx, to); err != nil {
			return nil, err
		}
	}
	parts, err := x.parts(content, p, files)
	if err != nil {
		return nil, err
	}
	return nil, x.Poster.Post(ctx, e, to, parts)
}

// parts lays out an email's post: its head and first text, each further
// text, then its files. A text whose event would be too large is posted
// instead as a short notice and a file; a text cut at the size limit says
// so. Into a room that takes no files (files false) the files are named
// in the head instead, and a text too long to post inline is cut.
func (x *Effects) parts(content *Content, p outbox.MailPostEffect, files bool) ([]Part, error) {
	head := templates.EmailPosted{CaseID: p.CaseID, From: content.From, Subject: templates.Truncate(neutralText(content.Subject), maxSubject), Reply: p.Reply,
		Machine: p.Machine, Unverified: p.Unverified, Texts: len(content.Texts), MaxParts: MaxParts, Prefix: x.Prefix()}
	for i, a := range content.Attachments {
		switch {
		case files:
			head.Attachments = append(head.Attachments, a.Name)
		case len(head.NoFiles) == maxNamed:
			head.NoFiles = append(head.NoFiles, fmt.Sprintf("and %d more", len(content.Attachments)-i))
		case len(head.NoFiles) < maxNamed:
			head.NoFiles = append(head.NoFiles, fmt.Sprintf("%s (%s)", a.Name, size(a.Size)))
		}
	}
	for i, a := range content.TooLarge {
		if i == maxNamed {
			head.TooLarge = append(head.TooLarge, fmt.Sprintf("and %d more", len(content.TooLarge)-maxNamed))
			break
		}
		head.TooLarge = append(head.TooLarge, fmt.Sprintf("%s (%s)", a.Name, size(a.Size)))
	}
	for i, a := range content.Skipped {
		if i == maxNamed {
			head.More = len(content.Skipped) - maxNamed
			break
		}
		head.Skipped = append(head.Skipped, fmt.Sprintf("%s (%s)", a.Name, size(a.Size)))
	}
	md, err := x.Templates.RenderData(head)
	if err != nil {
		return nil, err
	}
	texts := content.Texts
	if len(texts) == 0 {
		texts = []Text{{Text: "(no text)"}}
	}
	var parts []Part
	for i, t := range texts {
		n := 0
		if len(texts) > 1 {
			n = i + 1
		}
		lead := ""
		if i == 0 {
			lead = md
		}
		name := "message.txt"
		if n > 1 {
			name = fmt.Sprintf("message-%d.txt", n)
		}
		text := strings.ToValidUTF8(t.Text, "\uFFFD")
		note := templates.EmailText{Texts: len(texts), HTML: t.HTML}
		if i > 0 {
			note.N = n
		}
		if t.Cut > 0 {
			note.Cut = size(t.Cut)
		}
		if !files {
			// No file to stand for a long text: its beginning, cut
			// between two characters, and the rest left in the mailbox.
			if len(text) > maxInline {
				whole := int64(len(text))
				if t.Cut > 0 {
					whole = t.Cut
				}
				note.Cut = size(whole)
				cut := maxInline
				for cut > 0 && !utf8.RuneStart(text[cut]) {
					cut--
				}
				text = text[:cut]
			}
			inline, err := x.lead(lead, note)
			if err != nil {
				return nil, err
			}
			parts = append(parts, Part{Markdown: inline, Verbatim: text})
			continue
		}
		inline, err := x.lead(lead, note)
		if err != nil {
			return nil, err
		}
		note.File, note.Size = name, size(int64(len(text)))
		asFile, err := x.lead(lead, note)
		if err != nil {
			return nil, err
		}
		file := &Attachment{Name: name, Type: "text/plain; charset=utf-8", Size: int64(len(text)), Data: []byte(text)}
		instead := []Part{{Markdown: asFile}, {File: file}}
		if len(text) > maxInline {
			// Far too large for an event: a file without trying.
			parts = append(parts, instead...)
			continue
		}
		parts = append(parts, Part{Markdown: inline, Verbatim: text, Else: instead})
	}
	for i := range content.Attachments {
		if files {
			parts = append(parts, Part{File: &content.Attachments[i]})
		}
	}
	return parts, nil
}

// lead is the notice above a text: the post's head (first text only) and
// what is to be said of the text.
func (x *Effects) lead(head string, note templates.EmailText) (string, error) {
	said, err := x.Templates.RenderData(note)
	if err != nil {
		return "", err
	}
	switch {
	case head == "":
		return strings.TrimSpace(said), nil
	case strings.TrimSpace(said) == "":
		return head, nil
	}
	return head + "\n" + strings.TrimSpace(said), nil
}

// neutralText removes from a text shown on one line the control and
// invisible formatting characters (a right-to-left override) a sender
// may hide in it.
func neutralText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '_'
		}
		return r
	}, s)
}

// maxInline is the longest text that may be posted inline: a longer one
// is a file without trying (an event holds at most 64 KiB; the bot measures
// the encrypted event of a shorter one, and posts it as a file when it is
// too large). maxSubject is the longest subject shown (in runes), maxNamed
// the most files named in one list.
const (
	maxInline  = 64 << 10
	maxSubject = 200
	maxNamed   = 20
)

// size writes a byte count as people read it.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
