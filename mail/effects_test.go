package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// recordingPoster keeps what would be posted into the case room.
type recordingPoster struct{ parts [][]Part }

func (r *recordingPoster) Ready(context.Context, outbox.Target) error { return nil }

func (r *recordingPoster) Post(_ context.Context, _ store.Effect, _ outbox.Target, parts []Part) error {
	r.parts = append(r.parts, parts)
	return nil
}

func TestThePostFetchesTheMessageWhenItRuns(t *testing.T) {
	srv, cfg := server(t, false)
	cfg.MaxAttachment = 1 << 20
	long := strings.Repeat("long line of the report\n", 3000) // far over a Matrix event's size
	if err := srv.Deliver(reporter, []string{security}, rawMail(map[string]string{"From": reporter, "To": security, "Subject": "Re: [SR-2026-0003] " + strings.Repeat("s", 500), "Message-ID": "<long@x.test>"}, long)); err != nil {
		t.Fatal(err)
	}
	w := &watched{looks: make(chan struct{}, 1)}
	startWatcher(t, cfg, w)
	waitFor(t, w, "the message", func() bool { return len(w.byID()) == 1 })
	env := w.byID()["long@x.test"]
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	poster := &recordingPoster{}
	x := &Effects{Config: cfg, Templates: tmpl, Poster: poster, Prefix: func() string { return "!sec" }}
	effect := func(uid uint32) store.Effect {
		payload, _ := json.Marshal(outbox.MailPostEffect{CaseID: "SR-2026-0003", UIDValidity: env.Ref.UIDValidity, UID: uid, MessageID: env.MessageID, Reply: true})
		return store.Effect{ID: 9, Kind: outbox.KindMailPost, Payload: payload, Attempts: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := x.post(ctx, effect(env.Ref.UID)); err != nil {
		t.Fatal(err)
	}
	// A message gone from the mailbox is named, not lost in silence; so is
	// one whose UID now holds another message.
	if _, err := x.post(ctx, effect(env.Ref.UID+50)); err != nil {
		t.Fatal(err)
	}
	other := effect(env.Ref.UID)
	other.Payload = []byte(strings.Replace(string(other.Payload), "long@x.test", "other@x.test", 1))
	if _, err := x.post(ctx, other); err != nil {
		t.Fatal(err)
	}
	if len(poster.parts) != 3 {
		t.Fatalf("%d posts, want 3", len(poster.parts))
	}
	if p := poster.parts[2]; len(p) != 1 || strings.Contains(p[0].Markdown+p[0].Verbatim, "long line") {
		t.Errorf("another message under the UID was posted: %+v", p)
	}
	post := poster.parts[0]
	if len(post) != 2 || post[1].File == nil || post[1].File.Name != "message.txt" || string(post[1].File.Data) != long {
		t.Fatalf("a long text is not posted as a file: %d parts", len(post))
	}
	if !strings.Contains(post[0].Markdown, "Reply by email") || len(post[0].Markdown) > 1000 || !strings.Contains(templates.PlainText(post[0].Markdown), "message.txt") || post[0].Verbatim != "" {
		t.Errorf("the head of the post: %q / %q", post[0].Markdown, post[0].Verbatim)
	}
	if gone := poster.parts[1]; len(gone) != 1 || !strings.Contains(gone[0].Markdown, "no longer in the security mailbox") {
		t.Errorf("a gone message: %+v", gone)
	}
}

// The post's layout: every text (each said to be one of several), a text
// cut at the size limit says so, a text whose event may be too large has
// a file to stand for it, and parts past the cap are named (at most
// maxNamed, then counted).
func TestThePostShowsEveryTextAndNamesWhatIsLeft(t *testing.T) {
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	x := &Effects{Config: &Config{MaxAttachment: 1 << 20}, Templates: tmpl, Prefix: func() string { return "!sec" }}
	content := &Content{
		From: "reporter@x.test", Subject: "subject \u202egpj.exe",
		Texts:       []Text{{Text: "first text"}, {Text: "<b>second</b>", HTML: true}, {Text: strings.Repeat("t", 23<<10), Cut: 5 << 20}},
		Attachments: []Attachment{{Name: "poc.txt", Data: []byte("poc")}},
	}
	for i := range 30 {
		content.Skipped = append(content.Skipped, Attachment{Name: fmt.Sprintf("f%d.bin", i), Size: 1})
	}
	parts, err := x.parts(content, outbox.MailPostEffect{CaseID: "SR-2026-0003", Machine: "mailing list"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 4 {
		t.Fatalf("%d parts, want 3 texts and a file", len(parts))
	}
	head := templates.PlainText(parts[0].Markdown)
	for _, want := range []string{"3 text parts", "machine-sent: mailing list", "f19.bin", "and 10 more", "first 20 parts"} {
		if !strings.Contains(head, want) {
			t.Errorf("the head does not say %q: %s", want, head)
		}
	}
	if strings.Contains(head, "f20.bin") || strings.ContainsRune(head, '\u202e') {
		t.Errorf("the head names too much, or the subject's override: %s", head)
	}
	if parts[0].Verbatim != "first text" || parts[1].Verbatim != "<b>second</b>" || !strings.Contains(parts[1].Markdown, "Text part 2 of 3") ||
		!strings.Contains(parts[1].Markdown, "HTML part, shown as its source") || strings.Contains(parts[0].Markdown, "HTML") {
		t.Errorf("the texts: %+v / %+v", parts[0], parts[1])
	}
	third := parts[2]
	if !strings.Contains(third.Markdown, "Text part 3 of 3") || !strings.Contains(third.Markdown, "cut at 5.0 MB") || len(third.Verbatim) != 23<<10 {
		t.Errorf("the cut text: %q", third.Markdown)
	}
	if len(third.Else) != 2 || third.Else[1].File == nil || third.Else[1].File.Name != "message-3.txt" || len(third.Else[1].File.Data) != 23<<10 ||
		!strings.Contains(templates.PlainText(third.Else[0].Markdown), "message-3.txt") || !strings.Contains(third.Else[0].Markdown, "cut at") {
		t.Errorf("what stands for a text too large for an event: %+v", third.Else)
	}
	if parts[3].File == nil || parts[3].File.Name != "poc.txt" {
		t.Errorf("the file: %+v", parts[3])
	}
}

// Into a room that takes no files (a platform secbot posts none on), the
// files are named in the head and left in the mailbox, and a text too
// long to post inline is cut (between two characters) and says so: no
// part is a file, none has a file to stand for it.
func TestAPostIntoARoomWithoutFilesNamesThemAndCutsLongTexts(t *testing.T) {
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	x := &Effects{Config: &Config{MaxAttachment: 1 << 20}, Templates: tmpl, Prefix: func() string { return "!sec" }}
	long := strings.Repeat("t", maxInline-1) + "é" + strings.Repeat("t", 100) // a two-byte rune across the limit
	content := &Content{
		From: "reporter@x.test", Subject: "PoC",
		Texts:       []Text{{Text: "first text"}, {Text: long}},
		Attachments: []Attachment{{Name: "poc.txt", Size: 3, Data: []byte("poc")}, {Name: "trace.log", Size: 2048, Data: make([]byte, 2048)}},
	}
	parts, err := x.parts(content, outbox.MailPostEffect{CaseID: "SR-2026-0004"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want the 2 texts and no file: %+v", len(parts), parts)
	}
	head := templates.PlainText(parts[0].Markdown)
	for _, want := range []string{"not posted on this chat", "left in the mailbox", "poc.txt (3 bytes)", "trace.log (2.0 KB)"} {
		if !strings.Contains(head, want) {
			t.Errorf("the head does not say %q: %s", want, head)
		}
	}
	if strings.Contains(head, "Files (below)") {
		t.Errorf("the head announces files below: %s", head)
	}
	for i, part := range parts {
		if part.File != nil || len(part.Else) > 0 {
			t.Errorf("part %d is, or has, a file: %+v", i, part)
		}
	}
	second := parts[1]
	if second.Verbatim != long[:maxInline-1] || !strings.Contains(second.Markdown, "cut at 64.1 KB") {
		t.Errorf("the long text: %d bytes, %q", len(second.Verbatim), second.Markdown)
	}
}

// A post that fails for good is named to the team room: which case and
// which email, never its text.
func TestAnEmailThatCannotBePostedIsNamedToTheTeam(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	x := &Effects{Config: &Config{Mailbox: "INBOX"}, Templates: tmpl, Store: st, TeamRoom: func() string { return "!team:x" }}
	payload, _ := json.Marshal(outbox.MailPostEffect{CaseID: "SR-2026-0004", UIDValidity: 3, UID: 42, MessageID: "poc@x.test"})
	e := store.Effect{ID: 5, Kind: outbox.KindMailPost, Payload: payload, Attempts: 3}
	if err := x.NotPosted(ctx, e, errors.New("permanent failure: M_FORBIDDEN")); err != nil {
		t.Fatal(err)
	}
	sends, _, err := st.EffectsOfKind(ctx, outbox.KindSend)
	if err != nil || len(sends) != 1 {
		t.Fatalf("%d notes (%v), want 1", len(sends), err)
	}
	var p outbox.SendEffect
	_ = sends[0].Decode(&p)
	note := templates.PlainText(p.Markdown)
	for _, want := range []string{"SR-2026-0004", "could not be posted", "M_FORBIDDEN", "UID 42", "poc@x.test", "INBOX"} {
		if p.To.Room != "!team:x" || !strings.Contains(note, want) {
			t.Errorf("the note to %v does not say %q: %s", p.To, want, note)
		}
	}
	// Other kinds of effect are not its business.
	if err := x.NotPosted(ctx, store.Effect{ID: 6, Kind: outbox.KindMailSend, Payload: payload}, errors.New("x")); err != nil {
		t.Fatal(err)
	}
	if sends, _, _ := st.EffectsOfKind(ctx, outbox.KindSend); len(sends) != 1 {
		t.Errorf("%d notes after another kind failed, want 1", len(sends))
	}
}
