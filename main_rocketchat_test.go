package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/config"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/rocketchat"
)

// A team on Rocket.Chat alone, as the config writes it (no [matrix]): the
// team room is found by its name, a reporter's DM opens a case, its
// private group says plainly that it is not end-to-end encrypted, and the
// team is told in its room. The platform is one registration in serve.
func TestARocketChatOnlyInstanceTakesAReport(t *testing.T) {
	s := rctest.Start(t, rctest.Options{})
	t.Cleanup(func() {
		for _, line := range s.Invalid() {
			t.Errorf("Rocket.Chat's validators refused a request: %s", line)
		}
	})
	botID, botToken := s.AddUser("secbot")
	s.SetRoles(botID, "bot")
	aliceID, aliceToken := s.AddUser("alice")
	s.AddUser("bob")
	ritaID, ritaToken := s.AddUser("rita")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	asUser := func(id, token string) *rocketchat.Client {
		c, err := rocketchat.New(s.URL(), id, token, rocketchat.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	team, err := asUser(aliceID, aliceToken).CreatePrivateGroup(ctx, "security-team", []string{"secbot", "bob"})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(botToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toml := `[rocketchat]
server = "` + s.URL() + `"
user_id = "` + botID + `"
token_file = "token"
[database]
path = "secbot.db"
[team]
room = "rocketchat:security-team"
members = ["rocketchat:alice", "rocketchat:bob"]
coordinator = "rocketchat:alice"
backup = "rocketchat:bob"
[http]
listen = ""
`
	path := filepath.Join(dir, "secbot.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, cfg, zerolog.New(&logs)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("serve: %v", err)
		}
	})
	if err := s.WaitSubscribed(ctx, botID, 1); err != nil {
		t.Fatal(err, logs.String())
	}

	said := func(roomID string, parts ...string) bool { return len(s.Said(roomID, botID, parts...)) > 0 }
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := s.Wait(ctx, cond); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, logs.String())
		}
	}
	dm, err := asUser(ritaID, ritaToken).CreateDM(ctx, "secbot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendAs(ritaID, dm.ID, "I want to report a security issue", ""); err != nil {
		t.Fatal(err)
	}
	wait("the reporter's answer", func() bool { return said(dm.ID, "SR-2026-0001") })
	if said(dm.ID, "end-to-end encrypted") {
		t.Errorf("the DM promises an end-to-end encrypted room: %v", s.Messages(dm.ID))
	}
	wait("the team told in its room, found by name", func() bool { return said(team.ID, "New security report", "SR-2026-0001") })
	var group rctest.Room
	wait("the case group's welcome", func() bool {
		var ok bool
		group, ok = s.RoomByName("security-report-sr-2026-0001")
		return ok && said(group.ID, "SR-2026-0001")
	})
	if !said(group.ID, "not end-to-end encrypted", "!github NAME") {
		t.Errorf("the case group's welcome does not say it is not end-to-end encrypted: %v", s.Messages(group.ID))
	}
}
