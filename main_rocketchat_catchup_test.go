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

	aPublicRequestWhileDownIsAnsweredOnce(t, ctx, b, team, lobby, path)
	// The catch-up listed the channels (newest change first, paged) and
	// read only the channel with news.
	if _, reqs := b.botRequests("channels.list"); len(reqs) == 0 {
		t.Error("the catch-up never listed the public channels")
	} else if !strings.Contains(reqs[0].Query, "sort=") {
		t.Errorf("channels.list without a sort: %s", reqs[0].Query)
	}
}
