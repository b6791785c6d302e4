package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

const mailPassword = "pw-reporter"

// startMail starts a mail server with the security mailbox and the given
// reporters' accounts.
func startMail(t *testing.T, ctx context.Context, tls bool, reporters ...string) *mailtest.Server {
	t.Helper()
	srv, err := mailtest.Start(ctx, t.TempDir(), mailtest.Options{TLS: tls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if err := srv.AddAccount(testbed.MailAddress, testbed.MailPassword); err != nil {
		t.Fatal(err)
	}
	for _, r := range reporters {
		if err := srv.AddAccount(r, mailPassword); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

func canary(name string) string {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

// email is a message to the security address.
type email struct {
	from, subject, messageID, inReplyTo, text string
	extra                                     map[string]string
	files                                     map[string][]byte
}

func (e email) raw(t *testing.T) []byte {
	t.Helper()
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: e.from}})
	h.SetAddressList("To", []*mail.Address{{Address: testbed.MailAddress}})
	h.SetSubject(e.subject)
	h.SetDate(time.Now())
	h.SetMessageID(e.messageID)
	if e.inReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{e.inReplyTo})
		h.SetMsgIDList("References", []string{e.inReplyTo})
	}
	for k, v := range e.extra {
		h.Set(k, v)
	}
	var buf bytes.Buffer
	w, err := mail.CreateWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	var th mail.InlineHeader
	th.Set("Content-Type", "text/plain; charset=utf-8")
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(e.text))
	_ = tw.Close()
	for name, data := range e.files {
		var ah mail.AttachmentHeader
		ah.Set("Content-Type", "application/octet-stream")
		ah.SetFilename(name)
		aw, err := w.CreateAttachment(ah)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = aw.Write(data)
		_ = aw.Close()
	}
	_ = w.Close()
	return buf.Bytes()
}

func deliver(t *testing.T, srv *mailtest.Server, envelopeFrom string, e email) {
	t.Helper()
	if err := srv.Deliver(envelopeFrom, []string{testbed.MailAddress}, e.raw(t)); err != nil {
		t.Fatal(err)
	}
}

// received is a message in a reporter's inbox.
type received struct {
	subject, messageID, autoSubmitted, text string
	inReplyTo, references                   []string
}

func parseReceived(t *testing.T, raw []byte) received {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out received
	out.subject, _ = r.Header.Subject()
	out.messageID, _ = r.Header.MessageID()
	out.inReplyTo, _ = r.Header.MsgIDList("In-Reply-To")
	out.references, _ = r.Header.MsgIDList("References")
	out.autoSubmitted = r.Header.Get("Auto-Submitted")
	if p, err := r.NextPart(); err == nil {
		var b bytes.Buffer
		_, _ = b.ReadFrom(p.Body)
		out.text = b.String()
	}
	return out
}

// inbox waits until a reporter's inbox holds n messages and returns them.
func inbox(t *testing.T, ctx context.Context, srv *mailtest.Server, address string, n int) []received {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msgs, err := srv.WaitMessages(wctx, address, mailPassword, "INBOX", func(m []mailtest.Message) bool { return len(m) >= n })
	if err != nil {
		t.Fatal(err)
	}
	out := make([]received, len(msgs))
	for i, m := range msgs {
		out[i] = parseReceived(t, m.Raw)
	}
	return out
}

// mailboxHandled is the barrier of the mail channel: it waits until the bot
// has marked every message of the security mailbox handled, which it does
// only after its decision on the message committed.
func mailboxHandled(t *testing.T, ctx context.Context, srv *mailtest.Server, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*wait)
	defer cancel()
	if _, err := srv.WaitMessages(wctx, testbed.MailAddress, testbed.MailPassword, "INBOX", func(msgs []mailtest.Message) bool {
		people := 0
		for _, m := range msgs {
			if !m.HasFlag("$SecbotHandled") {
				return false
			}
			// The copies of secbot's own answers, which the SMTP server
			// puts here as it takes them, are not the reporters'.
			if !bytes.Contains(bytes.ToLower(m.Raw), []byte("message-id: <secbot.")) {
				people++
			}
		}
		return people == n
	}); err != nil {
		t.Fatal(err)
	}
}

