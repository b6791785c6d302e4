package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// reportCanary is the reporter's words in a private report: they must
// never reach a room, the log or the database.
const reportCanary = "CANARY-heap-overflow-in-the-loader"

var reportRepos = []string{"enarx/enarx", "enarx/other"}

// ackBy is how the team notice words the acknowledgement's due time for a
// report filed at filed (the bed's policy: 48 h, in UTC).
func ackBy(filed time.Time) string {
	return "Acknowledge by **" + filed.Add(48*time.Hour).UTC().Format("Mon 2 Jan 2006 15:04 MST") + "**"
}

func TestAPrivateReportOnGitHubBecomesACaseWorkedFromChat(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHubWith([]string{"enarx/other"}, "octocat", "helper-gh")
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	bot := startBot(t, ctx, "reportsbot", servedOptions(t, testbed.BotOptions{GitHub: gh, GitHubRepositories: reportRepos, PollEvery: "1s"}))
	filed := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	ghsaID := gh.AddReport(ghsatest.Report{Reporter: "octocat", Summary: reportCanary, Description: reportCanary + " details", CreatedAt: filed})

	notice := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, ghsaID)
	body := notice.Content.AsMessage().Body
	caseID := caseIDPattern.FindString(body)
	if caseID == "" || !strings.Contains(body, "enarx/enarx") || !strings.Contains(body, "octocat") || !strings.Contains(body, ackBy(filed)) {
		t.Fatalf("the team notice: %q; want the case, repository, reporter and %s", body, ackBy(filed))
	}
	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	if err := bed.Alice.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "reported this privately on GitHub")

	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec claim "+caseID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "Accepted the private report of **"+caseID)
	if a := gh.Advisories()[0]; a.State != "draft" {
		t.Errorf("the report is %s on GitHub after claim, want draft", a.State)
	}

	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec respond "+caseID+" thanks, we reproduced it")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "answered the reporter of "+caseID+" on GitHub")

	say(t, ctx, bed.Alice, room, "!sec github helper-gh")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "**helper-gh** is invited")
	say(t, ctx, bed.Alice, room, "!sec repo mallory/elsewhere")
	waitMessage(t, ctx, bed.Alice, room, bot.UserID, "not one of the configured repositories")
	say(t, ctx, bed.Alice, room, "!sec repo enarx/other")
	moved := waitMessage(t, ctx, bed.Alice, room, bot.UserID, "moved from enarx/enarx to enarx/other")
	all := gh.Advisories()
	if len(all) != 2 || all[0].State != "closed" || all[1].Repository != "enarx/other" || all[1].State != "draft" {
		t.Fatalf("advisories after the move: %+v", all)
	}
	if !strings.Contains(moved.Content.AsMessage().Body, all[1].GHSAID) {
		t.Errorf("the case room was not given the new link: %q", moved.Content.AsMessage().Body)
	}
	if got := strings.Join(all[1].CollaboratingUsers, ","); got != "helper-gh,octocat" {
		t.Errorf("the new draft's collaborators: %s, want helper-gh and the reporter", got)
	}
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+caseID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, all[1].GHSAID)

	// A second report, accepted on github.com: its acknowledgement is met.
	second := gh.AddReport(ghsatest.Report{Repository: "enarx/other", Reporter: "helper-gh", Summary: reportCanary})
	secondNotice := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, second)
	secondID := caseIDPattern.FindString(secondNotice.Content.AsMessage().Body)
	gh.SetState(second, "draft")
	waitStatus(t, ctx, bot, secondID, "github.accepted")

	// Nothing new: every poll is answered 304.
	bed.Settle(t, ctx, bot, bed.Alice)
	full := gh.Responses("GET", "/repos/", 200)
	// Two more polls of both repositories.
	waitRequests(t, gh, "GET", "/repos/", 304, gh.Responses("GET", "/repos/", 304)+4)
	if got := gh.Responses("GET", "/repos/", 200); got != full {
		t.Errorf("%d full answers while nothing changed, want only 304s", got-full)
	}
	// /metrics: the requests of the last hour, and the rate limit left as
	// GitHub (the stand-in counts 5,000 an hour, 304s free) last said it.
	answered := gh.Responses("", "", 0) // before the scrape: polls go on
	if n, err := bot.Metric("secbot_github_requests_last_hour"); err != nil || n < float64(answered) {
		t.Errorf("secbot_github_requests_last_hour = %v (%v), the stand-in answered at least %d", n, err, answered)
	}
	if left, err := bot.Metric("secbot_github_rate_limit_remaining"); err != nil || left >= ghsatest.RateLimit || left < ghsatest.RateLimit-float64(gh.Responses("", "", 0)) {
		t.Errorf("secbot_github_rate_limit_remaining = %v (%v)", left, err)
	}
	if n := countFrom(bed.Alice, bot.UserID, bed.TeamRoom, "New security report **"); n != 2 {
		t.Errorf("%d team notices of new reports, want 2", n)
	}
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("secbot sent requests GitHub's description rejects:\n%s", strings.Join(v, "\n"))
	}
	assertCanaryNowhere(t, bot)
}

