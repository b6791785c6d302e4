package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"github.com/enarx/secbot/store"
)

const coldStartCases = 10_000

// seedOpenCases writes n open cases, each with its acknowledgement and
// response deadlines in the future, into the database at path.
func seedOpenCases(ctx context.Context, path string, n int) error {
	st, err := store.Open(ctx, path, zerolog.Nop())
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	return st.Tx(ctx, func(ctx context.Context) error {
		for i := range n {
			c, err := st.CreateCase(ctx, disclosure.Person(fmt.Sprintf("matrix:@seeded%d:%s", i, matrixtest.ServerName)), "", "", now)
			if err != nil {
				return err
			}
			for kind, due := range map[disclosure.DeadlineKind]time.Duration{disclosure.DeadlineAcknowledge: 48 * time.Hour, disclosure.DeadlineResponse: 96 * time.Hour} {
				d := store.Deadline{CaseID: c.ID, Kind: kind, StartedAt: now, DueAt: now.Add(due), RemindAt: now.Add(due - 12*time.Hour)}
				d.NextAt = d.RemindAt
				if err := st.SetDeadline(ctx, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// startTimed starts the bot and returns how long it took until /healthz
// said it was in sync with the homeserver.
func startTimed(b *testing.B, bot *testbed.Bot) time.Duration {
	b.Helper()
	t0 := time.Now()
	if err := bot.Start(); err != nil {
		b.Fatal(err)
	}
	for bot.Healthz() != http.StatusOK {
		if time.Since(t0) > time.Minute {
			b.Fatalf("the bot was not healthy within a minute:\n%s", tail(bot.Log(), 20))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(t0)
}

// idleRSS lets the bot settle, then reads its resident memory in MB.
func idleRSS(b *testing.B, bot *testbed.Bot) float64 {
	b.Helper()
	time.Sleep(10 * time.Second)
	rss, err := bot.RSS()
	if err != nil {
		b.Fatal(err)
	}
	return float64(rss) / (1 << 20)
}

// BenchmarkColdStart measures the bot's start (process start until
// /healthz reports its first sync done) and its idle resident memory,
// first with no case, then with 10,000 open cases and their deadlines
// written into its database.
func BenchmarkColdStart(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bot, err := bed.NewBot(ctx, "coldbot", servedOptions(b, testbed.BotOptions{}))
	if err != nil {
		b.Fatal(err)
	}
	// The first start registers the device and uploads its keys: not a cold
	// start of a bot in service.
	startTimed(b, bot)
	if err := bot.Stop(); err != nil {
		b.Fatal(err)
	}
	empty := startTimed(b, bot)
	emptyRSS := idleRSS(b, bot)
	if err := bot.Stop(); err != nil {
		b.Fatal(err)
	}
	if err := seedOpenCases(ctx, bot.DBPath, coldStartCases); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var loaded time.Duration
	for range b.N {
		loaded = startTimed(b, bot)
		b.StopTimer()
		if b.N > 1 {
			if err := bot.Stop(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	loadedRSS := idleRSS(b, bot)
	if v, err := bot.Metric(`secbot_cases{stage="received"}`); err != nil || v != coldStartCases {
		b.Fatalf("the bot sees %v received cases (%v), want %d", v, err, coldStartCases)
	}
	if err := bot.Stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(empty.Milliseconds()), "start-0-cases-ms")
	b.ReportMetric(float64(loaded.Milliseconds()), "start-10k-cases-ms")
	b.ReportMetric(emptyRSS, "rss-idle-0-cases-MB")
	b.ReportMetric(loadedRSS, "rss-idle-10k-cases-MB")
}
