package mail

import (
	"context"
	"fmt"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// send mails the bot's or the team's text to an email reporter, with a
// Message-ID made from the outbox row, so a retry finds it in Sent.
func (x *Effects) send(ctx context.Context, e store.Effect) (any, error) {
	var p outbox.MailSendEffect
	if err := e.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	caseID, err := disclosure.ParseCaseID(p.CaseID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	out := Outgoing{
		To: p.To, Subject: p.Subject, MessageID: MessageID(e.ID, p.Nonce, caseID, x.Config.Address),
		InReplyTo: p.InReplyTo, References: p.References, Text: p.Text, Auto: p.Auto,
	}
	if err := x.Config.Send(ctx, out, e.Attempts > 1); err != nil {
		return nil, err
	}
	return nil, nil
}
