package mail

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// runWatcher runs a watcher with memory until the returned stop is called.
func runWatcher(t *testing.T, cfg *Config, w *watched, memory Memory, tweak func(*Watcher)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	watcher := NewWatcher(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	watcher.Memory = memory
	if tweak != nil {
		tweak(watcher)
	}
	watcher.Looked = func() {
		select {
		case w.looks <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = watcher.Run(ctx, w.handle) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// count is how often a Message-ID was handed over.
func (w *watched) count(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.envs {
		if e.MessageID == id {
			n++
		}
	}
	return n
}

// A mailbox deleted and made anew (a restore, a migration to another
// server) has a new UIDVALIDITY and its messages have lost their keywords:
// the messages handled before are not handled again (no new cases, no new
// acks to past reporters), a post still pending finds its message by
// Message-ID, and a new message is handled.
func TestAfterAUIDValidityChangeOldMailIsNotHandledAgainAndPostsFindTheirMessage(t *testing.T) {
	srv, cfg := server(t, false)
	cfg.Mailbox, cfg.noIdle, cfg.PollEvery = "Reports", true, 200*time.Millisecond
	if err := srv.Create(security, password, cfg.Mailbox); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	msg := func(id, text string) []byte {
		return rawMail(map[string]string{"From": reporter, "To": security, "Subject": "a vuln", "Message-ID": "<" + id + ">"}, text+"\r\n")
	}
	old := map[string][]byte{"a@x.test": msg("a@x.test", "first report"), "b@x.test": msg("b@x.test", "second report")}
	for _, id := range []string{"a@x.test", "b@x.test"} {
		if err := srv.Append(security, password, cfg.Mailbox, old[id]); err != nil {
			t.Fatal(err)
		}
	}
	w := &watched{looks: make(chan struct{}, 1)}
	stop := runWatcher(t, cfg, w, st, nil)
	waitFor(t, w, "the first two messages", func() bool { return len(w.byID()) == 2 })
	stop()
	before := w.byID()["a@x.test"].Ref

	// The mailbox made anew, its messages filed again, and a new one.
	if err := srv.Recreate(security, password, cfg.Mailbox); err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{old["a@x.test"], old["b@x.test"], msg("c@x.test", "a new report")} {
		if err := srv.Append(security, password, cfg.Mailbox, raw); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The post of the first message, queued before the change.
	if _, err := cfg.Fetch(ctx, before); !errors.Is(err, ErrGone) {
		t.Fatalf("by its old UID the message is %v, want gone: the mailbox did not change UIDVALIDITY", err)
	}
	content, err := cfg.FetchPosted(ctx, before, "a@x.test")
	if err != nil {
		t.Fatalf("the pending post does not find its message again: %v", err)
	}
	if content.MessageID != "a@x.test" || len(content.Texts) != 1 || strings.TrimSpace(content.Texts[0].Text) != "first report" {
		t.Errorf("the pending post found %q (%v)", content.MessageID, content.Texts)
	}
	if _, err := cfg.FetchPosted(ctx, before, "gone@x.test"); !errors.Is(err, ErrGone) {
		t.Errorf("a message no longer there is %v, want gone", err)
	}

	w2 := &watched{looks: make(chan struct{}, 1)}
	runWatcher(t, cfg, w2, st, nil)
	waitFor(t, w2, "the new message", func() bool { return w2.count("c@x.test") == 1 })
	if n := w2.count("a@x.test") + w2.count("b@x.test"); n != 0 {
		t.Errorf("%d messages handled before were handed over again after the UIDVALIDITY change", n)
	}
	now := w2.byID()["c@x.test"].Ref.UIDValidity
	if now == before.UIDValidity {
		t.Fatalf("the mailbox kept UIDVALIDITY %d", now)
	}
	if v, ok, err := st.MailboxUIDValidity(ctx, cfg.Mailbox); err != nil || !ok || v != now {
		t.Errorf("the recorded UIDVALIDITY is %d, %v (%v), want %d", v, ok, err, now)
	}
}

// A server that keeps no keywords, or refuses one STORE: the mailbox goes
// on, and no message is handed over twice, across reconnects too.
func TestWithoutKeywordsOrAfterAFailedStoreTheMailboxGoesOnAndHandsEachMessageOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(cfg *Config, w *Watcher)
	}{
		{"no keywords", func(cfg *Config, w *Watcher) { cfg.noKeywords = true }},
		{"a failed STORE", func(cfg *Config, w *Watcher) {
			w.failStore = func(uid imap.UID) bool { return true }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cfg := server(t, false)
			cfg.noIdle, cfg.PollEvery = true, 100*time.Millisecond
			st := openStore(t)
			deliver := func(id string) {
				t.Helper()
				if err := srv.Deliver(reporter, []string{security}, rawMail(map[string]string{"From": reporter, "To": security, "Message-ID": "<" + id + ">"}, "text\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			w := &watched{looks: make(chan struct{}, 1)}
			stop := runWatcher(t, cfg, w, st, func(x *Watcher) { tc.tweak(cfg, x) })
			deliver("a@x.test")
			waitFor(t, w, "the first message", func() bool { return w.count("a@x.test") > 0 })
			deliver("b@x.test")
			waitFor(t, w, "the second message on the same watch", func() bool { return w.count("b@x.test") > 0 })
			// A few more looks: nothing is handed over again.
			for range 3 {
				select {
				case <-w.looks:
				case <-time.After(30 * time.Second):
					t.Fatal("timed out waiting for a look")
				}
			}
			stop()
			// A restart: the store knows what was handled.
			runWatcher(t, cfg, w, st, func(x *Watcher) { tc.tweak(cfg, x) })
			deliver("c@x.test")
			waitFor(t, w, "a message after the restart", func() bool { return w.count("c@x.test") > 0 })
			for _, id := range []string{"a@x.test", "b@x.test", "c@x.test"} {
				if n := w.count(id); n != 1 {
					t.Errorf("%s was handed over %d times, want once", id, n)
				}
			}
		})
	}
}

func TestKeywordSupportIsReadFromPermanentFlags(t *testing.T) {
	for _, tc := range []struct {
		flags []imap.Flag
		want  bool
	}{
		{[]imap.Flag{imap.FlagSeen, imap.FlagWildcard}, true},
		{[]imap.Flag{imap.FlagSeen, HandledKeyword}, true},
		{[]imap.Flag{imap.FlagSeen, imap.FlagDeleted}, false},
		// No PERMANENTFLAGS: all flags are permanent (RFC 3501).
		{nil, true},
	} {
		if got := keepsKeywords(&imap.SelectData{PermanentFlags: tc.flags}); got != tc.want {
			t.Errorf("PERMANENTFLAGS %v: keywords kept %v, want %v", tc.flags, got, tc.want)
		}
	}
}

var _ = mailtest.Domain
