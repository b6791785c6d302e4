package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
)

// rcLatencyReports is how many reports BenchmarkRocketChatFirstAnswer
// measures, one reporter at a time.
const rcLatencyReports = 50

// BenchmarkRocketChatFirstAnswer measures what a Rocket.Chat reporter
// waits for after their first message in a DM with the bot: the real
// serve on the stand-in, from the moment the server took the message
// (and streamed it) until the bot's answer is in the DM. One reporter at
// a time; between two, the case's other work (the team's notice, the case
// group and its welcome) is let finish, outside the measurement.
func BenchmarkRocketChatFirstAnswer(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bed := newRCBed(b, rctest.Options{})
	team := newRCTeam(b, ctx, bed)
	bed.serve(ctx, bed.config(rcTeamTOML+"[intake]\nmax_new_cases_per_hour = 0\n"))
	var answers []time.Duration
	n := 0
	for range b.N {
		for range rcLatencyReports {
			n++
			b.StopTimer()
			caseID := fmt.Sprintf("SR-%d-%04d", time.Now().UTC().Year(), n)
			userID, token := bed.s.AddUser(fmt.Sprintf("reporter%d", n))
			dm, err := bed.client(userID, token).CreateDM(ctx, "secbot")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			bed.say(userID, dm.ID, "I want to report a security issue")
			if err := bed.s.Wait(ctx, func() bool { return bed.said(dm.ID, caseID) }); err != nil {
				b.Fatalf("the answer to %s: %v", caseID, err)
			}
			answers = append(answers, time.Since(start))
			b.StopTimer()
			bed.wait(ctx, "the case group's welcome", func() bool {
				group, ok := bed.s.RoomByName("security-report-" + strings.ToLower(caseID))
				return ok && bed.said(group.ID, caseID) && bed.said(team.teamID, "New security report **"+caseID+"**")
			})
			b.StartTimer()
		}
	}
	slices.Sort(answers)
	pct := func(p float64) float64 {
		return float64(answers[int(float64(len(answers)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "answer_p50_ms")
	b.ReportMetric(pct(0.9), "answer_p90_ms")
	b.ReportMetric(float64(len(answers)), "reports")
}
