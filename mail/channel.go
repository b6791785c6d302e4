package mail

import (
	"context"
	"errors"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
)

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
		SenderVerified: env.Sender.Verified, SenderCheck: env.Sender.Why,
		Kind: env.Kind, BounceOf: env.BounceOf}
	if c, ok := env.ThreadCase(address); ok {
		ref.Case = c
	}
	return handlers.Message{ID: env.Ref.Key(), Sender: disclosure.EmailPerson(env.From), Mail: ref}
}
