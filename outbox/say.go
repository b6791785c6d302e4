package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Say renders data and records it in the outbox as a message: the one way
// secbot queues a text for a person. msg says where it goes and how it is
// threaded; urgent messages (the answer a reporter waits on) go first.
func Say(ctx context.Context, q Queue, tmpl *templates.Set, lane string, msg SendEffect, data templates.Data, now time.Time, urgent bool) error {
	md, err := tmpl.RenderData(data)
	if err != nil {
		return err
	}
	msg.Markdown = md
	_, err = EnqueueAt(ctx, q, lane, KindSend, msg, now, now, urgent)
	return err
}

// MailQueue is what MailReporter needs of the store: the reporter's
// thread, and to record a row.
type MailQueue interface {
	Queue
	MailThread(ctx context.Context, caseID disclosure.CaseID) (root, last string, err error)
}

// MailReporter renders data and records it as an email to the reporter of
// an email case, threaded to their last message: what a chat reporter
// reads in the case room, an email reporter gets by mail.
func MailReporter(ctx context.Context, q MailQueue, tmpl *templates.Set, caseID disclosure.CaseID, reporter disclosure.Person, data templates.Data, now time.Time, urgent bool) error {
	text, err := tmpl.RenderData(data)
	if err != nil {
		return err
	}
	subject, err := tmpl.RenderData(templates.EmailSubject{CaseID: caseID.String()})
	if err != nil {
		return err
	}
	mail := MailSendEffect{CaseID: caseID.String(), To: reporter.Address(), Subject: "Re: " + subject, Text: templates.PlainText(text), Auto: true, Nonce: MailNonce()}
	switch data.(type) {
	case templates.TeamResponse, templates.TeamUpdate, templates.TeamReply:
		// A person of the team wrote it: not an automatic message.
		mail.Auto = false
	}
	root, last, err := q.MailThread(ctx, caseID)
	switch {
	case err == nil:
		mail.InReplyTo, mail.References = last, []string{root}
		if last != root {
			mail.References = append(mail.References, last)
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	_, err = EnqueueAt(ctx, q, store.MailLane(caseID), KindMailSend, mail, now, now, urgent)
	return err
}
