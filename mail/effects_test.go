package mail

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// recordingPoster keeps what would be posted into the case room.
type recordingPoster struct{ parts [][]Part }

func (r *recordingPoster) Ready(context.Context, store.Target) error { return nil }

func (r *recordingPoster) Post(_ context.Context, _ store.Effect, _ store.Target, parts []Part) error {
	r.parts = append(r.parts, parts)
	return nil
}

func TestThePostFetchesTheMessageWhenItRuns(t *testing.T) {
	srv, cfg := server(t, false)
	cfg.MaxAttachment = 1 << 20
	long := strings.Repeat("long line of the report\n", 2000) // over a Matrix event's size
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
		payload, _ := json.Marshal(store.MailPostEffect{CaseID: "SR-2026-0003", UIDValidity: env.Ref.UIDValidity, UID: uid, MessageID: env.MessageID, Reply: true})
		return store.Effect{ID: 9, Kind: store.KindMailPost, Payload: payload, Attempts: 1}
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
	if !strings.Contains(post[0].Markdown, "Reply by email") || len(post[0].Markdown) > 1000 || !strings.Contains(post[0].Verbatim, "message.txt") {
		t.Errorf("the head of the post: %q / %q", post[0].Markdown, post[0].Verbatim)
	}
	if gone := poster.parts[1]; len(gone) != 1 || !strings.Contains(gone[0].Markdown, "no longer in the security mailbox") {
		t.Errorf("a gone message: %+v", gone)
	}
}