// waitStatus asks for a case's status until it shows want: each answer
// is awaited with Settle (the bot has answered everything sent before).
func waitStatus(t *testing.T, ctx context.Context, bot *testbed.Bot, caseID, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+caseID)
		bed.Settle(t, ctx, bot, bed.Alice)
		for _, b := range messagesFrom(bed.Alice, bed.TeamRoom, bot.UserID) {
			if strings.Contains(b, "**"+caseID+"** —") && strings.Contains(b, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status of %s never showed %q", caseID, want)
		}
	}
}

// waitRequests waits until the stand-in answered at least n requests of
// method to paths starting with prefix, with status (0: any).
func waitRequests(t *testing.T, gh *ghsatest.Server, method, prefix string, status, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for gh.Responses(method, prefix, status) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the stand-in answered %d %s %s requests (status %d), want %d", gh.Responses(method, prefix, status), method, prefix, status, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var canaryPattern = regexp.MustCompile(`CANARY-[a-z-]+`)

// assertCanaryNowhere checks the bot's log and rooms for the report's words.
func assertCanaryNowhere(t *testing.T, bot *testbed.Bot) {
	t.Helper()
	if canaryPattern.MatchString(bot.Log()) {
		t.Error("the report's text is in secbot's log")
	}
	for _, b := range botBodies(bed.Alice.Events(), bot) {
		if strings.Contains(b, reportCanary) {
			t.Errorf("the report's text was posted: %q", b)
		}
	}
}

// A crash after the watcher saw a report but before its case committed:
// after the restart the report opens one case, once.
func TestAPrivateReportSeenAgainAfterACrashOpensOneCase(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHubWith([]string{"enarx/other"}, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	ghsaID := gh.AddReport(ghsatest.Report{Repository: "enarx/other", Reporter: "octocat", Summary: reportCanary})
	bot := startBot(t, ctx, "reportcrashbot", testbed.BotOptions{GitHub: gh, GitHubRepositories: reportRepos, PollEvery: "1s"}, crashpoint.Env+"=github.report_before_commit")
	crashedAt(t, bot, "github.report_before_commit")
	restart(t, bot)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, ghsaID)
	// And once more, from scratch: a restart reads every feed in full.
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	waitRequests(t, gh, "GET", "/repos/enarx/other/security-advisories", 0, gh.Responses("GET", "/repos/enarx/other/security-advisories", 0)+2)
	bed.Settle(t, ctx, bot, bed.Alice)
	if n := countFrom(bed.Alice, bot.UserID, bed.TeamRoom, ghsaID); n != 1 {
		t.Errorf("the report was announced %d times, want once", n)
	}
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec list")
	list := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "SR-")
	if n := len(caseIDPattern.FindAllString(list.Content.AsMessage().Body, -1)); n != 1 {
		t.Errorf("%d open cases listed, want 1: %q", n, list.Content.AsMessage().Body)
	}
	assertCanaryNowhere(t, bot)
}

// Watching that fails (a refused token) is told to the team room once, and
// once when it works again.
func TestWatchingThatFailsIsToldOnceAndItsRecoveryOnce(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHubWith(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	for range 3 {
		gh.Inject(ghsatest.Fault{Status: 401, Body: `{"message":"Bad credentials"}`})
	}
	bot := startBot(t, ctx, "watchfailbot", testbed.BotOptions{GitHub: gh, GitHubRepositories: []string{"enarx/enarx"}, PollEvery: "1s"})
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "Watching GitHub for private vulnerability reports fails: GitHub refused the token")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "private vulnerability reports works again")
	ghsaID := gh.AddReport(ghsatest.Report{Reporter: "octocat"})
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, ghsaID)
	bed.Settle(t, ctx, bot, bed.Alice)
	if n, m := countFrom(bed.Alice, bot.UserID, bed.TeamRoom, "fails"), countFrom(bed.Alice, bot.UserID, bed.TeamRoom, "reports works again"); n != 1 || m != 1 {
		t.Errorf("told %d times that watching fails and %d that it works again, want once each", n, m)
	}
	if strings.Contains(bot.Log(), testbed.GitHubToken) {
		t.Error("the GitHub token is in secbot's log")
	}
}