// fileIn waits for a file the bot posted in room and returns its decrypted data.
func fileIn(t *testing.T, ctx context.Context, u *matrixtest.User, room id.RoomID, bot id.UserID, name string) []byte {
	t.Helper()
	evt, err := u.Wait(ctx, wait, "the file "+name, func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return ok && evt.Type == event.EventMessage && evt.RoomID == room && evt.Sender == bot && msg.MsgType == event.MsgFile && msg.Body == name
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := evt.Content.AsMessage()
	if msg.MsgType != event.MsgFile || msg.File == nil || !evt.Mautrix.WasEncrypted {
		t.Fatalf("%s was posted as %s (encrypted file: %v, event encrypted: %v)", name, msg.MsgType, msg.File != nil, evt.Mautrix.WasEncrypted)
	}
	uri, err := msg.File.URL.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := u.Client.DownloadBytes(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cipher, []byte("ATTACH-CANARY")) {
		t.Errorf("%s is stored on the homeserver in the clear", name)
	}
	if err := msg.File.PrepareForDecryption(); err != nil {
		t.Fatal(err)
	}
	if err := msg.File.DecryptInPlace(cipher); err != nil {
		t.Fatal(err)
	}
	return cipher
}

// noCanary fails if any of the bot's files (database, WAL, log) holds one
// of the canaries.
func noCanary(t *testing.T, dir string, canaries ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, c := range canaries {
			if bytes.Contains(data, []byte(c)) {
				t.Errorf("%s holds the reporter's words (%s)", e.Name(), c)
			}
		}
	}
	if checked < 3 {
		t.Errorf("only %d files checked in %s", checked, dir)
	}
}

