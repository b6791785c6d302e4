package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/templates"
)

var mailReporter = disclosure.EmailPerson("Reporter@Example.test")

// email delivers a message of the security mailbox.
func (w *world) email(from disclosure.Person, ref chat.MailRef) {
	w.t.Helper()
	if err := w.tryEmail(from, ref); err != nil {
		w.t.Fatal(err)
	}
}

// tryEmail delivers a message of the security mailbox and returns what
// the handler returned.
func (w *world) tryEmail(from disclosure.Person, ref chat.MailRef) error {
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
	msg := chat.Message{ID: fmt.Sprintf("mail:%d:%d", ref.UIDValidity, ref.UID), Sender: from, Mail: &ref}
	return w.h.HandleEmail(context.Background(), msg)
}

func (w *world) mails() []outbox.MailSendEffect {
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindMailSend)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]outbox.MailSendEffect, len(effects))
	for i, e := range effects {
		_ = e.Decode(&out[i])
	}
	return out
}

func (w *world) posts() []outbox.MailPostEffect {
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindMailPost)
	if err != nil {
		w.t.Fatal(err)
	}
	out := make([]outbox.MailPostEffect, len(effects))
	for i, e := range effects {
		_ = e.Decode(&out[i])
	}
	return out
}

func TestAnEmailOpensOneCaseAndIsAnsweredInItsThread(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, chat.MailRef{UID: 3, MessageID: "first@example.test"})
	// Handled twice (a crash before the mailbox was marked): once.
	w.email(mailReporter, chat.MailRef{UID: 3, MessageID: "first@example.test"})
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
	rooms, _, _ := w.store.EffectsOfKind(context.Background(), outbox.KindCreateCaseRoom)
	var room outbox.CreateCaseRoomEffect
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
	w.email(disclosure.EmailPerson("mailer-daemon@example.test"), chat.MailRef{Automatic: "mailer daemon"})
	w.email(mailReporter, chat.MailRef{Automatic: "auto-submitted: auto-replied"})
	if n := len(w.mails()) + len(w.posts()) + len(w.sends()); n != 0 {
		t.Errorf("automatic mail made %d effects", n)
	}
	if _, err := w.store.OpenCaseOf(context.Background(), mailReporter); err == nil {
		t.Error("an auto-reply opened a case")
	}
}

func TestRepliesGoToTheCaseRoomAndStrangersAreAnnouncedWithoutText(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test"})
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	w.email(mailReporter, chat.MailRef{MessageID: "second@example.test", Case: caseID})
	stranger := disclosure.EmailPerson("mallory@evil.test")
	before := len(w.sends())
	w.email(stranger, chat.MailRef{MessageID: "third@evil.test", Case: caseID})
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
	got := w.say("matrix:!plaindm:x", "matrix:@plain:x", "I want to report a security issue")
	for _, want := range []string{"SR-2026-0001", "no end-to-end encryption", "!github NAME", "security@example.test", "share no details here"} {
		if !strings.Contains(got, want) {
			t.Errorf("the answer does not say %q: %q", want, got)
		}
	}
	// The case and the team's encrypted room are made all the same.
	if _, err := w.store.OpenCaseOf(context.Background(), "matrix:@plain:x"); err != nil {
		t.Fatal(err)
	}
	rooms, _, _ := w.store.EffectsOfKind(context.Background(), outbox.KindCreateCaseRoom)
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
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test"})
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
	w.email(disclosure.EmailPerson("plain@example.test"), chat.MailRef{MessageID: "p@example.test", Case: disclosure.CaseID{Year: 2026, Seq: 1}})
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
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test"})
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	stranger := disclosure.EmailPerson("mallory@evil.test")
	before := len(w.sends())
	for i := range 50 {
		if err := w.tryEmail(stranger, chat.MailRef{MessageID: fmt.Sprintf("flood%d@evil.test", i), Case: caseID}); err != nil && !errors.Is(err, chat.ErrLater) {
			t.Fatal(err)
		}
	}
	if n := len(w.sends()) - before; n == 0 || n > 10 {
		t.Errorf("50 emails from a stranger made %d team-room notes", n)
	}
}

// A sender's flood is delayed, never dropped: past the limit an email is
// not handled (nothing committed, so it stays unmarked in the mailbox)
// and is handled when it is handed over again after the window.
func TestAFloodOfEmailIsDelayedNotDropped(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	var later []chat.MailRef
	notes := func() int {
		n := 0
		for _, s := range w.sends() {
			if strings.Contains(s, "sending many emails") {
				n++
			}
		}
		return n
	}
	for i := range 8 {
		ref := chat.MailRef{UIDValidity: 7, UID: uint32(100 + i), MessageID: fmt.Sprintf("poc%d@example.test", i)}
		err := w.tryEmail(mailReporter, ref)
		var le *chat.LaterError
		switch {
		case i < ChatterBurst && err != nil:
			t.Fatalf("email %d: %v", i, err)
		case i >= ChatterBurst && !errors.As(err, &le):
			t.Fatalf("email %d past the limit: %v, want a chat.LaterError", i, err)
		case i >= ChatterBurst:
			if !le.Until.After(w.clock.Now()) || le.Until.After(w.clock.Now().Add(ChatterWindow)) {
				t.Errorf("email %d waits until %v", i, le.Until)
			}
			if handled, err := w.store.WasHandled(ctx, fmt.Sprintf("mail:7:%d", ref.UID)); err != nil || handled {
				t.Errorf("a delayed email is marked handled (%v)", err)
			}
			later = append(later, ref)
		}
	}
	if n := len(w.posts()); n != ChatterBurst {
		t.Fatalf("%d posts before the window ends, want %d", n, ChatterBurst)
	}
	if n := notes(); n != 1 {
		t.Errorf("%d notes to the team about the flood, want 1", n)
	}
	// Handed over again within the window: still later, no second note.
	for _, ref := range later {
		if err := w.tryEmail(mailReporter, ref); !errors.Is(err, chat.ErrLater) {
			t.Fatalf("again within the window: %v", err)
		}
	}
	w.clock.Advance(ChatterWindow)
	for _, ref := range later {
		w.email(mailReporter, ref)
	}
	posts := w.posts()
	if len(posts) != 8 {
		t.Fatalf("%d posts, want all 8 emails", len(posts))
	}
	for i, p := range posts {
		if p.MessageID != fmt.Sprintf("poc%d@example.test", i) || p.CaseID != "SR-2026-0001" {
			t.Errorf("post %d: %+v", i, p)
		}
	}
	if n := notes(); n != 1 {
		t.Errorf("%d notes to the team about the flood, want 1 (once an hour)", n)
	}
	if n := len(w.mails()); n != 1 {
		t.Errorf("%d answers by email, want 1", n)
	}
}

