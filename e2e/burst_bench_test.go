package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

const burstReports = 1000

// BenchmarkBurst has 1,000 reporters ask at the same moment, each in a
// direct chat with the bot (plain clients, so that 1,000 of them fit on
// the machine), and measures until every one was invited to a case room
// and until secbot had made every effect; then it checks that each
// reporter has exactly one case room and one answer.
func BenchmarkBurst(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bot, err := bed.NewBot(ctx, "burstbot", servedOptions(b, testbed.BotOptions{Extra: uncapped}))
	if err != nil {
		b.Fatal(err)
	}
	if err := bot.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = bot.Stop() }()
	clients := make([]*mautrix.Client, burstReports)
	dms := make([]id.RoomID, burstReports)
	runConcurrently(b, burstReports, 20, func(i int) time.Duration {
		cli, err := matrixtest.NewPlain(ctx, bed.Server, fmt.Sprintf("burst%d", i))
		if err == nil {
			clients[i] = cli
			dms[i], err = matrixtest.PlainDM(ctx, cli, bot.UserID, 2*time.Minute)
		}
		if err != nil {
			b.Error(err)
		}
		return 0
	})
	if b.Failed() {
		return
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var failed atomic.Int64
		var firstErr atomic.Value
		runConcurrently(b, burstReports, burstReports, func(i int) time.Duration {
			// A client retries what the homeserver did not take, with the
			// same transaction ID, as a reporter's client would.
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: "I want to report a security issue"}
			var err error
			for range 3 {
				if _, err = clients[i].SendMessageEvent(ctx, dms[i], event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("burst-%d", i)}); err == nil {
					return 0
				}
				time.Sleep(time.Second)
			}
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return 0
		})
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of the burst's requests were refused by the homeserver three times (%v)", n, firstErr.Load())
		}
		sent := time.Since(start)
		if err := bot.WaitMetric(ctx, `secbot_cases{stage="received"}`, burstReports, 20*time.Minute); err != nil {
			b.Fatal(err)
		}
		opened := time.Since(start)
		if err := bot.WaitOutboxEmpty(ctx, 20*time.Minute); err != nil {
			b.Fatal(err)
		}
		drain := time.Since(start)
		// Every reporter: one invite to a case room, one answer in the DM.
		bad := runConcurrently(b, burstReports, 20, func(i int) time.Duration {
			invites, err := matrixtest.PlainInvites(ctx, clients[i], bot.UserID)
			if err != nil {
				b.Error(err)
				return 1
			}
			answers, err := matrixtest.PlainMessages(ctx, clients[i], dms[i], bot.UserID)
			acks := 0
			for _, a := range answers {
				if strings.Contains(a, "Thank you for reaching out") {
					acks++
				}
			}
			if err != nil || invites != 1 || acks != 1 {
				b.Errorf("reporter %d: %d case-room invites, answers %q (%v); want one invite and one first answer", i, invites, answers, err)
				return 1
			}
			return 0
		})
		if bad[len(bad)-1] != 0 {
			b.FailNow()
		}
		b.ReportMetric(sent.Seconds(), "all-sent-s")
		b.ReportMetric(opened.Seconds(), "all-opened-s")
		b.ReportMetric(drain.Seconds(), "drain-1000-s")
	}
}
