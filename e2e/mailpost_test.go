package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// A reporter's backlog (8 emails at once, past the 5 a minute one sender
// is handled at) is delayed, never dropped: all 8 reach the case room.
func TestAFloodOfEmailFromOneReporterIsPostedInFull(t *testing.T) {
	ctx := testContext(t)
	reporterAddr := "backlog@" + mailtest.Domain
	srv := startMail(t, ctx, false, reporterAddr)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "floodmailbot", servedOptions(t, testbed.BotOptions{Mail: srv}))
	if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 8)
	for i := range texts {
		texts[i] = canary(fmt.Sprintf("BACKLOG-%d", i))
		deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: fmt.Sprintf("PoC part %d", i+1),
			messageID: fmt.Sprintf("backlog%d@%s", i, mailtest.Domain), text: texts[i]})
	}
	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	note := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "sending many emails")
	if body := note.Content.AsMessage().Body; !strings.Contains(body, "none is dropped") {
		t.Errorf("the team's note about the flood: %q", body)
	}
	// The sixth waits for the sender's minute to end: a barrier on the
	// post itself, with the window's time on top of the usual wait.
	for _, text := range texts {
		if _, err := bed.Alice.WaitMessage(ctx, wait+2*time.Minute, room, bot.UserID, text); err != nil {
			t.Fatal(err)
		}
	}
	mailboxHandled(t, ctx, srv, len(texts))
	bed.Settle(t, ctx, bot, bed.Alice)
	posts := map[string]int{}
	for _, b := range messagesFrom(bed.Alice, room, bot.UserID) {
		for _, text := range texts {
			if strings.Contains(b, text) {
				posts[text]++
			}
		}
	}
	for i, text := range texts {
		if posts[text] != 1 {
			t.Errorf("email %d was posted %d times, want 1", i+1, posts[text])
		}
	}
	if got := inbox(t, ctx, srv, reporterAddr, 1); len(got) != 1 {
		t.Errorf("the reporter got %d answers, want 1", len(got))
	}
}

// A 23 KiB text (which makes an encrypted event over the homeserver's
// 64 KiB) is posted as a file, not refused and dropped; every text part
// of the email reaches the room, and a file's name is shown and uploaded
// neutralised.
func TestALongEmailTextIsPostedAsAFile(t *testing.T) {
	ctx := testContext(t)
	reporterAddr := "longtext@" + mailtest.Domain
	srv := startMail(t, ctx, false, reporterAddr)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "longmailbot", servedOptions(t, testbed.BotOptions{Mail: srv}))

	head, second := canary("LONG-HEAD"), canary("SECOND-TEXT")
	var long strings.Builder
	long.WriteString(head + "\n")
	for long.Len() < 23<<10 {
		long.WriteString("if (len < sizeof(buf) && p->next != NULL) { memcpy(buf, p->data, len); } // \"overflow\" & more\n")
	}
	text := long.String()
	var raw bytes.Buffer
	raw.WriteString("From: " + reporterAddr + "\r\nTo: " + testbed.MailAddress + "\r\nSubject: long report\r\nMessage-ID: <long@" + mailtest.Domain + ">\r\n")
	raw.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	raw.WriteString("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(text, "\n", "\r\n") + "\r\n")
	raw.WriteString("--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n" + second + "\r\n")
	raw.WriteString("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''..%2Fevil%E2%80%AEtxt.exe\r\n\r\nMZ ATTACH-CANARY\r\n")
	raw.WriteString("--b--\r\n")
	if err := srv.Deliver(reporterAddr, []string{testbed.MailAddress}, raw.Bytes()); err != nil {
		t.Fatal(err)
	}

	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	notice := waitMessage(t, ctx, bed.Alice, room, bot.UserID, "Report by email")
	body := notice.Content.AsMessage().Body
	if !strings.Contains(body, "message.txt") || !strings.Contains(body, "2 text parts") || !strings.Contains(body, "__evil_txt.exe") || strings.ContainsRune(body, '\u202e') {
		t.Errorf("the head of the post: %q", body)
	}
	got := fileIn(t, ctx, bed.Alice, room, bot.UserID, "message.txt")
	if string(got) != text {
		t.Errorf("message.txt holds %d bytes, want the %d of the text", len(got), len(text))
	}
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, second)
	if data := fileIn(t, ctx, bed.Alice, room, bot.UserID, "__evil_txt.exe"); !bytes.Equal(data, []byte("MZ ATTACH-CANARY")) {
		t.Errorf("the attachment decrypts to %q", data)
	}
	for _, evt := range bed.Alice.Events() {
		if msg, ok := evt.Content.Parsed.(*event.MessageEventContent); ok && evt.RoomID == room && msg.MsgType == event.MsgFile && msg.FileName != "" &&
			(strings.Contains(msg.FileName, "/") || strings.ContainsRune(msg.FileName, '\u202e')) {
			t.Errorf("a file was uploaded as %q", msg.FileName)
		}
	}
	mailboxHandled(t, ctx, srv, 1)
	bed.Settle(t, ctx, bot, bed.Alice)
	for _, b := range messagesFrom(bed.Alice, bed.TeamRoom, bot.UserID) {
		if strings.Contains(b, "could not be posted") {
			t.Errorf("the team was told an email could not be posted: %q", b)
		}
	}
	if strings.Contains(bot.Log(), "M_BAD_JSON") || strings.Contains(bot.Log(), "event is too large") {
		t.Error("the homeserver refused an event")
	}
}

