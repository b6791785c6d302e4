package mail

import (
	"context"
	"errors"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// Channel reads the security mailbox into the core.
type Channel struct {
	Watcher *Watcher
	Config  *Config
	// In is the core's inbound side (chat.Dispatch's Email).
	In interface {
		Email(ctx context.Context, msg chat.Message) error
	}
}

// Run watches the mailbox until ctx ends, handing each new message to
// the handlers as a channel-neutral message.
func (c *Channel) Run(ctx context.Context) error {
	return c.Watcher.Run(ctx, func(ctx context.Context, env Envelope) error {
		if env.Kind == chat.MailBounce && env.BounceOf.IsZero() {
			// Which of our emails came back: the returned message's own
			// header, inside the report, names it.
			caseID, err := c.Config.BounceCase(ctx, env.Ref)
			if err != nil && !errors.Is(err, ErrMalformed) {
				return err
			}
			env.BounceOf = caseID
		}
		return c.In.Email(ctx, Translate(env, c.Config.Address))
	})
}

// Translate turns what the watcher read of a message into the handlers'
// message: who sent it, which message it is, where its thread points.
func Translate(env Envelope, address string) chat.Message {
	ref := &chat.MailRef{UIDValidity: env.Ref.UIDValidity, UID: env.Ref.UID, MessageID: env.MessageID, Automatic: env.Automatic,
		SenderVerified: env.Sender.Verified, SenderCheck: env.Sender.Why,
		Kind: env.Kind, BounceOf: env.BounceOf}
	if c, ok := env.ThreadCase(address); ok {
		ref.Case = c
	}
	return chat.Message{ID: env.Ref.Key(), Sender: disclosure.EmailPerson(env.From), Mail: ref}
}
