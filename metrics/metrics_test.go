package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

type health struct {
	ok   bool
	last time.Time
}

func (h health) Healthy() bool       { return h.ok }
func (h health) LastSync() time.Time { return h.last }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestMetricsAndHealth(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if _, err := st.CreateCase(ctx, "matrix:@r:x", "matrix:!dm:x", "matrix:!dm:x", now); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Enqueue(ctx, st, "lane", outbox.KindSend, map[string]string{}, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.ParkEvent(ctx, store.DeadLetter{Room: "matrix:!r:x", Event: "$e", ParkedAt: now, Attempts: 5, Category: "panic"}); err != nil {
		t.Fatal(err)
	}
	h := Handler(st, health{ok: false, last: now.Add(-90 * time.Second)}, nil, func() time.Time { return now }, zerolog.Nop())
	code, body := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics answered %d", code)
	}
	for _, want := range []string{`secbot_cases{stage="received"} 1`, "secbot_outbox_pending 1", "secbot_outbox_oldest_seconds 60", "secbot_sync_lag_seconds 90", "secbot_matrix_up 0", "secbot_dead_letter_events 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz while not syncing = %d, want 503", code)
	}
	h = Handler(st, health{ok: true}, nil, func() time.Time { return now }, zerolog.Nop())
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz while syncing = %d %q", code, body)
	}
}

type teamHealth struct {
	health
	waiting  bool
	refusals int64
}

func (h teamHealth) TeamRoomWaiting() (bool, int64) { return h.waiting, h.refusals }

// A team room that refuses the bot's posts shows in /metrics.
func TestTeamRoomWaitingIsShown(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := Handler(st, teamHealth{health: health{ok: true}, waiting: true, refusals: 3}, nil, time.Now, zerolog.Nop())
	_, body := get(t, h, "/metrics")
	for _, want := range []string{"secbot_team_room_waiting 1", "secbot_team_room_refused_total 3"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Chat effects given up on count as Matrix's, under their neutral kind
// and under the name rows queued before it still carry.
func TestFailedChatEffectsCountAsMatrix(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, kind := range []string{outbox.KindSend, "matrix.invite", outbox.KindAdvisoryCreate} {
		id, err := outbox.Enqueue(ctx, st, "lane:"+kind, kind, map[string]string{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.FailEffect(ctx, id, "refused", now); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, Handler(st, health{ok: true}, nil, func() time.Time { return now }, zerolog.Nop()), "/metrics")
	for _, want := range []string{`secbot_failed_effects{service="matrix"} 2`, `secbot_failed_effects{service="github"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

type office struct {
	role             string
	epoch, takeovers int64
}

func (o office) Role() string     { return o.role }
func (o office) Active() bool     { return o.role == "active" }
func (o office) Epoch() int64     { return o.epoch }
func (o office) Takeovers() int64 { return o.takeovers }

// A standby answers /healthz with its role (200) and /metrics with
// secbot_active 0; the active instance has secbot_active 1, and one that
// lost its office answers 503.
func TestTheOfficeIsShown(t *testing.T) {
	code, body := get(t, StandbyHandler(office{role: "standby", epoch: 3, takeovers: 2}), "/healthz")
	if code != 200 || !strings.Contains(body, "standby (role=standby epoch=3)") {
		t.Errorf("a standby's /healthz: %d %q", code, body)
	}
	_, body = get(t, StandbyHandler(office{role: "standby", epoch: 3, takeovers: 2}), "/metrics")
	for _, want := range []string{"secbot_active 0", "secbot_epoch 3", "secbot_takeovers_total 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("a standby's /metrics lacks %q", want)
		}
	}
	if code, _ := get(t, StandbyHandler(office{role: "starting"}), "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("a starting instance's /healthz: %d, want 503", code)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := func() time.Time { return time.Now() }
	h := ActiveHandler(st, health{ok: true}, nil, now, zerolog.Nop(), office{role: "active", epoch: 4})
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.Contains(body, "ok (role=active epoch=4)") {
		t.Errorf("the active instance's /healthz: %d %q", code, body)
	}
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, "secbot_active 1") || !strings.Contains(body, "secbot_epoch 4") {
		t.Errorf("the active instance's /metrics:\n%s", body)
	}
	h = ActiveHandler(st, health{ok: true}, nil, now, zerolog.Nop(), office{role: "stopping", epoch: 4})
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopping") {
		t.Errorf("an instance that lost its office: /healthz %d %q", code, body)
	}
}

type chatsHealth struct {
	health
	chats []ChatHealth
}

func (h chatsHealth) ChatHealth() []ChatHealth { return h.chats }

// With two chat platforms, /healthz is degraded while either is down and
// names that one; secbot_matrix_up stays Matrix's own.
func TestHealthNamesTheChatPlatformThatIsDown(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	last := now.Add(-time.Minute)
	h := Handler(st, chatsHealth{health: health{ok: false, last: now}, chats: []ChatHealth{
		{Platform: "matrix", Up: true, Last: now},
		{Platform: "rocketchat", Up: false, Down: "no realtime connection to the server", Last: last},
	}}, nil, func() time.Time { return now }, zerolog.Nop())
	code, body := get(t, h, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "rocketchat: no realtime connection to the server (last success 2026-11-25T11:59:00Z)") || strings.Contains(body, "matrix") {
		t.Errorf("/healthz with Rocket.Chat down: %d %q", code, body)
	}
	_, body = get(t, h, "/metrics")
	for _, want := range []string{`secbot_chat_up{platform="matrix"} 1`, `secbot_chat_up{platform="rocketchat"} 0`, "secbot_matrix_up 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	h = Handler(st, chatsHealth{chats: []ChatHealth{{Platform: "matrix", Up: true}, {Platform: "rocketchat", Up: true}}}, nil, func() time.Time { return now }, zerolog.Nop())
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.HasPrefix(body, "ok") {
		t.Errorf("/healthz with both up: %d %q", code, body)
	}
}