// A crash in the middle of an email's post (after a part was made, before
// or after it was recorded) goes on where it stopped: each part once.
func TestACrashInTheMiddleOfAPostPostsEachPartOnce(t *testing.T) {
	for _, point := range []string{"post.before_record", "post.after_record"} {
		t.Run(point, func(t *testing.T) {
			ctx := testContext(t)
			reporterAddr := "midpost@" + mailtest.Domain
			srv := startMail(t, ctx, false, reporterAddr)
			bed.Alice.SetAutoJoin(true)
			t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
			name := "midpost" + strings.NewReplacer(".", "", "_", "").Replace(point)
			bot := startBot(t, ctx, name, servedOptions(t, testbed.BotOptions{Mail: srv}))
			if err := bed.Alice.WaitJoined(ctx, wait, bed.TeamRoom, bot.UserID); err != nil {
				t.Fatal(err)
			}
			if err := bot.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := bot.Start(crashpoint.Env + "=" + point); err != nil {
				t.Fatal(err)
			}
			text := canary("MIDPOST-TEXT")
			files := map[string][]byte{"a.txt": []byte("file a"), "b.txt": []byte("file b"), "c.txt": []byte("file c")}
			deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: "three files", messageID: "midpost@" + mailtest.Domain, text: text, files: files})
			crashedAt(t, bot, point)
			restart(t, bot)
			room := caseInvite(t, ctx, bed.Alice, bot.UserID)
			waitMessage(t, ctx, bed.Alice, room, bot.UserID, text)
			for name, data := range files {
				if got := fileIn(t, ctx, bed.Alice, room, bot.UserID, name); !bytes.Equal(got, data) {
					t.Errorf("%s decrypts to %q", name, got)
				}
			}
			mailboxHandled(t, ctx, srv, 1)
			bed.Settle(t, ctx, bot, bed.Alice)
			seen := map[string]int{}
			for _, evt := range bed.Alice.Events() {
				if evt.RoomID != room || evt.Sender != bot.UserID || evt.Type != event.EventMessage {
					continue
				}
				msg := evt.Content.AsMessage()
				switch {
				case msg.MsgType == event.MsgFile:
					seen[msg.Body]++
				case strings.Contains(msg.Body, text):
					seen["text"]++
				}
			}
			for _, part := range []string{"text", "a.txt", "b.txt", "c.txt"} {
				if seen[part] != 1 {
					t.Errorf("%s was posted %d times, want 1", part, seen[part])
				}
			}
		})
	}
}

