package rocketchat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/enarx/secbot/chat"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/outbox"
)

// An email's post (the chat port's Poster): each part a message, a long
// text in several under the server's size limit, shown as it is in code
// blocks that nothing in it closes and that notify nobody; a retry after a
// crash halfway posts none of it twice. The stand-in checks every request
// with Rocket.Chat's validators and refuses a message over 5000.
func TestAnEmailsPostIsSplitShownAsItIsAndPostedOnce(t *testing.T) {
	e := newPlatformEnv(t, rctest.Options{})
	t.Cleanup(func() {
		for _, line := range e.s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	ritaID, _ := e.user(t, "rita")
	general := e.s.CreateChannel("general", ritaID, e.botID)
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("line %d of the proof of concept: overflow here", i))
	}
	lines[7] = "```\n**not bold** [a link](http://evil.example) @all"
	lines[8] = "@here ``` `` ````"
	long := strings.Join(lines, "\n")
	if len(long) < 3*maxMessage {
		t.Fatalf("the text is only %d bytes", len(long))
	}
	parts := []chat.Part{
		{Markdown: "📧 **Report by email** for SR-2026-0001 from a@example.org — subject: \\@all hi", Verbatim: "short first text"},
		{Markdown: "📧 Text part 2 of 2 of the email above.", Verbatim: long},
	}
	to := outbox.Target{Room: "rocketchat:" + general}
	eff := e.effect(t, outbox.KindMailPost, outbox.MailPostEffect{CaseID: "SR-2026-0001"})
	ctx := context.Background()
	if err := e.p.Ready(ctx, to); err != nil {
		t.Fatal(err)
	}
	crashAt(t, "rocketchat.posted", func() { _ = e.p.Post(ctx, eff, to, parts) })
	eff.Attempts = 2
	if err := e.p.Post(ctx, eff, to, parts); err != nil {
		t.Fatal(err)
	}
	// What is made is recorded: a further retry sends nothing.
	before := countRequests(e.s, "chat.sendMessage")
	eff.Attempts = 3
	if err := e.p.Post(ctx, eff, to, parts); err != nil {
		t.Fatal(err)
	}
	if n := countRequests(e.s, "chat.sendMessage") - before; n != 0 {
		t.Errorf("a retry of a post made in full sent %d messages", n)
	}
	var got []string
	for _, m := range e.s.Messages(general) {
		if m.UserID == e.botID {
			got = append(got, m.Text)
		}
	}
	want := len(postPieces(parts[0].Markdown, parts[0].Verbatim, maxMessage)) + len(postPieces(parts[1].Markdown, parts[1].Verbatim, maxMessage))
	if len(got) != want || want < 4 {
		t.Fatalf("%d messages posted, want %d, each once", len(got), want)
	}
	if !strings.Contains(got[0], "short first text") || !strings.Contains(got[0], "Report by email") {
		t.Errorf("the head and its text are not one message: %q", got[0])
	}
	var blocks []string
	for i, text := range got {
		if len(text) > maxMessage {
			t.Errorf("message %d is %d bytes", i, len(text))
		}
		for _, word := range strings.Fields(text) {
			if strings.HasPrefix(word, "@") {
				t.Errorf("message %d mentions %q", i, word)
			}
		}
		if i == 0 {
			continue
		}
		_, code, ok := strings.Cut(text, "```\n")
		if !ok || !strings.HasSuffix(code, "\n```") {
			t.Fatalf("message %d holds no code block: %q", i, text)
		}
		code = strings.TrimSuffix(code, "\n```")
		if strings.Contains(code, "```") {
			t.Errorf("a run of backticks in message %d closes its block", i)
		}
		blocks = append(blocks, code)
	}
	if shown := strings.ReplaceAll(strings.Join(blocks, "\n"), "\u200b", ""); shown != long {
		t.Errorf("the text as shown is not the text (%d bytes, want %d)", len(shown), len(long))
	}

	// A file is never handed to Rocket.Chat (PostsFiles): refused for good.
	if e.p.PostsFiles() {
		t.Error("Rocket.Chat posts files")
	}
	err := e.p.Post(ctx, e.effect(t, outbox.KindMailPost, outbox.MailPostEffect{CaseID: "SR-2026-0001"}), to, []chat.Part{{File: &chat.File{Name: "poc.bin", Data: []byte{1}}}})
	if !errors.Is(err, chat.ErrPermanent) {
		t.Errorf("a file: %v", err)
	}
}
