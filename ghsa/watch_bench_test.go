package ghsa

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/testenv/fakechat"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// BenchmarkWatch100Repositories3Organizations watches 100 repositories in
// 3 organizations at the default poll_every (2m) for an hour of a fake
// clock, on the GitHub stand-in with the real store and handlers: 150
// older advisories, and 12 private reports filed at odd moments. It
// reports the requests made per hour (GitHub's answers 304 included) and
// the time from each report's creation to its team-room notice being
// recorded (the outbox then posts it), and fails past the targets: 500
// requests an hour, a notice within one poll interval.
func BenchmarkWatch100Repositories3Organizations(b *testing.B) {
	const every = 2 * time.Minute // the default poll_every
	orgs := []string{"acme", "globex", "initech"}
	var repos []string
	for i := range 100 {
		repos = append(repos, fmt.Sprintf("%s/repo%02d", orgs[i%3], i))
	}
	for range b.N {
		ctx := context.Background()
		start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		clock := clockwork.NewFakeClockAt(start)
		srv, err := ghsatest.New(ghsatest.Options{Owner: "acme", Repo: "repo00", Repositories: repos, Users: []string{"octocat"}, Token: token, Now: clock.Now}, "")
		if err != nil {
			b.Fatal(err)
		}
		client, err := New(Config{APIURL: srv.URL(), Owner: "acme", Repo: "repo00", Token: token, Clock: clock})
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), "secbot.db"), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		tmpl, _ := templates.Load("")
		sla := func(s string) disclosure.Span { sp, _ := disclosure.ParseSpan(s); return sp }
		cal, _ := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
		policy := disclosure.NewInForce(disclosure.Policy{SLA: disclosure.SLA{Acknowledge: sla("48h"), DetailedResponse: sla("96h"), UpdateInterval: sla("5 working days")},
			Calendar: cal, Team: []disclosure.Person{"matrix:@alice:x"}, TeamRoom: "matrix:!team:x", CommandPrefix: "!sec", GitHub: true, Repository: "acme/repo00", Organizations: orgs})
		h := handlers.New(policy, st, fakechat.Platforms(), tmpl, clock, nil)
		w := &Watcher{Client: client, Repositories: repos[:1], Organizations: orgs, Every: every, Clock: clock, In: chat.Dispatch{In: h, Log: zerolog.Nop()}, Health: func(_ context.Context, err error) {
			if err != nil {
				b.Error(err)
			}
		}}

		for i := range 150 {
			id := srv.AddReport(ghsatest.Report{Repository: repos[(i*7)%100], Reporter: "octocat", CreatedAt: start.Add(-time.Duration(1000-i) * time.Hour)})
			srv.SetState(id, []string{"published", "closed"}[i%2])
		}
		// The first poll after a start reads everything; the hour measured
		// is the steady state after it.
		w.Poll(ctx)
		clock.Advance(every)
		before := srv.Responses("", "", 0)
		hourStart := clock.Now()
		filed := map[string]time.Time{}
		next := 0
		for step := time.Duration(0); step < time.Hour; step += 10 * time.Second {
			now := hourStart.Add(step)
			clock.Advance(now.Sub(clock.Now()))
			if step%every == 0 {
				w.Poll(ctx)
			}
			// A report every 5 minutes and 10 seconds or so, between polls.
			if step >= time.Duration(next)*310*time.Second && next < 12 {
				id := srv.AddReport(ghsatest.Report{Repository: repos[(next*37)%100], Reporter: "octocat", Summary: "not stored"})
				filed[id] = clock.Now()
				next++
			}
		}
		clock.Advance(hourStart.Add(time.Hour).Sub(clock.Now()))
		w.Poll(ctx) // the hour's last poll sees what came last
		requests := srv.Responses("", "", 0) - before
		notModified := srv.Responses("", "", 304)

		sends, _, err := st.EffectsOfKind(ctx, outbox.KindSend)
		if err != nil {
			b.Fatal(err)
		}
		var worst, total time.Duration
		noticed := 0
		for _, e := range sends {
			for id, at := range filed {
				if strings.Contains(string(e.Payload), id) && strings.Contains(string(e.Payload), `"room":"matrix:!team:x"`) {
					d := e.CreatedAt.Sub(at)
					worst, total, noticed = max(worst, d), total+d, noticed+1
				}
			}
		}
		b.ReportMetric(float64(requests), "requests/hour")
		b.ReportMetric(float64(notModified)/float64(srv.Responses("", "", 0)), "share-304")
		b.ReportMetric(float64(client.Rate().RequestsLastHour()), "counted/hour")
		if noticed > 0 {
			b.ReportMetric(worst.Seconds(), "s-notice-max")
			b.ReportMetric(total.Seconds()/float64(noticed), "s-notice-mean")
		}
		if noticed != len(filed) {
			b.Errorf("%d of %d reports reached the team room", noticed, len(filed))
		}
		if requests >= 500 {
			b.Errorf("%d requests in an hour, the target is under 500", requests)
		}
		if worst > every {
			b.Errorf("a notice took %s, more than one poll interval (%s)", worst, every)
		}
		_ = st.Close()
		srv.Close()
	}
}
