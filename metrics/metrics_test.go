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