// TestAnEmailedReportReachesTheTeamAndOnlyTheTeam is the email channel end
// to end, on maddy (with TLS and a private CA) and Dendrite.
func TestAnEmailedReportReachesTheTeamAndOnlyTheTeam(t *testing.T) {
	ctx := testContext(t)
	reporterAddr := "reporter@" + mailtest.Domain
	srv := startMail(t, ctx, true, reporterAddr)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "mailbot", servedOptions(t, testbed.BotOptions{Mail: srv, MaxAttachment: "8KB"}))

	textCanary, fileCanary, replyCanary, strangerCanary := canary("TEXT-CANARY"), canary("ATTACH-CANARY"), canary("REPLY-CANARY"), canary("STRANGER-CANARY")
	poc := []byte("proof of concept " + fileCanary)
	deliver(t, srv, reporterAddr, email{
		from: reporterAddr, subject: "Heap overflow " + textCanary, messageID: "report1@" + mailtest.Domain,
		text:  "The parser overflows: " + textCanary + "\n",
		files: map[string][]byte{"poc.txt": poc, "core.dump": bytes.Repeat([]byte("x"), 20<<10)},
	})

	// The reporter's answer, threaded to their message.
	answers := inbox(t, ctx, srv, reporterAddr, 1)
	ack := answers[0]
	caseID := caseIDPattern.FindString(ack.subject)
	if caseID == "" || !strings.Contains(ack.subject, "["+caseID+"]") {
		t.Fatalf("the answer's subject names no case: %q", ack.subject)
	}
	if len(ack.inReplyTo) != 1 || ack.inReplyTo[0] != "report1@"+mailtest.Domain || len(ack.references) == 0 || ack.autoSubmitted != "auto-replied" {
		t.Errorf("the answer is not threaded as an automatic reply: %+v", ack)
	}
	for _, want := range []string{caseID, "acknowledge your report by", "detailed response", "reply to this email"} {
		if !strings.Contains(ack.text, want) {
			t.Errorf("the answer does not say %q:\n%s", want, ack.text)
		}
	}

	// The team reads the text and the file in the encrypted case room.
	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	posted := waitMessage(t, ctx, bed.Alice, room, bot.UserID, textCanary)
	if !posted.Mautrix.WasEncrypted {
		t.Error("the email's text was posted unencrypted")
	}
	if body := posted.Content.AsMessage().Body; !strings.Contains(body, reporterAddr) || !strings.Contains(body, "core.dump") {
		t.Errorf("the post does not name the sender and the file left in the mailbox: %q", body)
	}
	if got := fileIn(t, ctx, bed.Alice, room, bot.UserID, "poc.txt"); !bytes.Equal(got, poc) {
		t.Errorf("the attachment decrypts to %q", got)
	}

	// The reporter replies in the thread: the reply lands in the room.
	deliver(t, srv, reporterAddr, email{
		from: reporterAddr, subject: "Re: " + ack.subject, messageID: "report2@" + mailtest.Domain, inReplyTo: ack.messageID,
		text: "More: " + replyCanary + "\n",
	})
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, replyCanary)

	// The team's detailed response arrives by email, threaded to the reply.
	say(t, ctx, bed.Alice, room, "!sec respond We confirm the overflow; a fix is coming.")
	answers = inbox(t, ctx, srv, reporterAddr, 2)
	resp := answers[1]
	if !strings.Contains(resp.subject, "["+caseID+"]") || len(resp.inReplyTo) != 1 || resp.inReplyTo[0] != "report2@"+mailtest.Domain ||
		!strings.Contains(resp.text, "a fix is coming") || resp.autoSubmitted != "" || strings.Contains(resp.text, "**") {
		t.Errorf("the response by email: %+v", resp)
	}

	// So do the team's updates and replies; what the team writes in the
	// room otherwise stays there.
	say(t, ctx, bed.Alice, room, "Between us: the fix touches the allocator.")
	say(t, ctx, bed.Alice, room, "!sec update The fix is in review.")
	say(t, ctx, bed.Alice, room, "!sec reply Could you confirm the version you tested?")
	answers = inbox(t, ctx, srv, reporterAddr, 4)
	if !strings.Contains(answers[2].text, "in review") || !strings.Contains(answers[3].text, "confirm the version") {
		t.Errorf("the update and the reply by email: %q, %q", answers[2].text, answers[3].text)
	}

	// An auto-reply and a bounce open nothing; another address writing
	// about the case is announced to the team without its text.
	deliver(t, srv, "ooo@elsewhere.test", email{from: "ooo@elsewhere.test", subject: "Out of office", messageID: "ooo@elsewhere.test",
		text: "I am away", extra: map[string]string{"Auto-Submitted": "auto-replied"}})
	deliver(t, srv, "", email{from: "MAILER-DAEMON@elsewhere.test", subject: "Undelivered Mail", messageID: "bounce@elsewhere.test", text: "bounce"})
	deliver(t, srv, "mallory@elsewhere.test", email{from: "mallory@elsewhere.test", subject: "Re: [" + caseID + "] about that", messageID: "m@elsewhere.test",
		text: strangerCanary})
	note := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "not the reporter's")
	if body := note.Content.AsMessage().Body; !strings.Contains(body, caseID) || strings.Contains(body, strangerCanary) {
		t.Errorf("the note about another address: %q", body)
	}
	mailboxHandled(t, ctx, srv, 5)
	bed.Settle(t, ctx, bot, bed.Alice)
	if rooms := invitesFrom(bed.Alice, bot.UserID); len(rooms) != 1 {
		t.Errorf("the team was invited to %d case rooms, want 1", len(rooms))
	}
	var newCases int
	for _, b := range messagesFrom(bed.Alice, bed.TeamRoom, bot.UserID) {
		if strings.Contains(b, "New security report") {
			newCases++
		}
	}
	if newCases != 1 {
		t.Errorf("the team room heard of %d new cases, want 1", newCases)
	}
	got := inbox(t, ctx, srv, reporterAddr, 4)
	if len(got) != 4 {
		t.Errorf("the reporter got %d emails, want 4", len(got))
	}
	for _, m := range got {
		if strings.Contains(m.text, "allocator") {
			t.Error("what the team wrote in the room was mailed to the reporter")
		}
	}
	for _, b := range messagesFrom(bed.Alice, room, bot.UserID) {
		if strings.Contains(b, strangerCanary) {
			t.Error("the stranger's text was posted")
		}
	}
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	noCanary(t, bot.Dir, textCanary, fileCanary, replyCanary, strangerCanary)
}

