package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mailtest "github.com/enarx/secbot/internal/testenv/maddy"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// An email report to a team on Rocket.Chat, through serve on the
// stand-in and a real maddy: the email's text is posted into the case's
// private group (not the team room, not refused), as it is and once, in
// messages the server takes (under its 5000 limit); its file is named and
// left in the mailbox; the text is in no request but those posts, and
// neither in the database nor the log.
func TestAnEmailIsPostedIntoItsRocketChatCaseGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	srv, security, reporter := rcMail(t, ctx, b)
	b.serve(ctx, b.config(rcTeamTOML+rcMailTOML(b, srv, security)))

	// A long text (several messages' worth), a code fence and a mention
	// in it, and a file.
	canary := fmt.Sprintf("CANARY-%d", time.Now().UnixNano())
	var lines []string
	for i := range 250 {
		lines = append(lines, fmt.Sprintf("%s line %03d: the parser reads past the end of its buffer", canary, i))
	}
	lines[3] = "``` @all"
	text := strings.Join(lines, "\r\n")
	raw := strings.Join([]string{
		"From: " + reporter, "To: " + security, "Subject: A parser overflow",
		"Date: " + time.Now().Format(time.RFC1123Z), "Message-ID: <poc-1@" + mailtest.Domain + ">",
		"MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="b1"`, "",
		"--b1", "Content-Type: text/plain; charset=utf-8", "", text,
		"--b1", "Content-Type: application/octet-stream", `Content-Disposition: attachment; filename="poc.bin"`,
		"Content-Transfer-Encoding: base64", "", "AQIDBA==",
		"--b1--", "",
	}, "\r\n")
	if err := srv.Deliver(reporter, []string{security}, []byte(raw)); err != nil {
		t.Fatal(err)
	}

	var group rctest.Room
	b.wait(ctx, "the email's case group", func() bool {
		var ok bool
		group, ok = b.s.RoomByName("security-report-sr-" + fmt.Sprint(time.Now().Year()) + "-0001")
		return ok
	})
	last := fmt.Sprintf("%s line %03d", canary, len(lines)-1)
	b.wait(ctx, "the whole email in the case group", func() bool { return b.said(group.ID, last) })
	// The barrier: the post's outbox row is done.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.dir, "secbot.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE kind = 'mail.post' AND state = 'done'`).Scan(&n)
		if err == nil && n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the post's row is not done: %v\n%s", err, b.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	posts := b.botSaid(group.ID)
	head := posts[0]
	for _, m := range posts {
		if strings.Contains(m.Text, "Report by email") {
			head = m
		}
	}
	for _, want := range []string{"Report by email", reporter, "A parser overflow", "poc.bin (4 bytes)", "left in the mailbox"} {
		// (Markdown's escapes, which Rocket.Chat's parser reads, aside.)
		if !strings.Contains(strings.ReplaceAll(head.Text, `\`, ""), want) {
			t.Errorf("the post's head does not say %q: %q", want, head.Text)
		}
	}
	var shown []string
	for _, m := range posts {
		if len(m.Text) > 5000 {
			t.Errorf("a message of %d bytes", len(m.Text))
		}
		for _, word := range strings.Fields(m.Text) {
			if strings.HasPrefix(word, "@") {
				t.Errorf("a post mentions %q", word)
			}
		}
		if _, code, ok := strings.Cut(m.Text, "```\n"); ok && strings.Contains(m.Text, canary) {
			shown = append(shown, strings.TrimSuffix(code, "\n```"))
		}
	}
	if len(shown) < 3 {
		t.Errorf("the text came in %d messages, want it split in several", len(shown))
	}
	if got := strings.ReplaceAll(strings.Join(shown, "\n"), "\u200b", ""); got != strings.ReplaceAll(text, "\r\n", "\n") {
		t.Errorf("the text as posted is not the email's (%d bytes, want %d)", len(got), len(text))
	}
	if b.said(team.teamID, "could not be posted") || b.said(team.teamID, canary) {
		t.Errorf("the team room was told instead, or shown the text:\n%s", b.dump())
	}

	// The text went to Rocket.Chat only in the posts into the group.
	for _, r := range b.s.Requests() {
		if bytes.Contains(r.Body, []byte(canary)) && (r.Route != "chat.sendMessage" || !bytes.Contains(r.Body, []byte(group.ID))) {
			t.Errorf("the email's text in a request %s %s", r.Method, r.Route)
		}
	}
	if strings.Contains(b.logs.String(), canary) {
		t.Error("the email's text is in the log")
	}
	files, _ := filepath.Glob(filepath.Join(b.dir, "secbot.db*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(canary)) {
			t.Errorf("the email's text is in %s", filepath.Base(f))
		}
	}
}

// rcMail starts a maddy with the security mailbox and a reporter's
// account, and writes the mailbox's password beside the bed's config.
func rcMail(t *testing.T, ctx context.Context, b *rcBed) (srv *mailtest.Server, security, reporter string) {
	t.Helper()
	srv, err := mailtest.Start(ctx, t.TempDir(), mailtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	security, reporter = "security@"+mailtest.Domain, "rita@"+mailtest.Domain
	for _, account := range []string{security, reporter} {
		if err := srv.AddAccount(account, "mail-password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(b.dir, "mail-password"), []byte("mail-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, security, reporter
}

// rcMailTOML is [email] on the maddy.
func rcMailTOML(b *rcBed, srv *mailtest.Server, security string) string {
	return fmt.Sprintf(`[email]
imap_url = "imap://%s"
smtp_url = "smtp://%s"
username = %q
password_file = "mail-password"
address = %q
`, srv.IMAP, srv.Submission, security, security)
}

// An email case on a server that forces encryption on private groups: its
// group cannot be used, and gets nothing of the email (the server might
// take it as plain text into a room its clients show as encrypted); the
// team room is told the email is in the mailbox, and no request carries
// its text.
func TestAnEmailIsNotPostedIntoAnUnusableCaseGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{ForceEncryptedPrivateGroups: true})
	// The team meets in a channel, which stays unencrypted (as in
	// rcEncryptedCase).
	aliceID, _ := b.s.AddUser("alice")
	bobID, _ := b.s.AddUser("bob")
	teamID := b.s.CreateChannel("security-team", aliceID, bobID, b.botID)
	srv, security, reporter := rcMail(t, ctx, b)
	b.serve(ctx, b.config(rcTeamTOML+rcMailTOML(b, srv, security)))
	canary := fmt.Sprintf("CANARY-%d", time.Now().UnixNano())
	raw := strings.Join([]string{
		"From: " + reporter, "To: " + security, "Subject: A parser overflow",
		"Date: " + time.Now().Format(time.RFC1123Z), "Message-ID: <poc-2@" + mailtest.Domain + ">",
		"Content-Type: text/plain; charset=utf-8", "", "The details: " + canary, "",
	}, "\r\n")
	if err := srv.Deliver(reporter, []string{security}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	b.wait(ctx, "the team told the case room cannot be used", func() bool { return b.said(teamID, "cannot be used") })
	b.wait(ctx, "the team told the email is in the mailbox", func() bool {
		return b.said(teamID, "could not be posted", "the case room cannot be used", "still in the security mailbox")
	})
	group, ok := b.s.RoomByName("security-report-sr-" + fmt.Sprint(time.Now().Year()) + "-0001")
	if !ok || !group.Encrypted {
		t.Fatalf("the case group: %+v, %v", group, ok)
	}
	for _, r := range b.s.Requests() {
		if bytes.Contains(r.Body, []byte(canary)) {
			t.Errorf("the email's text in a request %s %s", r.Method, r.Route)
		}
	}
}
