package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// How many reports BenchmarkLatency measures: one reporter at a time, and
// rounds of several reporters at once.
const (
	latencyOneByOne = 20
	latencyAtOnce   = 10
	latencyRounds   = 3
)

const reportRequest = "I want to report a security issue"

// BenchmarkLatency measures what a reporter waits for after their first
// message ("I want to report a security issue") in a direct chat with the
// bot: (a) the bot's first answer in that chat, (b) the invite to the case
// room, each from the moment the homeserver took the message until the
// reporter's client had it (the answer decrypted). It does so with one
// reporter at a time and with several at once, and next to it, in the same
// run and on the same homeserver, the raw calls: a plain encrypted client
// that receives the same message in a direct chat by sync and at once
// sends an encrypted m.notice reply (a) and creates an encrypted
// invite-only room inviting the reporter and the team, like a case room (b).
//
// SECBOT_BENCH_LOG_LEVEL sets the bot's -log-level and SECBOT_BENCH_LOG
// keeps its log; with debug, a breakdown of the bot's first answers
// (sync, handler, outbox, encryption set-up, send) is printed too.
func BenchmarkLatency(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	level := os.Getenv("SECBOT_BENCH_LOG_LEVEL")
	bot, err := bed.NewBot(ctx, "latbot", servedOptions(b, testbed.BotOptions{LogLevel: level, Extra: uncapped}))
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
	raw, err := newRawResponder(ctx, []id.UserID{bed.Alice.ID(), bed.Bob.ID()})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.u.Close()
	var rows []latencyRow
	var traces []reportTrace
	for _, k := range []int{1, latencyAtOnce} {
		b.Run(fmt.Sprintf("reporters=%d", k), func(b *testing.B) {
			row, trace := measureLatency(b, ctx, bot, raw, k)
			if row != nil {
				rows, traces = append(rows, *row), append(traces, trace...)
			}
		})
	}
	if err := raw.failed(); err != nil {
		b.Fatal(err)
	}
	printLatencyTable(rows)
	if level == "debug" {
		if err := bot.Stop(); err != nil {
			b.Error(err)
		}
		printAnswerBreakdown(b, bot.Log(), traces)
	}
}

// latencySample is one report's wait for the answer and for the invite.
type latencySample struct{ answer, invite time.Duration }

// reportTrace ties a report the bot answered to its times, for the breakdown.
type reportTrace struct {
	atOnce   int
	raw      bool
	dm       id.RoomID
	event    id.EventID
	accepted time.Time
	answered time.Time
	// The raw responder's own times: its sync that brought the request
	// returned, the request handed over (decrypted), the answer encrypted,
	// the answer sent.
	synced, received, sendStart, sendEnd time.Time
}

type latencyRow struct {
	atOnce                         int
	answer, invite, raw, rawInvite []time.Duration
}

// latencyReporter is one reporter with a direct chat with the bot and one
// with the raw responder.
type latencyReporter struct {
	u            *matrixtest.User
	botDM, rawDM id.RoomID
}

