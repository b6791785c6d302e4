package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

var mailReporter = disclosure.EmailPerson("Reporter@Example.test")

// email delivers a message of the security mailbox.
func (w *world) email(from disclosure.Person, ref MailRef) {
	w.t.Helper()
	w.n++
	if ref.UIDValidity == 0 {
		ref.UIDValidity = 7
	}
	if ref.UID == 0 {
		ref.UID = uint32(w.n)
	}
	if ref.MessageID == "" {
		ref.MessageID = fmt.Sprintf("m%d@example.test", w.n)
	}
	msg := Message{ID: fmt.Sprintf("mail:%d:%d", ref.UIDValidity, ref.UID), Sender: from, Mail: &ref}
	if err := w.h.HandleEmail(context.Background(), msg); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) mails() []store.MailSendEffect {
	effects, _, err := w.store.EffectsOfKind(context.Background(), store.KindMailSend)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]store.MailSendEffect, len(effects))
	for i, e := range effects {
		_ = e.Decode(&out[i])
	}
	return out
}

func (w *world) posts() []store.MailPostEffect {
	effects, _, err := w.store.EffectsOfKind(context.Background(), store.KindMailPost)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]store.MailPostEffect, len(effects))
	for i, e := range effects {
		_ = e.Decode(&out[i])
	}
	return out
}

func TestAnEmailOpensOneCaseAndIsAnsweredInItsThread(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, MailRef{UID: 3, MessageID: "first@example.test"})
	// Handled twice (a crash before the mailbox was marked): once.
	w.email(mailReporter, MailRef{UID: 3, MessageID: "first@example.test"})
	cs, err := w.store.OpenCaseOf(context.Background(), mailReporter)
	if err != nil {
		t.Fatal(err)
	}
	mails, posts := w.mails(), w.posts()
	if len(mails) != 1 || len(posts) != 1 {
		t.Fatalf("%d answers and %d posts, want 1 each", len(mails), len(posts))
	}
	m := mails[0]
	if m.To != "reporter@example.test" || m.Subject != "Re: [SR-2026-0001] Your security report" || m.InReplyTo != "first@example.test" ||
		!strings.Contains(m.Text, "SR-2026-0001") || !strings.Contains(m.Text, "Wed 25 Nov 2026 10:00") {
		t.Errorf("the answer: %+v", m)
	}
	if p := posts[0]; p.CaseID != cs.ID.String() || p.UID != 3 || p.UIDValidity != 7 || p.MessageID != "first@example.test" || p.Reply {
		t.Errorf("the post: %+v", p)
	}
	// The room is the team's: the reporter is not invited.
	rooms, _, _ := w.store.EffectsOfKind(context.Background(), store.KindCreateCaseRoom)
	var room store.CreateCaseRoomEffect
	_ = rooms[0].Decode(&room)
	for _, p := range room.Invite {
		if p.Channel() == disclosure.ChannelEmail {
			t.Errorf("the email reporter is invited to the room: %v", room.Invite)
		}
	}
	if !strings.Contains(strings.Join(w.sends(), "\n"), "sent by email") {
		t.Error("the welcome does not say the report came by email")
	}
}

func TestMachineMadeMailOpensNothing(t *testing.T) {
	w := newWorld(t, monday)
	w.email(disclosure.EmailPerson("mailer-daemon@example.test"), MailRef{Automatic: "mailer daemon"})
	w.email(mailReporter, MailRef{Automatic: "auto-submitted: auto-replied"})
	if n := len(w.mails()) + len(w.posts()) + len(w.sends()); n != 0 {
		t.Errorf("automatic mail made %d effects", n)
	}
	if _, err := w.store.OpenCaseOf(context.Background(), mailReporter); err == nil {
		t.Error("an auto-reply opened a case")
	}
}

