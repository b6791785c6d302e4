package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/config"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/rocketchat"
)

// lockedBuffer is a log written by secbot's goroutines and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rcBed is a Rocket.Chat stand-in with a bot user (role bot) and its
// token in a config directory, for running the real serve on it.
type rcBed struct {
	t        testing.TB
	s        *rctest.Server
	botID    string
	botToken string
	dir      string
	logs     lockedBuffer
}

// newRCBed starts a stand-in (failing the test on any request Rocket.Chat's
// validators refuse) with the bot user secbot.
func newRCBed(t testing.TB, opts rctest.Options) *rcBed {
	s := rctest.Start(t, opts)
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	b := &rcBed{t: t, s: s, dir: t.TempDir()}
	b.botID, b.botToken = s.AddUser("secbot")
	s.SetRoles(b.botID, "bot")
	if err := os.WriteFile(filepath.Join(b.dir, "token"), []byte(b.botToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// client is a REST client of the stand-in as the given user.
func (b *rcBed) client(id, token string) *rocketchat.Client {
	c, err := rocketchat.New(b.s.URL(), id, token, rocketchat.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// config writes secbot.toml: [rocketchat] on the stand-in, the database
// in the bed's directory, and the rest (team, announce, github, …).
func (b *rcBed) config(rest string) string {
	toml := `[rocketchat]
server = "` + b.s.URL() + `"
user_id = "` + b.botID + `"
token_file = "token"
[database]
path = "secbot.db"
[http]
listen = ""
` + rest
	path := filepath.Join(b.dir, "secbot.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// serve runs the real serve on the config at path until stop is called
// (which returns once serve has returned) or the test ends; it returns
// once the bot is subscribed to its messages.
func (b *rcBed) serve(ctx context.Context, path string) (stop func()) {
	b.t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		b.t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- serve(runCtx, path, cfg, zerolog.New(&b.logs)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && runCtx.Err() == nil {
				b.t.Errorf("serve: %v", err)
			}
		})
	}
	b.t.Cleanup(stop)
	if err := b.s.WaitSubscribed(ctx, b.botID, 1); err != nil {
		b.t.Fatal(err, b.logs.String())
	}
	return stop
}

// botSaid is the bot's messages in a room containing every part.
func (b *rcBed) botSaid(roomID string, parts ...string) []rctest.Message {
	return b.s.Said(roomID, b.botID, parts...)
}

func (b *rcBed) said(roomID string, parts ...string) bool {
	return len(b.botSaid(roomID, parts...)) > 0
}

// wait waits for cond on the stand-in's changes, failing with the log.
func (b *rcBed) wait(ctx context.Context, what string, cond func() bool) {
	b.t.Helper()
	if err := b.s.Wait(ctx, cond); err != nil {
		b.t.Fatalf("%s: %v\n%s\n%s", what, err, b.dump(), b.logs.String())
	}
}

// dump is every message on the stand-in's rooms the bot is in, for a
// failure's message.
func (b *rcBed) dump() string {
	var sb strings.Builder
	seen := map[string]bool{}
	for _, name := range []string{"security-team", "announcements"} {
		if r, ok := b.s.RoomByName(name); ok && !seen[r.ID] {
			seen[r.ID] = true
			for _, m := range b.s.Messages(r.ID) {
				fmt.Fprintf(&sb, "#%s %s: %q\n", name, m.Username, m.Text)
			}
		}
	}
	return sb.String()
}

// say posts as a user and fails the test if the server refuses.
func (b *rcBed) say(userID, roomID, text string) string {
	b.t.Helper()
	id, err := b.s.SendAs(userID, roomID, text, "")
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

// command posts a command as a user and waits until the bot handled it:
// a reaction to it, or a message of the bot after it in that room. It
// returns the bot's messages after the command.
func (b *rcBed) command(ctx context.Context, userID, roomID, text string) []rctest.Message {
	b.t.Helper()
	before := len(b.s.Messages(roomID))
	id := b.say(userID, roomID, text)
	var answers []rctest.Message
	b.wait(ctx, "the bot's answer to "+text, func() bool {
		answers = answers[:0]
		for _, m := range b.s.Messages(roomID)[before:] {
			if m.UserID == b.botID {
				answers = append(answers, m)
			}
		}
		if len(answers) > 0 {
			return true
		}
		for _, r := range b.s.Requests() {
			if r.UserID == b.botID && r.Route == "chat.react" && r.Status == 200 && strings.Contains(string(r.Body), id) {
				return true
			}
		}
		return false
	})
	return answers
}

// waitOutboxIdle waits until serve's outbox (in the bed's database, read
// beside it) has no pending row: every effect decided so far is made.
func (b *rcBed) waitOutboxIdle(ctx context.Context) {
	b.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.dir, "secbot.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		b.t.Fatal(err)
	}
	defer db.Close()
	for {
		var pending int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&pending)
		if err == nil && pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("the outbox is not idle (%d pending, %v)\n%s", pending, err, b.logs.String())
		case <-time.After(20 * time.Millisecond): // polls the database: the barrier, not a quiet period
		}
	}
}

// aPublicRequestWhileDownIsAnsweredOnce posts a report request in channel
// while serve (on path) is down, starts it, and checks the request is
// answered once: a pointer in its thread, a DM, the team's notice; and
// that a further restart answers nothing again.
func aPublicRequestWhileDownIsAnsweredOnce(t *testing.T, ctx context.Context, b *rcBed, team rcTeam, channel, path string) {
	t.Helper()
	carolID, _ := b.s.AddUser("carol")
	root := b.say(carolID, channel, "I want to report a security issue")
	stop := b.serve(ctx, path)
	pointers := func() []rctest.Message {
		var out []rctest.Message
		for _, m := range b.s.Messages(channel) {
			if m.UserID == b.botID && m.Type == "" {
				out = append(out, m)
			}
		}
		return out
	}
	b.wait(ctx, "the pointer in the request's thread", func() bool {
		ms := pointers()
		return len(ms) > 0 && ms[0].ThreadID == root && strings.Contains(ms[0].Text, "direct message")
	})
	var dm rctest.Room
	b.wait(ctx, "the DM the bot opened", func() bool {
		for _, id := range []string{b.botID + carolID, carolID + b.botID} {
			if r, ok := b.s.RoomByID(id); ok && b.said(r.ID, "SR-2026-0001") {
				dm = r
				return true
			}
		}
		return false
	})
	b.wait(ctx, "the team told", func() bool { return b.said(team.teamID, "New security report **SR-2026-0001**") })

	// Once more down and up: once a help typed after the restart is
	// answered, the catch-up (made before it) answered nothing again.
	stop()
	b.serve(ctx, path)
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	if ms := pointers(); len(ms) != 1 {
		t.Errorf("the bot said %d things in the public channel, want the one pointer: %+v", len(ms), ms)
	}
	if n := len(b.botSaid(dm.ID, "SR-2026-0001")); n != 1 {
		t.Errorf("carol was answered %d times in her DM", n)
	}
	if n := len(b.botSaid(team.teamID, "New security report")); n != 1 {
		t.Errorf("the team was told of %d reports", n)
	}
}