// A crash after the answer was sent but before the outbox recorded it must
// not send it twice: the retry finds the answer in the Sent folder by its
// Message-ID. Likewise the post into the case room is found by its marker.
func TestCrashAfterSendingMailsTheAnswerOnce(t *testing.T) {
	for _, point := range []string{"outbox.after.mail.send", "outbox.after.mail.post", "handler.before_commit"} {
		t.Run(point, func(t *testing.T) {
			ctx := testContext(t)
			reporterAddr := "crash@" + mailtest.Domain
			srv := startMail(t, ctx, false, reporterAddr)
			bed.Alice.SetAutoJoin(true)
			t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
			name := "mailcrash" + strings.NewReplacer(".", "", "_", "").Replace(point)
			bot := startBot(t, ctx, name, servedOptions(t, testbed.BotOptions{Mail: srv}))
			// In the team room first, so that the crash comes in the email's handling.
			if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
				t.Fatal(err)
			}
			if err := bot.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := bot.Start(crashpoint.Env + "=" + point); err != nil {
				t.Fatal(err)
			}
			text := canary("CRASH-TEXT")
			deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: "a vulnerability", messageID: "crash1@" + mailtest.Domain, text: text})
			crashedAt(t, bot, point)
			restart(t, bot)
			inbox(t, ctx, srv, reporterAddr, 1)
			room := caseInvite(t, ctx, bed.Alice, bot.UserID)
			waitMessage(t, ctx, bed.Alice, room, bot.UserID, text)
			mailboxHandled(t, ctx, srv, 1)
			bed.Settle(t, ctx, bot, bed.Alice)
			if got := inbox(t, ctx, srv, reporterAddr, 1); len(got) != 1 {
				t.Errorf("the reporter got %d answers, want 1", len(got))
			}
			posts := 0
			for _, b := range messagesFrom(bed.Alice, room, bot.UserID) {
				if strings.Contains(b, text) {
					posts++
				}
			}
			if posts != 1 {
				t.Errorf("the email was posted %d times, want 1", posts)
			}
			if rooms := invitesFrom(bed.Alice, bot.UserID); len(rooms) != 1 {
				t.Errorf("%d case rooms, want 1", len(rooms))
			}
		})
	}
}