func TestRepliesGoToTheCaseRoomAndStrangersAreAnnouncedWithoutText(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, MailRef{MessageID: "first@example.test"})
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	w.email(mailReporter, MailRef{MessageID: "second@example.test", Case: caseID})
	stranger := disclosure.EmailPerson("mallory@evil.test")
	before := len(w.sends())
	w.email(stranger, MailRef{MessageID: "third@evil.test", Case: caseID})
	posts := w.posts()
	if len(posts) != 2 || !posts[1].Reply || posts[1].MessageID != "second@example.test" {
		t.Errorf("posts: %+v", posts)
	}
	sends := w.sends()
	if len(sends) != before+1 || !strings.Contains(sends[len(sends)-1], "not the reporter's") || !strings.Contains(sends[len(sends)-1], "mallory") {
		t.Errorf("the team's note about a stranger: %q", sends[len(sends)-1:])
	}
	if _, err := w.store.OpenCaseOf(context.Background(), stranger); err == nil {
		t.Error("a stranger's mail about a case opened one")
	}
	// The team's answer goes to the reporter by email, in the thread.
	if err := w.store.SetCaseRoom(context.Background(), caseID, caseRoom, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.say(caseRoom, alice, "!sec respond It is a bug; fix next week.")
	w.say(caseRoom, alice, "!sec reply Thanks, more soon.")
	mails := w.mails()
	if len(mails) != 3 {
		t.Fatalf("%d mails, want the answer, the response and the reply", len(mails))
	}
	for _, m := range mails[1:] {
		if m.InReplyTo != "second@example.test" || len(m.References) != 2 || m.References[0] != "first@example.test" {
			t.Errorf("not threaded: %+v", m)
		}
	}
	if !strings.Contains(mails[1].Text, "fix next week") || !strings.Contains(mails[2].Text, "more soon") {
		t.Errorf("texts: %q, %q", mails[1].Text, mails[2].Text)
	}
	if w.deadline(disclosure.DeadlineResponse).MetAt.IsZero() {
		t.Error("respond by email did not meet the detailed response")
	}
}

func TestReplyIsForEmailReporters(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase()
	if got := w.say(caseRoom, alice, "!sec reply hello"); !strings.Contains(got, "reads its case room") {
		t.Errorf("reply in a chat case: %q", got)
	}
	if n := len(w.mails()); n != 0 {
		t.Errorf("%d mails for a chat case", n)
	}
}

func TestAReporterWithoutEncryptionIsToldWhereTheirPrivateAreaIs(t *testing.T) {
	w := newWorld(t, monday)
	p := *w.policy.Get()
	p.Email, p.GitHub = "security@example.test", true
	w.policy.Set(p)
	got := w.say("!plaindm:x", "@plain:x", "I want to report a security issue")
	for _, want := range []string{"SR-2026-0001", "no end-to-end encryption", "!github NAME", "security@example.test", "share no details here"} {
		if !strings.Contains(got, want) {
			t.Errorf("the answer does not say %q: %q", want, got)
		}
	}
	// The case and the team's encrypted room are made all the same.
	if _, err := w.store.OpenCaseOf(context.Background(), "@plain:x"); err != nil {
		t.Fatal(err)
	}
	rooms, _, _ := w.store.EffectsOfKind(context.Background(), store.KindCreateCaseRoom)
	if len(rooms) != 1 {
		t.Errorf("%d case rooms, want 1", len(rooms))
	}
	// A reporter with a device gets the usual answer.
	if got := w.say(dmRoom, reporter, "I want to report a security issue"); strings.Contains(got, "no end-to-end encryption") {
		t.Errorf("a reporter with a device: %q", got)
	}
}

func TestTheEscalationNoteReachesAnEmailReporterByEmail(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, MailRef{MessageID: "first@example.test"})
	w.clock.Advance(49 * time.Hour) // past the acknowledgement
	w.tick()
	mails := w.mails()
	if len(mails) != 2 || !strings.Contains(mails[1].Text, "overdue") || mails[1].InReplyTo != "first@example.test" || !mails[1].Auto {
		t.Fatalf("mails: %+v", mails)
	}
	if strings.Contains(mails[1].Text, "**") {
		t.Errorf("Markdown in a plain-text email: %q", mails[1].Text)
	}
}

func TestAnEmailNamingAChatReportersCaseIsAReportOfItsOwn(t *testing.T) {
	w := newWorld(t, monday)
	w.openCase() // SR-2026-0001, a chat reporter's
	w.email(disclosure.EmailPerson("plain@example.test"), MailRef{MessageID: "p@example.test", Case: disclosure.CaseID{Year: 2026, Seq: 1}})
	cs, err := w.store.OpenCaseOf(context.Background(), disclosure.EmailPerson("plain@example.test"))
	if err != nil || cs.ID.Seq != 2 {
		t.Fatalf("the email opened %v (%v), want SR-2026-0002", cs, err)
	}
	if posts := w.posts(); len(posts) != 1 || posts[0].CaseID != "SR-2026-0002" {
		t.Errorf("posts: %+v", posts)
	}
}

// Anyone can email the security address naming a case: a stranger's
// flood is limited like any sender's, not one team-room note per email.
func TestAStrangersFloodAboutACaseIsLimited(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, MailRef{MessageID: "first@example.test"})
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	stranger := disclosure.EmailPerson("mallory@evil.test")
	before := len(w.sends())
	for i := range 50 {
		w.email(stranger, MailRef{MessageID: fmt.Sprintf("flood%d@evil.test", i), Case: caseID})
	}
	if n := len(w.sends()) - before; n == 0 || n > 10 {
		t.Errorf("50 emails from a stranger made %d team-room notes", n)
	}
}
