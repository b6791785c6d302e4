package handlers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// Anyone can write a reporter's address in From: an email whose sender
// nothing proves (no DKIM or DMARC pass) opens its case marked so in the
// team's notice, is posted marked as from an unverified sender, and meets
// no clock; a verified one is posted plainly.
func TestAnEmailFromAnUnverifiedSenderIsMarkedAndMeetsNothing(t *testing.T) {
	w := newWorld(t, monday)
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test", SenderCheck: "no DKIM signature"})
	notes := strings.Join(w.sends(), "\n")
	if !strings.Contains(notes, "New security report **SR-2026-0001**") || !strings.Contains(notes, "Unverified sender") {
		t.Errorf("the team's notice of a report from an unverified sender: %q", notes)
	}
	posts := w.posts()
	if len(posts) != 1 || !posts[0].Unverified {
		t.Fatalf("the first post: %+v", posts)
	}
	before := map[disclosure.DeadlineKind]time.Time{}
	for _, k := range []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse} {
		before[k] = w.deadline(k).MetAt
	}
	w.clock.Advance(time.Hour)
	w.email(mailReporter, chat.MailRef{MessageID: "forged@example.test", Case: caseID, SenderCheck: "no valid DKIM signature of example.test"})
	w.email(mailReporter, chat.MailRef{MessageID: "signed@example.test", Case: caseID, SenderVerified: true, SenderCheck: "DKIM signature of example.test"})
	posts = w.posts()
	if len(posts) != 3 || !posts[1].Unverified || !posts[1].Reply || posts[2].Unverified {
		t.Errorf("the replies' posts: %+v", posts)
	}
	for k, at := range before {
		if got := w.deadline(k).MetAt; !got.Equal(at) {
			t.Errorf("an email reply moved the %s clock (%v → %v)", k, at, got)
		}
	}
	if _, err := w.store.Deadline(context.Background(), caseID, disclosure.DeadlineUpdate); err == nil {
		t.Error("an email reply started the update clock")
	}
	// A verified sender's new report is announced plainly.
	w.email(disclosure.EmailPerson("other@example.test"), chat.MailRef{MessageID: "other@example.test", SenderVerified: true})
	sends := w.sends()
	if last := sends[len(sends)-1]; strings.Contains(strings.Join(sends, "\n"), "SR-2026-0002") {
		for _, s := range sends {
			if strings.Contains(s, "SR-2026-0002") && strings.Contains(s, "Unverified") {
				t.Errorf("a verified sender's report is marked unverified: %q", s)
			}
		}
	} else {
		t.Errorf("no notice of the verified sender's report (last: %q)", last)
	}
}

// Every answer by email carries its own secret for its Message-ID, so
// nobody can know the Message-ID of an answer before it is sent (and
// plant a copy that makes a retry believe it went out).
func TestEveryMailAnswerCarriesItsOwnSecret(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test", SenderVerified: true})
	w.email(disclosure.EmailPerson("other@example.test"), chat.MailRef{MessageID: "second@example.test", SenderVerified: true})
	mails := w.mails()
	if len(mails) != 2 {
		t.Fatalf("%d answers, want 2", len(mails))
	}
	seen := map[string]bool{}
	for _, m := range mails {
		if len(m.Nonce) != 32 || strings.Trim(m.Nonce, "0123456789abcdef") != "" || seen[m.Nonce] {
			t.Errorf("an answer's secret is %q (seen: %v)", m.Nonce, seen)
		}
		seen[m.Nonce] = true
	}
}
