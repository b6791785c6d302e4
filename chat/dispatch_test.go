package chat

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
)

// panicky is an inbound side that panics on everything, logging through
// the context it was handed.
type panicky struct{}

func (panicky) HandleMessage(ctx context.Context, msg Message) error {
	zerolog.Ctx(ctx).Info().Msg("handling")
	panic("boom")
}
func (panicky) HandleInvite(context.Context, Invite) error { panic("boom") }
func (panicky) HandleUndecryptable(context.Context, Message, string) {
	panic("boom")
}
func (panicky) HandleEmail(ctx context.Context, msg Message) error {
	zerolog.Ctx(ctx).Info().Msg("handling")
	panic("boom")
}
func (panicky) HandleGitHubAdvisories(context.Context, []GitHubAdvisory) error { panic("boom") }

// A panic in the core, on any channel, is that one event's error, logged
// with the event's context and never with what anyone wrote.
func TestDispatchTurnsAPanicIntoTheEventsError(t *testing.T) {
	var log bytes.Buffer
	d := Dispatch{In: panicky{}, Log: zerolog.New(&log), CommandOf: func(room, text string) string {
		if strings.HasPrefix(text, "!sec claim") {
			return "claim"
		}
		return ""
	}}
	ctx := context.Background()
	secret := "the overflow is in parse_header"
	msg := Message{ID: "$e1", Room: "matrix:!case:x", Sender: "matrix:@alice:x", Text: "!sec claim " + secret}
	var p *PanicError
	if err := d.Message(ctx, msg); !errors.As(err, &p) {
		t.Errorf("a panicking message: %v", err)
	}
	if err := d.Invite(ctx, Invite{Room: "matrix:!r:x", Sender: "matrix:@bob:x"}); !errors.As(err, &p) {
		t.Errorf("a panicking invite: %v", err)
	}
	d.Undecryptable(ctx, msg, "session") // returns: nothing to answer
	mail := Message{ID: "1/2", Sender: disclosure.EmailPerson("r@example.org"), Mail: &MailRef{Case: disclosure.CaseID{Year: 2026, Seq: 7}}}
	if err := d.Email(ctx, mail); !errors.As(err, &p) {
		t.Errorf("a panicking email: %v", err)
	}
	if err := d.GitHubAdvisories(ctx, []GitHubAdvisory{{GHSAID: "GHSA-1"}}); !errors.As(err, &p) {
		t.Errorf("panicking advisories: %v", err)
	}
	out := log.String()
	for _, want := range []string{`"channel":"matrix"`, `"room":"matrix:!case:x"`, `"sender":"matrix:@alice:x"`, `"command":"claim"`,
		`"channel":"email"`, `"case_id":"SR-2026-0007"`, `"channel":"github"`, `"stack"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Errorf("the log holds what the sender wrote:\n%s", out)
	}
}

// Only a command the core knows is named in the log: a reporter's
// "command" of their own words is not.
func TestDispatchNamesOnlyKnownCommands(t *testing.T) {
	var log bytes.Buffer
	d := Dispatch{In: panicky{}, Log: zerolog.New(&log), CommandOf: func(string, string) string { return "" }}
	_ = d.Message(context.Background(), Message{ID: "$e", Room: "matrix:!dm:x", Sender: "matrix:@r:x", Text: "!sec secret-words"})
	if strings.Contains(log.String(), "secret-words") || strings.Contains(log.String(), `"command"`) {
		t.Errorf("the log names an unknown command: %s", log.String())
	}
}