// Mail a program sent (a coordination system, a bug-bounty platform, a
// list) gets no automatic answer but is never lost: a new one opens a
// case marked machine-sent, one in a case's thread is posted.
func TestMachineSentMailOpensACaseWithoutAnAnswer(t *testing.T) {
	w := newWorld(t, monday)
	platform := disclosure.EmailPerson("notifications@bounty.test")
	w.email(platform, chat.MailRef{MessageID: "b1@bounty.test", Automatic: "auto-submitted: auto-generated", Kind: chat.MailMachine})
	cs, err := w.store.OpenCaseOf(context.Background(), platform)
	if err != nil {
		t.Fatalf("machine-sent mail opened no case: %v", err)
	}
	if n := len(w.mails()); n != 0 {
		t.Errorf("machine-sent mail was answered %d times", n)
	}
	var note string
	for _, s := range w.sends() {
		if strings.Contains(s, "New security report") {
			note = templates.PlainText(s)
		}
	}
	if !strings.Contains(note, "machine-sent") || !strings.Contains(note, "auto-generated") {
		t.Errorf("the team's notice does not say it is machine-sent: %q", note)
	}
	// A list's mail in the case's thread is posted, not answered.
	w.email(platform, chat.MailRef{MessageID: "b2@bounty.test", Automatic: "mailing list", Kind: chat.MailMachine, Case: cs.ID})
	posts := w.posts()
	if len(posts) != 2 || posts[0].Machine != "auto-submitted: auto-generated" || posts[1].Machine != "mailing list" || !posts[1].Reply {
		t.Errorf("posts: %+v", posts)
	}
	if n := len(w.mails()); n != 0 {
		t.Errorf("machine-sent mail was answered %d times", n)
	}
}

// An auto-reply is posted in the case it answers and opens nothing; a
// bounce of our mail about a case is told to its room; a bounce of mail
// that is not ours, and our own mail, open nothing.
func TestAutoRepliesAndBounces(t *testing.T) {
	w := newWorld(t, monday)
	w.email(mailReporter, chat.MailRef{MessageID: "first@example.test"})
	caseID := disclosure.CaseID{Year: 2026, Seq: 1}
	sends, mails := len(w.sends()), len(w.mails())
	w.email(mailReporter, chat.MailRef{MessageID: "ooo1@example.test", Automatic: "auto-submitted: auto-replied", Kind: chat.MailAutoReply})
	w.email(disclosure.EmailPerson("mailer-daemon@mx.test"), chat.MailRef{MessageID: "dsn1@mx.test", Automatic: "delivery or read report", Kind: chat.MailBounce})
	w.email(disclosure.EmailPerson("security@example.test"), chat.MailRef{MessageID: "own@example.test", Automatic: "secbot's own mail", Kind: chat.MailIgnored})
	w.email(disclosure.EmailPerson("mailer-daemon@mx.test"), chat.MailRef{MessageID: "dsn2@mx.test", Automatic: "delivery or read report", Kind: chat.MailBounce, BounceOf: disclosure.CaseID{Year: 2026, Seq: 9}})
	if n := len(w.posts()); n != 1 || len(w.sends()) != sends || len(w.mails()) != mails {
		t.Fatalf("mail that is none of a case's made effects: %d posts, %d notes, %d mails", n, len(w.sends())-sends, len(w.mails())-mails)
	}
	w.email(mailReporter, chat.MailRef{MessageID: "ooo2@example.test", Automatic: "auto-submitted: auto-replied", Kind: chat.MailAutoReply, Case: caseID})
	if posts := w.posts(); len(posts) != 2 || posts[1].MessageID != "ooo2@example.test" || posts[1].Machine == "" {
		t.Errorf("an auto-reply in the case's thread: %+v", posts)
	}
	w.email(disclosure.EmailPerson("mailer-daemon@mx.test"), chat.MailRef{MessageID: "dsn3@mx.test", Automatic: "delivery or read report", Kind: chat.MailBounce, BounceOf: caseID})
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	var p outbox.SendEffect
	_ = effects[len(effects)-1].Decode(&p)
	if p.To.CaseRoomOf != caseID.String() || !strings.Contains(p.Markdown, "delivery report") || !strings.Contains(templates.PlainText(p.Markdown), "mailer-daemon@mx.test") {
		t.Errorf("the bounce's note: %+v", p)
	}
	if len(w.mails()) != mails {
		t.Error("automatic mail was answered")
	}
	if _, err := w.store.OpenCaseOf(context.Background(), disclosure.EmailPerson("mailer-daemon@mx.test")); err == nil {
		t.Error("a bounce opened a case")
	}
}
