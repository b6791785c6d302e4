package chat

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// Inbound is what every channel hands the core: a chat platform its
// messages, invites and messages it could not decrypt, the mailbox its
// mail (a Message with Mail set), GitHub the advisories it saw. The
// handlers implement it; channels call it only through Dispatch.
type Inbound interface {
	HandleMessage(ctx context.Context, msg Message) error
	HandleInvite(ctx context.Context, inv Invite) error
	HandleUndecryptable(ctx context.Context, msg Message, session string)
	HandleEmail(ctx context.Context, msg Message) error
	HandleGitHubAdvisories(ctx context.Context, seen []GitHubAdvisory) error
}

// Dispatch is the one way into the core: each call runs with the event's
// context in the logger (channel, room, sender, command, case) and a panic
// in the core becomes an error of that one event instead of the end of
// the process.
type Dispatch struct {
	In  Inbound
	Log zerolog.Logger
	// CommandOf names a message's command for the log: a command the core
	// knows, never a word of free text (a reporter's words stay out of
	// logs); nil or "" for none.
	CommandOf func(room, text string) string
}

// Message hands over a chat message.
func (d Dispatch) Message(ctx context.Context, msg Message) error {
	ctx = d.with(ctx, channelOf(msg.Room), func(c zerolog.Context) zerolog.Context {
		c = c.Str("room", msg.Room).Str("sender", string(msg.Sender))
		if cmd := d.command(msg.Room, msg.Text); cmd != "" {
			c = c.Str("command", cmd)
		}
		return c
	})
	return guard(ctx, func() error { return d.In.HandleMessage(ctx, msg) })
}

// Invite hands over an invitation of the bot.
func (d Dispatch) Invite(ctx context.Context, inv Invite) error {
	ctx = d.with(ctx, channelOf(inv.Room), func(c zerolog.Context) zerolog.Context {
		return c.Str("room", inv.Room).Str("sender", string(inv.Sender))
	})
	return guard(ctx, func() error { return d.In.HandleInvite(ctx, inv) })
}

// Undecryptable hands over a message the platform could not decrypt.
func (d Dispatch) Undecryptable(ctx context.Context, msg Message, session string) {
	ctx = d.with(ctx, channelOf(msg.Room), func(c zerolog.Context) zerolog.Context {
		return c.Str("room", msg.Room).Str("sender", string(msg.Sender))
	})
	_ = guard(ctx, func() error { d.In.HandleUndecryptable(ctx, msg, session); return nil })
}

// Email hands over a message of the security mailbox.
func (d Dispatch) Email(ctx context.Context, msg Message) error {
	ctx = d.with(ctx, "email", func(c zerolog.Context) zerolog.Context {
		c = c.Str("sender", string(msg.Sender))
		if msg.Mail != nil && !msg.Mail.Case.IsZero() {
			c = c.Stringer("case_id", msg.Mail.Case)
		}
		return c
	})
	return guard(ctx, func() error { return d.In.HandleEmail(ctx, msg) })
}

// GitHubAdvisories hands over the advisories a GitHub poll saw.
func (d Dispatch) GitHubAdvisories(ctx context.Context, seen []GitHubAdvisory) error {
	ctx = d.with(ctx, "github", func(c zerolog.Context) zerolog.Context { return c.Int("advisories", len(seen)) })
	return guard(ctx, func() error { return d.In.HandleGitHubAdvisories(ctx, seen) })
}

// with puts the logger with the event's context into ctx.
func (d Dispatch) with(ctx context.Context, channel string, fields func(zerolog.Context) zerolog.Context) context.Context {
	log := fields(d.Log.With().Str("channel", channel)).Logger()
	return log.WithContext(ctx)
}

// command is the known command of a message's text ("" for none).
func (d Dispatch) command(room, text string) string {
	if d.CommandOf == nil {
		return ""
	}
	return d.CommandOf(room, text)
}

// channelOf names a room's channel in the log: its platform.
func channelOf(room string) string {
	if p := PlatformOf(room); p != "" {
		return string(p)
	}
	return "chat"
}

// PanicError is a panic in the core while it handled one event.
type PanicError struct {
	Value any
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic while handling an event: %v", e.Value) }

// guard runs f, turning a panic into a PanicError logged with its stack.
func guard(ctx context.Context, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			zerolog.Ctx(ctx).Error().Str("stack", string(debug.Stack())).Interface("panic", r).Msg("Panic while handling an event")
			err = &PanicError{Value: r}
		}
	}()
	return f()
}
