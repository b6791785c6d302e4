package main

import (
	"time"

	"github.com/enarx/secbot/bot"
	"github.com/enarx/secbot/metrics"
	"github.com/enarx/secbot/rocketchat"
)

// chatHealth is the health of every chat platform secbot is on, for
// /healthz and /metrics: healthy while each configured one is in touch
// with its server, and naming those that are not.
type chatHealth struct {
	matrix *bot.Bot             // nil without [matrix]
	rc     *rocketchat.Platform // nil without [rocketchat]
}

var (
	_ metrics.Health   = chatHealth{}
	_ metrics.Chats    = chatHealth{}
	_ metrics.TeamRoom = chatHealth{}
)

// Healthy reports whether every configured platform is in touch.
func (h chatHealth) Healthy() bool {
	for _, c := range h.ChatHealth() {
		if !c.Up {
			return false
		}
	}
	return true
}

// LastSync is Matrix's last sync (secbot_sync_lag_seconds); on Rocket.Chat
// alone, its last catch-up.
func (h chatHealth) LastSync() time.Time {
	if h.matrix != nil {
		return h.matrix.LastSync()
	}
	if h.rc != nil {
		return h.rc.LastCatchUp()
	}
	return time.Time{}
}

// TeamRoomWaiting is Matrix's (a Rocket.Chat team room never waits).
func (h chatHealth) TeamRoomWaiting() (bool, int64) {
	if h.matrix != nil {
		return h.matrix.TeamRoomWaiting()
	}
	return false, 0
}

// ChatHealth is each configured platform's connection.
func (h chatHealth) ChatHealth() []metrics.ChatHealth {
	var out []metrics.ChatHealth
	if h.matrix != nil {
		out = append(out, metrics.ChatHealth{Platform: "matrix", Up: h.matrix.Healthy(), Down: "not syncing with the homeserver", Last: h.matrix.LastSync()})
	}
	if h.rc != nil {
		out = append(out, metrics.ChatHealth{Platform: "rocketchat", Up: h.rc.Healthy(), Down: "no realtime connection to the server", Last: h.rc.LastCatchUp()})
	}
	return out
}
