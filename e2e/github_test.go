package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

func TestEachCaseGetsADraftAdvisoryTheReporterIsInvitedTo(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHub(false, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	bot := startBot(t, ctx, "githubbot", testbed.BotOptions{GitHub: gh})
	reporter := newUser(t, ctx, "ghreporter")
	_, caseID := report(t, ctx, reporter, bot.UserID)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	link := waitMessage(t, ctx, reporter, room, bot.UserID, "private GitHub Security Advisory for **"+caseID)
	advisories := gh.Advisories()
	if len(advisories) != 1 || advisories[0].Summary != "Security report "+caseID || advisories[0].State != "draft" {
		t.Fatalf("the stand-in has %+v, want one draft for %s", advisories, caseID)
	}
	if body := link.Content.AsMessage().Body; !strings.Contains(body, advisories[0].GHSAID) {
		t.Errorf("the link message does not name the advisory: %q", body)
	}
	if v := advisories[0].Vulnerabilities; len(v) != 1 || v[0]["package"].(map[string]any)["ecosystem"] != "other" {
		t.Errorf("the draft's placeholder package: %+v", v)
	}

	say(t, ctx, reporter, room, "!github octocat")
	confirm := waitMessage(t, ctx, reporter, room, bot.UserID, "**octocat** is invited")
	if !confirm.Mautrix.WasEncrypted {
		t.Error("the confirmation was not encrypted")
	}
	if got := gh.Advisories()[0].CollaboratingUsers; !slices.Contains(got, "octocat") {
		t.Errorf("collaborators on GitHub: %v", got)
	}
	// The reporter names their own account once; anyone else is the team's call.
	say(t, ctx, reporter, room, "!github someone-else")
	waitMessage(t, ctx, reporter, room, bot.UserID, "you already named your GitHub account (octocat)")
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec github "+caseID+" no-such-user")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "GitHub has no user named")

	// A private repository cannot get a CVE from GitHub: said plainly.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec cve "+caseID)
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "only takes CVE requests for public repositories")
	bed.Settle(t, ctx, bot)
	if v := gh.Violations(); len(v) > 0 {
		t.Errorf("secbot sent requests GitHub's description rejects:\n%s", strings.Join(v, "\n"))
	}
	if strings.Contains(bot.Log(), testbed.GitHubToken) {
		t.Error("the GitHub token is in secbot's log")
	}
}

func TestGitHubOutageTellsTheTeamOnceAndCatchesUp(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHub(false)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	for range 3 {
		gh.Inject(ghsatestFault(502))
	}
	bot := startBot(t, ctx, "outagebot", testbed.BotOptions{GitHub: gh})
	reporter := newUser(t, ctx, "outagereporter")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue")
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "GitHub is failing")
	waitMessage(t, ctx, reporter, room, bot.UserID, "private GitHub Security Advisory for **")
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "GitHub answers again")
	bed.Settle(t, ctx, bot, bed.Alice)
	if n := countFrom(bed.Alice, bot.UserID, bed.TeamRoom, "GitHub is failing"); n != 1 {
		t.Errorf("the team was told %d times that GitHub is failing, want once", n)
	}
	if n := len(gh.Advisories()); n != 1 {
		t.Errorf("%d advisories after the outage, want 1", n)
	}
}

// A crash after GitHub created the advisory but before secbot recorded it
// must not leave a second advisory: the retry adopts the first.
func TestCrashAfterGitHubCreatedTheAdvisoryAdoptsIt(t *testing.T) {
	ctx := testContext(t)
	gh, err := testbed.NewGitHub(false)
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	bot := startBot(t, ctx, "ghcrashbot", testbed.BotOptions{GitHub: gh}, crashpoint.Env+"=ghsa.created_not_recorded")
	reporter := newUser(t, ctx, "ghcrash")
	dm := openDM(t, ctx, reporter, bot.UserID)
	say(t, ctx, reporter, dm, "I want to report a security issue")
	crashedAt(t, bot, "ghsa.created_not_recorded")
	if n := len(gh.Advisories()); n != 1 {
		t.Fatalf("%d advisories at the crash, want 1", n)
	}
	restart(t, bot)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "private GitHub Security Advisory for **")
	bed.Settle(t, ctx, bot)
	if n := len(gh.Advisories()); n != 1 {
		t.Errorf("%d advisories after the restart, want exactly 1", n)
	}
	if gh.Requests("GET", "/repos/enarx/enarx/security-advisories") == 0 {
		t.Error("the retry did not look for the advisory before creating one")
	}
}
