package main

import (
	"context"
	"strings"
	"testing"
	"time"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// A public channel the config does not name and the bot is not in: while
// secbot runs the stream hands it a request posted there; one posted while
// secbot was down is found by the catch-up after the start (channels.list,
// then the channel's history), answered once, and not again after a
// second restart.
func TestARequestInAnUnnamedPublicChannelWhileSecbotWasDownIsAnsweredOnceOnRocketChat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newRCBed(t, rctest.Options{})
	team := newRCTeam(t, ctx, b)
	readerID, _ := b.s.AddUser("reader")
	lobby := b.s.CreateChannel("lobby", team.aliceID, readerID) // without the bot, in no config
	path := b.config(rcTeamTOML)
	stop := b.serve(ctx, path)
	b.command(ctx, team.aliceID, team.teamID, "!sec help")
	stop()

	carolID, _ := b.s.AddUser("carol")
	root := b.say(carolID, lobby, "I want to report a security issue")
	stop = b.serve(ctx, path)
	pointers := func() []rctest.Message {
		var out []rctest.Message
		for _, m := range b.s.Messages(lobby) {
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
	// The catch-up listed the channels (newest change first, paged) and
	// read only the channel with news.
	if _, reqs := b.botRequests("channels.list"); len(reqs) == 0 {
		t.Error("the catch-up never listed the public channels")
	} else if !strings.Contains(reqs[0].Query, "sort=") {
		t.Errorf("channels.list without a sort: %s", reqs[0].Query)
	}
}