// Mail a program sent opens a case marked machine-sent and gets no
// answer; a bounce of secbot's answer is told to the case room; a bounce
// of mail that is not ours opens nothing.
func TestMachineMailOpensACaseAndABounceIsToldToTheCaseRoom(t *testing.T) {
	ctx := testContext(t)
	reporterAddr, platformAddr := "bounced@"+mailtest.Domain, "cert@"+mailtest.Domain
	srv := startMail(t, ctx, false, reporterAddr, platformAddr)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "machinemailbot", servedOptions(t, testbed.BotOptions{Mail: srv}))

	machineText := canary("MACHINE-TEXT")
	deliver(t, srv, platformAddr, email{from: platformAddr, subject: "VU#4242 new vulnerability note", messageID: "vu4242@" + mailtest.Domain,
		text: machineText, extra: map[string]string{"Auto-Submitted": "auto-generated", "List-Id": "<vince.cert.test>"}})
	machineRoom := caseInvite(t, ctx, bed.Alice, bot.UserID)
	waitMessage(t, ctx, bed.Alice, machineRoom, bot.UserID, machineText)
	notice := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "machine-sent")
	if body := notice.Content.AsMessage().Body; !strings.Contains(body, "New security report") || !strings.Contains(body, platformAddr) {
		t.Errorf("the team's notice of a machine-sent report: %q", body)
	}

	personText := canary("PERSON-TEXT")
	deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: "a vulnerability", messageID: "person@" + mailtest.Domain, text: personText})
	ack := inbox(t, ctx, srv, reporterAddr, 1)[0]
	caseID := caseIDPattern.FindString(ack.subject)
	posted, err := bed.Alice.WaitMessage(ctx, wait, "", bot.UserID, personText)
	if err != nil {
		t.Fatal(err)
	}
	room := posted.RoomID
	if room == machineRoom || !strings.Contains(posted.Content.AsMessage().Body, caseID) {
		t.Fatalf("the person's report was posted in %s: %q", room, posted.Content.AsMessage().Body)
	}
	dsn := func(id, returnedID string) []byte {
		return []byte("From: MAILER-DAEMON@mx.elsewhere.test\r\nTo: " + testbed.MailAddress + "\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + id + ">\r\n" +
			"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n" +
			"--r\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n" +
			"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.elsewhere.test\r\n\r\nFinal-Recipient: rfc822; " + reporterAddr + "\r\nAction: failed\r\nStatus: 5.2.2\r\n" +
			"--r\r\nContent-Type: message/rfc822\r\n\r\nFrom: " + testbed.MailAddress + "\r\nTo: " + reporterAddr + "\r\nMessage-ID: <" + returnedID + ">\r\nSubject: " + ack.subject + "\r\n\r\nYour report.\r\n--r--\r\n")
	}
	if err := srv.Deliver("", []string{testbed.MailAddress}, dsn("dsn-others@mx.elsewhere.test", "someone-else@elsewhere.test")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Deliver("", []string{testbed.MailAddress}, dsn("dsn-ours@mx.elsewhere.test", ack.messageID)); err != nil {
		t.Fatal(err)
	}
	note := waitMessage(t, ctx, bed.Alice, room, bot.UserID, "delivery report")
	if body := note.Content.AsMessage().Body; !strings.Contains(body, caseID) || strings.Contains(body, "could not deliver") {
		t.Errorf("the case room's note of the bounce: %q", body)
	}
	// The bounce of our answer quotes its Message-ID, so the barrier counts
	// it among secbot's own copies: three others.
	mailboxHandled(t, ctx, srv, 3)
	bed.Settle(t, ctx, bot, bed.Alice)
	if rooms := invitesFrom(bed.Alice, bot.UserID); len(rooms) != 2 {
		t.Errorf("%d case rooms, want 2 (the bounces open none)", len(rooms))
	}
	if got, err := srv.Messages(platformAddr, mailPassword, "INBOX"); err != nil || len(got) != 0 {
		t.Errorf("the machine sender got %d answers (%v), want none", len(got), err)
	}
	bounces := 0
	for _, evt := range bed.Alice.Events() {
		if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot.UserID && strings.Contains(body, "delivery report") {
			bounces++
		}
	}
	if bounces != 1 {
		t.Errorf("%d notes of a bounce, want 1 (the other bounce is not of our mail)", bounces)
	}
}
