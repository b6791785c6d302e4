package mail

import (
	"context"
	"errors"
	"fmt"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Poster posts into a case's encrypted room, each part once per effect
// even when the effect is retried (the Matrix side: bot.Bot).
type Poster interface {
	// Ready returns nil once the room exists (or the error that says it
	// does not yet), so a message is fetched only when it can be posted.
	Ready(ctx context.Context, to store.Target) error
	Post(ctx context.Context, e store.Effect, to store.Target, parts []Part) error
}

// Part is one event of a post: a notice (Markdown, then Verbatim text
// shown as it is), or a file.
type Part struct {
	Markdown, Verbatim string
	File               *Attachment
}

// Effects runs the email effects.
type Effects struct {
	Config    *Config
	Templates *templates.Set
	Poster    Poster
	// Prefix is the team's command prefix in force.
	Prefix func() string
}

// Executors returns the functions that make the email effects, by kind.
func (x *Effects) Executors() map[string]func(context.Context, store.Effect) (any, error) {
	return map[string]func(context.Context, store.Effect) (any, error){
		store.KindMailSend: x.send,
		store.KindMailPost: x.post,
	}
}

// send mails the bot's or the team's text to an email reporter, with a
// Message-ID made from the outbox row, so a retry finds it in Sent.
func (x *Effects) send(ctx context.Context, e store.Effect) (any, error) {
	var p store.MailSendEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	caseID, err := disclosure.ParseCaseID(p.CaseID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	out := Outgoing{
		To: p.To, Subject: p.Subject, MessageID: MessageID(e.ID, caseID, x.Config.Address),
		InReplyTo: p.InReplyTo, References: p.References, Text: p.Text, Auto: p.Auto,
	}
	if err := x.Config.Send(ctx, out, e.Attempts > 1); err != nil {
		return nil, err
	}
	return nil, nil
}

// post fetches a reporter's message from the mailbox and posts its text
// and files into the case room. Nothing of it is kept or logged.
func (x *Effects) post(ctx context.Context, e store.Effect) (any, error) {
	var p store.MailPostEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	to := store.Target{CaseRoomOf: p.CaseID}
	if err := x.Poster.Ready(ctx, to); err != nil {
		return nil, err
	}
	content, err := x.Config.Fetch(ctx, Ref{UIDValidity: p.UIDValidity, UID: p.UID})
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
	head := templates.EmailPosted{CaseID: p.CaseID, From: content.From, Subject: templates.Truncate(content.Subject, maxSubject), Reply: p.Reply, Prefix: x.Prefix()}
	for _, a := range content.Attachments {
		head.Attachments = append(head.Attachments, a.Name)
	}
	for _, a := range content.TooLarge {
		head.TooLarge = append(head.TooLarge, fmt.Sprintf("%s (%s)", a.Name, size(a.Size)))
	}
	md, err := x.Templates.RenderData(head)
	if err != nil {
		return nil, err
	}
	text := content.Text
	var long *Attachment
	switch {
	case text == "":
		text = "(no text)"
	case len(text) > maxInline:
		// A Matrix event holds at most 64 KiB: a long text is a file.
		long = &Attachment{Name: "message.txt", Type: "text/plain; charset=utf-8", Size: int64(len(text)), Data: []byte(text)}
		text = fmt.Sprintf("(the text is long, %s: it is the file message.txt below)", size(long.Size))
	}
	parts := []Part{{Markdown: md, Verbatim: text}}
	if long != nil {
		parts = append(parts, Part{File: long})
	}
	for i := range content.Attachments {
		parts = append(parts, Part{File: &content.Attachments[i]})
	}
	return nil, x.Poster.Post(ctx, e, to, parts)
}

// maxInline is the longest text posted inline; maxSubject the longest
// subject shown (in runes).
const (
	maxInline  = 24 << 10
	maxSubject = 200
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

// Channel reads the security mailbox into the handlers.
type Channel struct {
	Watcher  *Watcher
	Config   *Config
	Handlers interface {
		HandleEmail(ctx context.Context, msg handlers.Message) error
	}
}

// Run watches the mailbox until ctx ends, handing each new message to
// the handlers as a channel-neutral message.
func (c *Channel) Run(ctx context.Context) error {
	return c.Watcher.Run(ctx, func(ctx context.Context, env Envelope) error {
		if env.Kind == handlers.MailBounce && env.BounceOf.IsZero() {
			// Which of our emails came back: the returned message's own
			// header, inside the report, names it.
			caseID, err := c.Config.BounceCase(ctx, env.Ref)
			if err != nil && !errors.Is(err, ErrMalformed) {
				return err
			}
			env.BounceOf = caseID
		}
		return c.Handlers.HandleEmail(ctx, Translate(env, c.Config.Address))
	})
}

// Translate turns what the watcher read of a message into the handlers'
// message: who sent it, which message it is, where its thread points.
func Translate(env Envelope, address string) handlers.Message {
	ref := &handlers.MailRef{UIDValidity: env.Ref.UIDValidity, UID: env.Ref.UID, MessageID: env.MessageID, Automatic: env.Automatic,
		Kind: env.Kind, BounceOf: env.BounceOf}
	if c, ok := env.ThreadCase(address); ok {
		ref.Case = c
	}
	return handlers.Message{ID: env.Ref.Key(), Sender: disclosure.EmailPerson(env.From), Mail: ref}
}
