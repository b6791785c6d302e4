package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// takeoverRounds is how many takeovers one run of BenchmarkTakeover times.
const takeoverRounds = 5

// BenchmarkTakeover times the takeover of two secbot processes on one
// PostgreSQL database and one Matrix device: the active instance is
// SIGKILLed, and a reporter (their DM with the bot open before) asks for
// help right after the kill. It reports, over takeoverRounds takeovers
// per run, the time from the kill to the standby's role=active on its
// /healthz (the lock taken, the migrations checked, the epoch increased)
// and from the kill to the bot's first answer to that reporter (the new
// active instance logged in from the stored device, synced from the
// stored position, decrypted the message and sent the answer): p50 and
// max of each. The killed instance is started again as the standby
// between rounds, and the bot settles before each kill.
func BenchmarkTakeover(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	opts := servedOptions(b, testbed.BotOptions{Postgres: pgtest.Start(b)})
	bot, err := bed.NewBot(ctx, "takeoverbot", opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := bot.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = bot.Stop()
		if b.Failed() {
			b.Logf("secbot log (%s):\n%s", bot.LogPath, tail(bot.Log(), 25))
		}
	})
	p := startPair(b, ctx, bot)
	var toActive, toAnswer []time.Duration
	b.ResetTimer()
	for round := range takeoverRounds * b.N {
		b.StopTimer()
		u, err := bed.NewUser(ctx, fmt.Sprintf("takeover%d-", round))
		if err != nil {
			b.Fatal(err)
		}
		dm, err := u.DM(ctx, bot.UserID)
		if err == nil {
			err = u.WaitJoined(ctx, wait, dm, bot.UserID)
		}
		if err != nil {
			b.Fatal(err)
		}
		bed.Settle(b, ctx, p.active)
		b.StartTimer()
		killed := p.kill(b)
		if _, err := u.Say(ctx, dm, "I want to report a security issue"); err != nil {
			b.Fatal(err)
		}
		if _, err := p.standby.WaitRole(ctx, "active", time.Minute); err != nil {
			b.Fatal(err)
		}
		active := time.Since(killed)
		if _, err := u.WaitMessage(ctx, 2*wait, dm, bot.UserID, "Thank you for reaching out"); err != nil {
			b.Fatal(err)
		}
		answer := time.Since(killed)
		b.StopTimer()
		toActive, toAnswer = append(toActive, active), append(toAnswer, answer)
		b.Logf("round %d: active %s, answer %s after the kill", round, active.Round(time.Millisecond), answer.Round(time.Millisecond))
		p.active, p.standby = p.standby, p.active
		p.restartStandby(b, ctx)
		u.Close()
		b.StartTimer()
	}
	b.StopTimer()
	p50, most := spread(toActive)
	b.ReportMetric(p50, "kill-to-active-p50-ms")
	b.ReportMetric(most, "kill-to-active-max-ms")
	p50, most = spread(toAnswer)
	b.ReportMetric(p50, "kill-to-answer-p50-ms")
	b.ReportMetric(most, "kill-to-answer-max-ms")
}

// spread is the median and the maximum of ds, in milliseconds.
func spread(ds []time.Duration) (p50, most float64) {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(s[len(s)/2]), ms(s[len(s)-1])
}
