package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/maddy"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// An email of a case whose room is a Rocket.Chat group, posted in several
// messages (a long text), with secbot killed right after the first went
// out and before it was recorded: after the restart the post goes on, and
// the group holds the text whole, each piece once. (The Matrix version is
// TestACrashInTheMiddleOfAPostPostsEachPartOnce.)
func TestACrashInTheMiddleOfARocketChatPostPostsEachPieceOnce(t *testing.T) {
	ctx := testContext(t)
	reporterAddr := "rcmidpost@" + mailtest.Domain
	srv := startMail(t, ctx, false, reporterAddr)
	rc := newRCTeamBot(t, ctx, "rcmidpostbot", testbed.BotOptions{Mail: srv})
	const point = "rocketchat.posted"
	if err := rc.bot.Start(crashpoint.Env + "=" + point); err != nil {
		t.Fatal(err)
	}
	if err := rc.s.WaitSubscribed(ctx, rc.botID, 1); err != nil {
		t.Fatal(err)
	}
	mark := canary("RCMIDPOST")
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("%s line %03d: the parser reads past the end of its buffer", mark, i))
	}
	text := strings.Join(lines, "\n")
	deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: "a long proof", messageID: "rcmidpost@" + mailtest.Domain, text: text,
		files: map[string][]byte{"poc.bin": []byte("file")}})
	crashedAt(t, rc.bot, point)
	restart(t, rc.bot)

	var group rctest.Room
	wctx, cancel := context.WithTimeout(ctx, 2*wait)
	defer cancel()
	last := lines[len(lines)-1]
	if err := rc.s.Wait(wctx, func() bool {
		var ok bool
		group, ok = rc.s.RoomByName("security-report-sr-" + fmt.Sprint(time.Now().Year()) + "-0001")
		return ok && len(rc.s.Said(group.ID, rc.botID, last)) > 0
	}); err != nil {
		t.Fatalf("the whole email in the case group: %v", err)
	}
	mailboxHandled(t, ctx, srv, 1)
	// The barrier: the post's row is done (made, and marked so).
	db, err := rc.bot.OpenDB(true)
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
		case <-wctx.Done():
			t.Fatalf("the post's row is not done: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var shown []string
	heads := 0
	for _, m := range rc.s.Said(group.ID, rc.botID) {
		if strings.Contains(m.Text, "Report by email") {
			heads++
			if !strings.Contains(strings.ReplaceAll(m.Text, `\`, ""), "poc.bin (4 bytes)") {
				t.Errorf("the head does not name the file left in the mailbox: %q", m.Text)
			}
		}
		if _, code, ok := strings.Cut(m.Text, "```\n"); ok && strings.Contains(m.Text, mark) {
			shown = append(shown, strings.TrimSuffix(code, "\n```"))
		}
	}
	if heads != 1 {
		t.Errorf("the post's head is in the group %d times, want 1", heads)
	}
	got := strings.ReplaceAll(strings.ReplaceAll(strings.Join(shown, "\n"), "\u200b", ""), "\r\n", "\n")
	if len(shown) < 3 || strings.TrimRight(got, "\n") != text {
		t.Errorf("the group holds the text in %d pieces, %d bytes, want it whole and once (%d bytes)", len(shown), len(got), len(text))
	}
}