func measureLatency(b *testing.B, ctx context.Context, bot *testbed.Bot, raw *rawResponder, atOnce int) (*latencyRow, []reportTrace) {
	rounds, perRound := latencyOneByOne, 1
	if atOnce > 1 {
		rounds, perRound = latencyRounds, atOnce
	}
	row := &latencyRow{atOnce: atOnce}
	var traces []reportTrace
	for range b.N {
		b.StopTimer()
		reporters, err := newLatencyReporters(ctx, bot.UserID, raw, rounds*perRound)
		defer func() {
			for _, r := range reporters {
				if r != nil {
					r.u.Close()
				}
			}
		}()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for round := range rounds {
			group := reporters[round*perRound : (round+1)*perRound]
			// The bot first; once it has made every effect of those cases
			// (welcomes, the team's notes), the raw calls, on a quiet bot.
			samples, err := reportAll(ctx, group, bot.UserID, func(r *latencyReporter) id.RoomID { return r.botDM },
				func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect })
			if err != nil {
				b.Fatal(err)
			}
			for i, s := range samples {
				row.answer, row.invite = append(row.answer, s.answer), append(row.invite, s.invite)
				traces = append(traces, reportTrace{atOnce: atOnce, dm: group[i].botDM, event: s.event, accepted: s.accepted, answered: s.accepted.Add(s.answer)})
			}
			if err := bot.WaitOutboxEmpty(ctx, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			samples, err = reportAll(ctx, group, raw.u.ID(), func(r *latencyReporter) id.RoomID { return r.rawDM }, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i, s := range samples {
				row.raw, row.rawInvite = append(row.raw, s.answer), append(row.rawInvite, s.invite)
				t := raw.trace(s.event)
				t.atOnce, t.raw, t.dm, t.event, t.accepted, t.answered = atOnce, true, group[i].rawDM, s.event, s.accepted, s.accepted.Add(s.answer)
				traces = append(traces, t)
			}
			if err := raw.failed(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, d := range [][]time.Duration{row.answer, row.invite, row.raw, row.rawInvite} {
		slices.Sort(d)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"answer", row.answer}, {"raw_answer", row.raw}, {"invite", row.invite}, {"raw_invite", row.rawInvite}} {
		b.ReportMetric(ms(pct(m.d, 0.5)), m.name+"_p50_ms")
		b.ReportMetric(ms(pct(m.d, 0.9)), m.name+"_p90_ms")
	}
	b.ReportMetric(ratio(row.answer, row.raw, 0.5), "answer_p50_ratio")
	b.ReportMetric(ratio(row.invite, row.rawInvite, 0.5), "invite_p50_ratio")
	return row, traces
}

func ratio(d, raw []time.Duration, p float64) float64 {
	return float64(pct(d, p)) / float64(pct(raw, p))
}

// newLatencyReporters signs n reporters in, 10 at a time, each with a
// direct chat with the bot and one with the raw responder, both joined.
func newLatencyReporters(ctx context.Context, botID id.UserID, raw *rawResponder, n int) ([]*latencyReporter, error) {
	out := make([]*latencyReporter, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u, err := bed.NewUser(ctx, "lat")
			if err != nil {
				errs[i] = err
				return
			}
			r := &latencyReporter{u: u}
			out[i] = r
			for _, dm := range []struct {
				to   id.UserID
				room *id.RoomID
			}{{botID, &r.botDM}, {raw.u.ID(), &r.rawDM}} {
				if *dm.room, err = u.DM(ctx, dm.to); err == nil {
					if dm.to == raw.u.ID() {
						raw.expect(*dm.room, u.ID())
					}
					err = u.WaitJoined(ctx, time.Minute, *dm.room, dm.to)
				}
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

type reportSample struct {
	latencySample
	event    id.EventID
	accepted time.Time
}

// reportAll has every reporter of group send the request to responder at
// the same moment and waits for each one's answer and invite.
func reportAll(ctx context.Context, group []*latencyReporter, responder id.UserID, dm func(*latencyReporter) id.RoomID, room func(*event.Event) bool) ([]reportSample, error) {
	out := make([]reportSample, len(group))
	errs := make([]error, len(group))
	var wg sync.WaitGroup
	for i, r := range group {
		wg.Go(func() {
			evt, err := r.u.Say(ctx, dm(r), reportRequest)
			accepted := time.Now()
			if err != nil {
				errs[i] = err
				return
			}
			out[i].event, out[i].accepted = evt, accepted
			var inner sync.WaitGroup
			inner.Go(func() {
				var err error
				if _, err = r.u.WaitMessage(ctx, time.Minute, dm(r), responder, ""); err == nil {
					out[i].answer = time.Since(accepted)
				}
				errs[i] = errors.Join(errs[i], err)
			})
			_, err = r.u.WaitInvite(ctx, time.Minute, responder, func(evt *event.Event) bool {
				return evt.RoomID != dm(r) && (room == nil || room(evt))
			})
			if err == nil {
				out[i].invite = time.Since(accepted)
			}
			inner.Wait()
			errs[i] = errors.Join(errs[i], err)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// rawResponder is the raw calls the bot is measured against: a plain
// encrypted client that answers a request in a direct chat, received by
// sync, with an encrypted m.notice reply and, at the same time, creates an
// encrypted invite-only room inviting the reporter and the team.
type rawResponder struct {
	u    *matrixtest.User
	team []id.UserID

	mu     sync.Mutex
	dms    map[id.RoomID]id.UserID
	traces map[id.EventID]*reportTrace
	synced time.Time // when its last sync returned
	errs   []error
}

func newRawResponder(ctx context.Context, team []id.UserID) (*rawResponder, error) {
	r := &rawResponder{team: team, dms: map[id.RoomID]id.UserID{}, traces: map[id.EventID]*reportTrace{}}
	const name = "latraw"
	if err := bed.Server.Register(ctx, name, "password-"+name); err != nil {
		return nil, err
	}
	var err error
	r.u, err = matrixtest.Login(ctx, bed.Server, name, "password-"+name, bed.Dir, func(cli *mautrix.Client) {
		cli.ResponseHook = func(req *http.Request, _ *http.Response, err error, _ time.Duration) {
			if err == nil && strings.HasSuffix(req.URL.Path, "/sync") {
				r.mu.Lock()
				r.synced = time.Now()
				r.mu.Unlock()
			}
		}
		cli.Syncer.(mautrix.ExtensibleSyncer).OnEventType(event.EventMessage, func(_ context.Context, evt *event.Event) {
			received := time.Now()
			r.mu.Lock()
			reporter := r.dms[evt.RoomID]
			if evt.Sender == reporter && strings.Contains(evt.Content.AsMessage().Body, reportRequest) {
				r.traces[evt.ID] = &reportTrace{synced: r.synced, received: received}
			} else {
				reporter = ""
			}
			r.mu.Unlock()
			if reporter == "" {
				return
			}
			// Like the bot's outbox: the answer and the room at once, each
			// in its own request, without holding up the sync.
			go r.answer(ctx, cli, evt)
			go r.openRoom(ctx, cli, evt)
		})
	})
	if err != nil {
		return nil, err
	}
	r.u.SetAutoJoin(true)
	return r, nil
}

// expect tells the responder a direct chat with reporter.
func (r *rawResponder) expect(dm id.RoomID, reporter id.UserID) {
	r.mu.Lock()
	r.dms[dm] = reporter
	r.mu.Unlock()
}

func (r *rawResponder) answer(ctx context.Context, cli *mautrix.Client, evt *event.Event) {
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: "Thank you for reaching out."}
	content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(evt.ID)
	// What SendMessageEvent does in an encrypted room, in two steps to time them.
	encrypted, err := cli.Crypto.Encrypt(ctx, evt.RoomID, event.EventMessage, content)
	if err != nil {
		r.fail(err)
		return
	}
	sendStart := time.Now()
	_, err = cli.SendMessageEvent(ctx, evt.RoomID, event.EventEncrypted, encrypted)
	sendEnd := time.Now()
	r.fail(err)
	r.mu.Lock()
	r.traces[evt.ID].sendStart, r.traces[evt.ID].sendEnd = sendStart, sendEnd
	r.mu.Unlock()
}

// trace returns the responder's times for the request evt.
func (r *rawResponder) trace(evt id.EventID) reportTrace {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.traces[evt]; t != nil {
		return *t
	}
	return reportTrace{}
}

func (r *rawResponder) openRoom(ctx context.Context, cli *mautrix.Client, evt *event.Event) {
	_, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Visibility: "private", Name: "raw report",
		Invite: append([]id.UserID{evt.Sender}, r.team...),
		InitialState: []*event.Event{
			{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}},
			{Type: event.StateJoinRules, Content: event.Content{Parsed: &event.JoinRulesEventContent{JoinRule: event.JoinRuleInvite}}},
			{Type: event.StateGuestAccess, Content: event.Content{Parsed: &event.GuestAccessEventContent{GuestAccess: event.GuestAccessForbidden}}},
			{Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityInvited}}},
		},
	})
	r.fail(err)
}

func (r *rawResponder) fail(err error) {
	if err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
	}
}

func (r *rawResponder) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

func printLatencyTable(rows []latencyRow) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%d", d.Milliseconds()) }
	fmt.Println("reporters  what    n   p50 ms  p90 ms  raw p50 ms  raw p90 ms  p50 ratio")
	for _, r := range rows {
		for _, m := range []struct {
			what     string
			bot, raw []time.Duration
		}{{"answer", r.answer, r.raw}, {"invite", r.invite, r.rawInvite}} {
			fmt.Printf("%-9s  %-6s  %2d  %6s  %6s  %10s  %10s  %9.2f\n", map[bool]string{true: "1 by 1", false: fmt.Sprintf("%d at once", r.atOnce)}[r.atOnce == 1],
				m.what, len(m.bot), ms(pct(m.bot, 0.5)), ms(pct(m.bot, 0.9)), ms(pct(m.raw, 0.5)), ms(pct(m.raw, 0.9)), ratio(m.bot, m.raw, 0.5))
		}
	}
}

// botLogLine is what the breakdown reads of one line of the bot's JSON log.
type botLogLine struct {
	Time     string  `json:"time"`
	Message  string  `json:"message"`
	Lane     string  `json:"lane"`
	URL      string  `json:"url"`
	Duration float64 `json:"duration"`
	CaseID   string  `json:"case_id"`
	EventID  string  `json:"event_id"`
	at       time.Time
}

// printAnswerBreakdown splits the wait for each first answer in stages,
// the bot's from its debug log (its clock is the benchmark's), the raw
// responder's from its own times: the DM's way to the code answering it
// (bot: until the sync that brought it, or its key, returned; then
// decryption, with the sender's device keys fetched if unknown), the
// handler (its transaction and commit), the outbox picking the answer up,
// the encryption set-up (device keys, one-time keys, the megolm session
// sent to the reporter's device), the send request, and the answer's way
// to the reporter (their sync and decryption).
func printAnswerBreakdown(b *testing.B, log string, traces []reportTrace) {
	var syncs []time.Time
	decrypting, decrypted := map[string]time.Time{}, map[string]time.Time{}
	opened := map[string]botLogLine{}
	lanes := map[string][]botLogLine{}
	for _, text := range strings.Split(log, "\n") {
		var l botLogLine
		if json.Unmarshal([]byte(text), &l) != nil {
			continue
		}
		var err error
		if l.at, err = time.Parse("2006-01-02T15:04:05.000Z07:00", l.Time); err != nil {
			continue
		}
		switch {
		case l.Message == "Request completed" && strings.Contains(l.URL, "/sync?"):
			syncs = append(syncs, l.at)
		case l.Message == "Decrypting received event":
			decrypting[l.EventID] = l.at
		case l.Message == "Event decrypted successfully":
			decrypted[l.EventID] = l.at
		case l.Message == "Opened case":
			opened[l.EventID] = l
		case l.Lane != "":
			lanes[l.Lane] = append(lanes[l.Lane], l)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	stages := []string{"DM to answering code", "  sync returned", "  batch, decryption", "handler (tx, commit)", "outbox pick-up", "encryption set-up", "send request", "to the reporter", "total"}
	type key struct {
		atOnce int
		raw    bool
	}
	got := map[key]map[string][]time.Duration{}
	add := func(k key, d map[string]time.Duration) {
		if got[k] == nil {
			got[k] = map[string][]time.Duration{}
		}
		for _, s := range stages {
			got[k][s] = append(got[k][s], d[s])
		}
	}
	for _, t := range traces {
		d := map[string]time.Duration{"total": t.answered.Sub(t.accepted)}
		if t.raw {
			if t.sendEnd.IsZero() {
				continue
			}
			d["DM to answering code"] = t.received.Sub(t.accepted)
			d["  sync returned"] = t.synced.Sub(t.accepted)
			d["  batch, decryption"] = t.received.Sub(t.synced)
			d["encryption set-up"] = t.sendStart.Sub(t.received)
			d["send request"] = t.sendEnd.Sub(t.sendStart)
			d["to the reporter"] = t.answered.Sub(t.sendEnd)
			add(key{t.atOnce, true}, d)
			continue
		}
		o, ok := opened[string(t.event)]
		lane := lanes["reply:"+o.CaseID]
		start, done := decrypting[string(t.event)], decrypted[string(t.event)]
		i, _ := slices.BinarySearchFunc(syncs, start, func(s, at time.Time) int { return s.Compare(at.Add(time.Nanosecond)) })
		if !ok || len(lane) == 0 || start.IsZero() || done.IsZero() || i == 0 {
			continue
		}
		picked := lane[0].at.Add(-time.Duration(lane[0].Duration * float64(time.Millisecond)))
		var sendStart, sendEnd time.Time
		for _, l := range lane {
			if strings.Contains(l.URL, "/send/") {
				sendStart, sendEnd = l.at.Add(-time.Duration(l.Duration*float64(time.Millisecond))), l.at
				break
			}
		}
		if sendEnd.IsZero() {
			continue
		}
		d["DM to answering code"] = done.Sub(t.accepted)
		d["  sync returned"] = syncs[i-1].Sub(t.accepted)
		d["  batch, decryption"] = done.Sub(syncs[i-1])
		d["handler (tx, commit)"] = o.at.Sub(done)
		d["outbox pick-up"] = picked.Sub(o.at)
		d["encryption set-up"] = sendStart.Sub(picked)
		d["send request"] = sendEnd.Sub(sendStart)
		d["to the reporter"] = t.answered.Sub(sendEnd)
		add(key{t.atOnce, false}, d)
	}
	for _, k := range []int{1, latencyAtOnce} {
		bot, raw := got[key{k, false}], got[key{k, true}]
		if bot == nil || raw == nil {
			b.Logf("the first answers with %d at once could not be traced in the bot's log", k)
			continue
		}
		fmt.Printf("first answer, %d at once (bot: %d traced, raw: %d)  bot p50  bot p90  raw p50  raw p90 (ms)\n", k, len(bot["total"]), len(raw["total"]))
		for _, s := range stages {
			for _, d := range [][]time.Duration{bot[s], raw[s]} {
				slices.Sort(d)
			}
			fmt.Printf("  %-22s %26.0f %8.0f %8.0f %8.0f\n", s, ms(pct(bot[s], 0.5)), ms(pct(bot[s], 0.9)), ms(pct(raw[s], 0.5)), ms(pct(raw[s], 0.9)))
		}
	}
}