// TestKillsWhileReportersEmailLoseNothingAndDoubleNothing kills secbot
// (SIGKILL) at random moments while several reporters email the security
// address, restarting it each time. Afterwards each reporter has exactly
// one case (one room, one note to the team), one answer, and their email
// posted once.
func TestKillsWhileReportersEmailLoseNothingAndDoubleNothing(t *testing.T) {
	ctx := testContext(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)
	const reporters, kills = 10, 20
	var addrs []string
	for i := range reporters {
		addrs = append(addrs, fmt.Sprintf("killed%d@%s", i, mailtest.Domain))
	}
	srv := startMail(t, ctx, false, addrs...)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "mailkillbot", servedOptions(t, testbed.BotOptions{Mail: srv}))
	// Set up (its device keys uploaded, in the team room) before the kills.
	if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
		t.Fatal(err)
	}
	texts := make([]string, reporters)
	next := 0
	for k := range kills {
		if next < reporters && (k%3 == 0 || kills-k <= reporters-next) {
			texts[next] = canary(fmt.Sprintf("KILL-TEXT-%d", next))
			deliver(t, srv, addrs[next], email{from: addrs[next], subject: "security issue", messageID: fmt.Sprintf("kill%d@%s", next, mailtest.Domain), text: texts[next]})
			next++
		}
		// Not a quiet-period wait: a random moment to kill at, the scenario.
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		if err := bot.Kill(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		if err := bot.Start(); err != nil {
			t.Fatalf("restart %d: %v", k, err)
		}
	}
	if next != reporters {
		t.Fatalf("only %d of %d reporters wrote", next, reporters)
	}
	const settle = 90 * time.Second
	for i, a := range addrs {
		sctx, cancel := context.WithTimeout(ctx, settle)
		_, err := srv.WaitMessages(sctx, a, mailPassword, "INBOX", func(m []mailtest.Message) bool { return len(m) >= 1 })
		cancel()
		if err != nil {
			t.Fatalf("reporter %d: %v", i, err)
		}
	}
	mailboxHandled(t, ctx, srv, reporters)
	for _, text := range texts {
		if _, err := bed.Alice.WaitMessage(ctx, settle, "", bot.UserID, text); err != nil {
			t.Fatal(err)
		}
	}
	bed.Settle(t, ctx, bot, bed.Alice)
	for i, a := range addrs {
		// One answer, delivered once: a kill between the server taking the
		// answer and its filing in Sent is caught by the copy the same
		// transaction put in the security mailbox.
		if got := inbox(t, ctx, srv, a, 1); len(got) != 1 {
			t.Errorf("reporter %d got %d answers, want 1", i, len(got))
		}
	}
	if rooms := invitesFrom(bed.Alice, bot.UserID); len(rooms) != reporters {
		t.Errorf("the team was invited to %d case rooms, want %d", len(rooms), reporters)
	}
	posts := map[string]int{}
	for _, evt := range bed.Alice.Events() {
		if evt.Type != event.EventMessage || evt.Sender != bot.UserID {
			continue
		}
		body, _ := matrixtest.Body(evt)
		for _, text := range texts {
			if strings.Contains(body, text) {
				posts[text]++
			}
		}
	}
	for i, text := range texts {
		if posts[text] != 1 {
			t.Errorf("reporter %d's email was posted %d times, want 1", i, posts[text])
		}
	}
	sent, err := srv.Messages(testbed.MailAddress, testbed.MailPassword, "Sent")
	if err != nil || len(sent) != reporters {
		t.Errorf("Sent holds %d messages (%v), want %d", len(sent), err, reporters)
	}
}

// A Matrix reporter whose account has no encryption device still gets a
// case and the team its encrypted room; the DM tells them that their
// private area is the GitHub advisory or email, and nothing private is
// sent unencrypted.
func TestAReporterWithoutEncryptionIsPointedToTheirPrivateArea(t *testing.T) {
	ctx := testContext(t)
	srv := startMail(t, ctx, false)
	gh, err := testbed.NewGitHub(false)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "plainbot", testbed.BotOptions{Mail: srv, GitHub: gh})
	cli, err := matrixtest.NewPlain(ctx, bed.Server, "plainreporter")
	if err != nil {
		t.Fatal(err)
	}
	dm, err := matrixtest.PlainDM(ctx, cli, bot.UserID, wait)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.SendText(ctx, dm, "I want to report a security issue"); err != nil {
		t.Fatal(err)
	}
	var answer string
	deadline := time.Now().Add(wait)
	for answer == "" {
		msgs, err := matrixtest.PlainMessages(ctx, cli, dm, bot.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 0 {
			answer = msgs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer in the DM")
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	caseID := caseIDPattern.FindString(answer)
	for _, want := range []string{"no end-to-end encryption", "!github NAME", testbed.MailAddress, "share no details here"} {
		if caseID == "" || !strings.Contains(answer, want) {
			t.Errorf("the DM answer does not say %q (or names no case): %q", want, answer)
		}
	}
	// The team has the case's encrypted room all the same.
	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "Security report "+caseID)
	state, err := bed.Alice.Client.State(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if enc := state[event.StateEncryption][""]; enc == nil || enc.Content.AsEncryption().Algorithm != id.AlgorithmMegolmV1 {
		t.Error("the case room is not encrypted")
	}
	bed.Settle(t, ctx, bot, bed.Alice)
	msgs, err := matrixtest.PlainMessages(ctx, cli, dm, bot.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Errorf("the reporter got %d DM messages, want the one answer: %q", len(msgs), msgs)
	}
}
