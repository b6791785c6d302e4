package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// benchSize is the number of reports (SECBOT_BENCH_REPORTS overrides the
// issue's 200 for quicker looks), 20 at a time.
func benchSize(b *testing.B) int {
	n := 200
	if v := os.Getenv("SECBOT_BENCH_REPORTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SECBOT_BENCH_REPORTS=%q: want a positive number", v)
		}
	}
	return n
}

const benchConcurrency = 20

// runConcurrently runs fn for 0..n-1, at most k at a time, and returns the
// durations it reports.
func runConcurrently(b *testing.B, n, k int, fn func(i int) time.Duration) []time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, k)
	out := make([]time.Duration, 0, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := fn(i)
			mu.Lock()
			out = append(out, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(out)
	return out
}

func pct(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }

// BenchmarkIntake measures a reporter's DM until the invite to the case
// room reaches them, 200 reports 20 at a time, next to the same
// homeserver's latency for the equivalent raw calls made by the benchmark
// itself (create an encrypted room inviting the reporter and the rest of
// the team, as secbot's does, send a message, until the reporter sees the
// invite).
func BenchmarkIntake(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bot, err := bed.NewBot(ctx, "benchbot", servedOptions(b, testbed.BotOptions{LogLevel: os.Getenv("SECBOT_BENCH_LOG_LEVEL"), Extra: uncapped}))
	if err != nil {
		b.Fatal(err)
	}
	if err := bot.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = bot.Stop()
		if keep := os.Getenv("SECBOT_BENCH_LOG"); keep != "" {
			_ = os.WriteFile(keep, []byte(bot.Log()), 0o600)
		}
	}()
	n := benchSize(b)
	users := make([]*matrixtest.User, n)
	dms := make([]id.RoomID, n)
	runConcurrently(b, n, 10, func(i int) time.Duration {
		u, err := bed.NewUser(ctx, fmt.Sprintf("bench%d-", i))
		if err != nil {
			b.Error(err)
			return 0
		}
		users[i] = u
		if dms[i], err = u.DM(ctx, bot.UserID); err != nil {
			b.Error(err)
		} else if err := u.WaitJoined(ctx, time.Minute, dms[i], bot.UserID); err != nil {
			b.Error(err)
		}
		return 0
	})
	defer func() {
		for _, u := range users {
			if u != nil {
				u.Close()
			}
		}
	}()
	if b.Failed() {
		return
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		intake := runConcurrently(b, n, benchConcurrency, func(i int) time.Duration {
			t0 := time.Now()
			if _, err := users[i].Say(ctx, dms[i], "I want to report a security issue"); err != nil {
				b.Error(err)
				return 0
			}
			if _, err := users[i].WaitInvite(ctx, time.Minute, bot.UserID, func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect }); err != nil {
				b.Error(err)
			}
			return time.Since(t0)
		})
		answered := time.Since(start)
		// Everything else of those cases (answers, welcomes, the team's
		// notes) is made before the raw calls start, so they run on a quiet bot.
		if err := bot.WaitOutboxEmpty(ctx, 10*time.Minute); err != nil {
			b.Fatal(err)
		}
		drain := time.Since(start)
		raw := runConcurrently(b, n, benchConcurrency, func(i int) time.Duration {
			t0 := time.Now()
			resp, err := bed.Alice.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
				Preset: "private_chat", Name: "raw", Invite: []id.UserID{users[i].ID(), bed.Bob.ID()},
				InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
			})
			if err != nil {
				b.Error(err)
				return 0
			}
			if _, err := bed.Alice.Say(ctx, resp.RoomID, "raw"); err != nil {
				b.Error(err)
			}
			if _, err := users[i].WaitInvite(ctx, time.Minute, bed.Alice.ID(), func(evt *event.Event) bool { return evt.RoomID == resp.RoomID }); err != nil {
				b.Error(err)
			}
			return time.Since(t0)
		})
		b.ReportMetric(float64(pct(intake, 0.5).Milliseconds()), "intake-p50-ms")
		b.ReportMetric(float64(pct(intake, 0.99).Milliseconds()), "intake-p99-ms")
		b.ReportMetric(float64(pct(raw, 0.5).Milliseconds()), "raw-p50-ms")
		b.ReportMetric(float64(pct(raw, 0.99).Milliseconds()), "raw-p99-ms")
		b.ReportMetric(float64(pct(intake, 0.5))/float64(pct(raw, 0.5)), "p50-ratio")
		b.ReportMetric(answered.Seconds(), "all-invited-s")
		b.ReportMetric(drain.Seconds(), "drain-s")
	}
}
