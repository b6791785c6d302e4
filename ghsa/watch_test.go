package ghsa

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
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

// watchWorld is the stand-in with repositories in organizations, a store,
// the real handlers and the watcher, on a fake clock.
type watchWorld struct {
	srv     *ghsatest.Server
	store   *store.Store
	clock   *clockwork.FakeClock
	h       *handlers.Handlers
	client  *Client
	effects *Effects
	watcher *Watcher
	policy  *disclosure.InForce
}

const canary = "CANARY-the-reporters-own-words"

func newWatchWorld(t *testing.T, repos []string, orgs []string) *watchWorld {
	t.Helper()
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(reported)
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Repositories: repos, Users: []string{"octocat", "reporter1"}, Token: token, Now: clock.Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("requests GitHub's description rejects:\n%s", strings.Join(v, "\n"))
		}
		srv.Close()
	})
	client, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", Token: token, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	sla := func(s string) disclosure.Span { sp, _ := disclosure.ParseSpan(s); return sp }
	cal, _ := disclosure.NewCalendar("UTC", []string{"Mon", "Tue", "Wed", "Thu", "Fri"}, nil)
	policy := disclosure.NewInForce(disclosure.Policy{
		SLA: disclosure.SLA{Acknowledge: sla("48h"), DetailedResponse: sla("96h"), UpdateInterval: sla("5 working days")}, Calendar: cal,
		Team: []disclosure.Person{"matrix:@alice:x", "matrix:@bob:x"}, Coordinator: "matrix:@alice:x", TeamRoom: "matrix:!team:x", CommandPrefix: "!sec",
		GitHub: true, Repository: "enarx/enarx", Repositories: append([]string{"enarx/enarx"}, repos...), Organizations: orgs,
	})
	w := &watchWorld{srv: srv, store: st, clock: clock, client: client, policy: policy}
	w.h = handlers.New(policy, st, fakechat.Platforms(), tmpl, clock, nil)
	w.effects = &Effects{Client: client, Store: st, Templates: tmpl, Clock: clock, Policy: policy, Product: "enarx"}
	w.watcher = w.newWatcher(repos, orgs)
	return w
}

// newWatcher is a watcher as at a start: nothing read yet.
func (w *watchWorld) newWatcher(repos, orgs []string) *Watcher {
	return &Watcher{Client: w.client, Repositories: append([]string{"enarx/enarx"}, repos...), Organizations: orgs, Every: 2 * time.Minute,
		Clock: w.clock, In: chat.Dispatch{In: w.h, Log: zerolog.Nop()}, Health: w.effects.WatchHealth}
}

func (w *watchWorld) cases(t *testing.T) []*store.Case {
	t.Helper()
	cs, err := w.store.OpenCases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// teamSays are the messages recorded for the team room.
func (w *watchWorld) teamSays(t *testing.T) []string {
	t.Helper()
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range effects {
		var s outbox.SendEffect
		if err := e.Decode(&s); err != nil {
			t.Fatal(err)
		}
		if s.To.Room == "matrix:!team:x" {
			out = append(out, s.Markdown)
		}
	}
	return out
}

func TestAPrivateReportBecomesOneCaseWithClocksFromItsFiling(t *testing.T) {
	w := newWatchWorld(t, nil, nil)
	ctx := context.Background()
	filed := reported.Add(-90 * time.Minute)
	ghsaID := w.srv.AddReport(ghsatest.Report{Reporter: "octocat", Summary: canary, Description: canary + " in detail", CreatedAt: filed})
	w.watcher.Poll(ctx)

	cs := w.cases(t)
	if len(cs) != 1 {
		t.Fatalf("%d cases, want 1", len(cs))
	}
	c := cs[0]
	if c.Channel != disclosure.ChannelGitHub || c.Reporter != disclosure.GitHubPerson("octocat") || c.ReporterGitHub != "octocat" ||
		c.GHSAID != ghsaID || c.ReportGHSA != ghsaID || c.GHSARepo != "enarx/enarx" || !c.CreatedAt.Equal(filed) {
		t.Errorf("the case is %+v", c)
	}
	ds, err := w.store.DeadlinesOf(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.StartedAt.Equal(filed) {
			t.Errorf("the %s clock starts at %s, not when the report was filed (%s)", d.Kind, d.StartedAt, filed)
		}
	}
	notes := w.teamSays(t)
	if len(notes) != 1 || !strings.Contains(notes[0], ghsaID) || !strings.Contains(notes[0], "enarx/enarx") || !strings.Contains(notes[0], "octocat") {
		t.Errorf("the team room is told %q, want one notice naming the repository, the advisory and the reporter", notes)
	}
	rooms, _, _ := w.store.EffectsOfKind(ctx, outbox.KindCreateCaseRoom)
	var room outbox.CreateCaseRoomEffect
	if len(rooms) != 1 || rooms[0].Decode(&room) != nil || len(room.Invite) != 2 {
		t.Errorf("case room %+v: want one, for the two team members only", room)
	}

	// Seen again: by the same watcher (a 304), and after a restart (read in full).
	w.clock.Advance(2 * time.Minute)
	before := w.srv.Responses("", "", 0)
	w.watcher.Poll(ctx)
	if got, notModified := w.srv.Responses("", "", 0)-before, w.srv.Responses("GET", "/repos/enarx/enarx/security-advisories", 304); got != 1 || notModified != 1 {
		t.Errorf("a poll with nothing new made %d requests (%d answered 304), want one 304", got, notModified)
	}
	w.newWatcher(nil, nil).Poll(ctx)
	if n := len(w.cases(t)); n != 1 || len(w.teamSays(t)) != 1 {
		t.Errorf("after seeing the report again: %d cases, %d notices; want 1 and 1", n, len(w.teamSays(t)))
	}
	assertNoCanary(t, w)
}

// assertNoCanary checks that nothing of the report's text was stored.
func assertNoCanary(t *testing.T, w *watchWorld) {
	t.Helper()
	ctx := context.Background()
	var found []string
	for _, kind := range []string{outbox.KindSend, outbox.KindCreateCaseRoom} {
		effects, _, _ := w.store.EffectsOfKind(ctx, kind)
		for _, e := range effects {
			if strings.Contains(string(e.Payload), "CANARY") {
				found = append(found, kind)
			}
		}
	}
	cs := w.cases(t)
	if data, _ := json.Marshal(cs); strings.Contains(string(data), "CANARY") {
		found = append(found, "cases")
	}
	if len(found) > 0 {
		t.Errorf("the report's text was stored: %v", found)
	}
}

func TestAnOrganizationIsReadPageByPageOnlyWhereItChanged(t *testing.T) {
	var repos []string
	for i := range 5 {
		repos = append(repos, fmt.Sprintf("profian/repo%d", i))
	}
	w := newWatchWorld(t, repos, []string{"profian"})
	ctx := context.Background()
	// 230 advisories the maintainers drafted: three pages, no reports.
	for i := range 230 {
		w.srv.AddReport(ghsatest.Report{Repository: repos[i%5], Reporter: "octocat", CreatedAt: reported.Add(-time.Duration(300-i) * time.Hour)})
	}
	for _, a := range w.srv.Advisories() {
		w.clock.Advance(time.Second)
		w.srv.SetState(a.GHSAID, "closed")
	}
	w.watcher.Poll(ctx)
	if got := w.srv.Responses("GET", "/orgs/profian/security-advisories", 200); got != 3 {
		t.Errorf("the first poll read %d pages of the organization, want all 3", got)
	}
	if n := len(w.cases(t)); n != 0 {
		t.Errorf("closed advisories opened %d cases", n)
	}
	w.clock.Advance(2 * time.Minute)
	w.srv.AddReport(ghsatest.Report{Repository: "profian/repo3", Reporter: "reporter1"})
	w.watcher.Poll(ctx)
	if got := w.srv.Responses("GET", "/orgs/profian/security-advisories", 200); got != 4 {
		t.Errorf("after one new report the organization was read in %d pages, want 1 more (4)", got-3)
	}
	if cs := w.cases(t); len(cs) != 1 || cs[0].GHSARepo != "profian/repo3" {
		t.Errorf("cases %+v, want one in profian/repo3", cs)
	}
	w.clock.Advance(2 * time.Minute)
	w.watcher.Poll(ctx)
	if got := w.srv.Responses("GET", "/orgs/profian/security-advisories", 304); got != 1 {
		t.Errorf("%d answers 304 to the poll with nothing new, want 1", got)
	}
	if got := w.srv.Responses("GET", "/repos/profian/", 0); got != 0 {
		t.Errorf("repositories of a watched organization were asked one by one (%d requests)", got)
	}
	if n := w.client.Rate().RequestsLastHour(); n != w.srv.Responses("", "", 0) {
		t.Errorf("%d requests counted in the last hour, the stand-in answered %d", n, w.srv.Responses("", "", 0))
	}
}

func TestAcceptedOrClosedOnGitHubMeetsOrEndsTheCase(t *testing.T) {
	w := newWatchWorld(t, []string{"enarx/other"}, nil)
	ctx := context.Background()
	accepted := w.srv.AddReport(ghsatest.Report{Reporter: "octocat"})
	closed := w.srv.AddReport(ghsatest.Report{Repository: "enarx/other", Reporter: "reporter1"})
	w.watcher.Poll(ctx)
	if n := len(w.cases(t)); n != 2 {
		t.Fatalf("%d cases, want 2", n)
	}
	w.clock.Advance(2 * time.Minute)
	w.srv.SetState(accepted, "draft")
	w.srv.SetState(closed, "closed")
	w.watcher.Poll(ctx)

	a, err := w.store.CaseByAdvisory(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := w.store.DeadlinesOf(ctx, a.ID)
	for _, d := range ds {
		if d.Kind == disclosure.DeadlineAcknowledge && !d.Met() {
			t.Error("the report accepted on github.com did not meet the acknowledgement")
		}
	}
	c, err := w.store.CaseByAdvisory(ctx, closed)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stage != disclosure.StageRejected {
		t.Errorf("the report closed on github.com left its case %s", c.Stage)
	}
	if notes := w.teamSays(t); !strings.Contains(notes[len(notes)-1], "closed on GitHub") {
		t.Errorf("the team was not told of the closed report: %q", notes)
	}
}

func TestClaimAndRepoMakeValidRequests(t *testing.T) {
	w := newWatchWorld(t, []string{"enarx/other"}, nil)
	ctx := context.Background()
	report := w.srv.AddReport(ghsatest.Report{Reporter: "octocat", Summary: canary})
	w.watcher.Poll(ctx)
	c := w.cases(t)[0]
	run := func(kind string, p outbox.AdvisoryEffect, attempts int) error {
		p.CaseID = c.ID.String()
		return runEffect(t, w.store, w.effects, kind, p, attempts)
	}
	if err := run(outbox.KindAdvisoryState, outbox.AdvisoryEffect{State: "draft"}, 1); err != nil {
		t.Fatal(err)
	}
	if a := w.srv.Advisories()[0]; a.State != "draft" {
		t.Errorf("the report is %s after claim, want draft (accepted)", a.State)
	}
	if err := w.client.AddCollaborator(ctx, report, "reporter1"); err != nil {
		t.Fatal(err)
	}
	move := outbox.AdvisoryEffect{Repository: "enarx/other", From: "enarx/enarx", FromGHSA: report}
	if err := run(outbox.KindAdvisoryMove, move, 1); err != nil {
		t.Fatal(err)
	}
	// Repeated (a crash before the outbox marked it done): nothing doubles.
	if err := run(outbox.KindAdvisoryMove, move, 2); err != nil {
		t.Fatal(err)
	}
	all := w.srv.Advisories()
	if len(all) != 2 || all[0].State != "closed" || all[1].Repository != "enarx/other" || all[1].State != "draft" {
		t.Fatalf("advisories after the move: %+v", all)
	}
	if got := all[1].CollaboratingUsers; len(got) != 2 || got[0] != "reporter1" || got[1] != "octocat" {
		t.Errorf("the new draft's collaborators are %v, want the old one's and the reporter", got)
	}
	if strings.Contains(all[1].Summary+all[1].Description, "CANARY") {
		t.Error("the reporter's words were carried into the new draft as public text")
	}
	moved, _ := w.store.Case(ctx, c.ID)
	if moved.GHSAID != all[1].GHSAID || moved.GHSARepo != "enarx/other" {
		t.Errorf("the case points to %s in %s", moved.GHSAID, moved.GHSARepo)
	}
	// The closed report of a moved case is not the case's any more.
	w.clock.Advance(2 * time.Minute)
	w.watcher.Poll(ctx)
	if again, _ := w.store.Case(ctx, c.ID); again.Stage.Finished() {
		t.Errorf("closing the old draft ended the moved case (%s)", again.Stage)
	}
}

func TestWatchingBacksOffOnARateLimitAndTellsTheTeamOnce(t *testing.T) {
	w := newWatchWorld(t, nil, nil)
	ctx := context.Background()
	w.srv.Inject(ghsatest.Fault{Status: 403, Headers: map[string]string{"Retry-After": "300"}, Body: `{"message":"You have exceeded a secondary rate limit"}`})
	w.watcher.Poll(ctx)
	asked := w.srv.Responses("", "", 0)
	w.clock.Advance(2 * time.Minute)
	w.watcher.Poll(ctx)
	if got := w.srv.Responses("", "", 0); got != asked {
		t.Errorf("%d requests during the secondary limit's Retry-After", got-asked)
	}
	if notes := w.teamSays(t); len(notes) != 1 {
		t.Errorf("while waiting out the limit the team was told %q, want only that watching fails", notes)
	}
	w.clock.Advance(4 * time.Minute)
	w.watcher.Poll(ctx)
	if got := w.srv.Responses("", "", 0); got != asked+1 {
		t.Errorf("after Retry-After the watcher made %d requests, want 1", got-asked)
	}
	notes := w.teamSays(t)
	if len(notes) != 2 || !strings.Contains(notes[0], "fails") || !strings.Contains(notes[1], "works again") {
		t.Errorf("the team was told %q, want once that watching fails and once that it works again", notes)
	}

	// A bad token: told once however many polls fail.
	for range 3 {
		w.srv.Inject(ghsatest.Fault{Status: 401, Body: `{"message":"Bad credentials"}`})
		w.clock.Advance(2 * time.Minute)
		w.watcher.Poll(ctx)
	}
	notes = w.teamSays(t)
	if len(notes) != 3 || !strings.Contains(notes[2], "token") {
		t.Errorf("the team was told %q, want one more notice naming the token", notes)
	}
}

// With a GitHub App, each organization is read with its own
// installation's token (which reaches only that organization).
func TestAnAppWatchesEachOrganizationWithItsOwnInstallation(t *testing.T) {
	clock := clockwork.NewFakeClockAt(reported)
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Repositories: []string{"profian/steward"}, Token: "unused", Now: clock.Now,
		Installations: map[string]int64{"enarx": 7, "profian": 8}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", AppID: 42, InstallationID: 7, PrivateKey: pemKey, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddReport(ghsatest.Report{Repository: "profian/steward", Reporter: "octocat"})
	srv.AddReport(ghsatest.Report{Repository: "enarx/enarx", Reporter: "octocat"})
	var seen []string
	var health error
	w := &Watcher{Client: c, Repositories: []string{"enarx/enarx"}, Organizations: []string{"enarx", "profian"}, Every: time.Minute, Clock: clock,
		In: advisoriesFunc(func(_ context.Context, s []chat.GitHubAdvisory) error {
			for _, a := range s {
				seen = append(seen, a.Repository)
			}
			return nil
		}),
		Health: func(_ context.Context, err error) { health = err }}
	w.Poll(context.Background())
	if health != nil || len(seen) != 2 {
		t.Fatalf("saw %v (%v), want both organizations' reports", seen, health)
	}
	tokens := map[string]string{}
	for _, r := range srv.Log() {
		if strings.HasPrefix(r.Path, "/orgs/") && strings.HasSuffix(r.Path, "/security-advisories") {
			tokens[strings.Split(r.Path, "/")[2]] = r.Token
		}
	}
	if tokens["enarx"] == "" || tokens["profian"] == "" || tokens["enarx"] == tokens["profian"] {
		t.Errorf("organizations read with tokens %v, want one installation token each", tokens)
	}
	if srv.Requests("GET", "/orgs/profian/installation") != 1 || srv.Requests("POST", "/app/installations/8/access_tokens") != 1 {
		t.Error("the second organization's installation was not looked up once")
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A crash after GitHub made the new draft but before secbot recorded it:
// the retry adopts that draft instead of making a second.
func TestAMoveRetriedAfterACrashAdoptsTheDraftItMade(t *testing.T) {
	w := newWatchWorld(t, []string{"enarx/other"}, nil)
	ctx := context.Background()
	report := w.srv.AddReport(ghsatest.Report{Reporter: "octocat"})
	w.watcher.Poll(ctx)
	c := w.cases(t)[0]
	other, err := w.client.In(ctx, "enarx/other")
	if err != nil {
		t.Fatal(err)
	}
	// What the first attempt made before the crash, with the effect's
	// secret; and a look-alike without it, which is never adopted.
	lookAlike, err := other.create(ctx, createRequest{Summary: SummaryFor(c.ID.String()), Description: DescriptionFor(c.ID.String(), c.CreatedAt),
		Vulnerabilities: []Vulnerability{{Package: Package{Ecosystem: "other", Name: "other"}}}})
	if err != nil {
		t.Fatal(err)
	}
	made, err := other.create(ctx, createRequest{Summary: SummaryFor(c.ID.String()), Description: DescriptionFor(c.ID.String(), c.CreatedAt) + Mark(nonce),
		Vulnerabilities: []Vulnerability{{Package: Package{Ecosystem: "other", Name: "other"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := outbox.AdvisoryEffect{CaseID: c.ID.String(), Repository: "enarx/other", From: "enarx/enarx", FromGHSA: report, Nonce: nonce}
	if err := runEffect(t, w.store, w.effects, outbox.KindAdvisoryMove, p, 2); err != nil {
		t.Fatal(err)
	}
	if all := w.srv.Advisories(); len(all) != 3 {
		t.Errorf("%d advisories after the retry, want the report, the look-alike and the one draft", len(all))
	}
	moved, _ := w.store.Case(ctx, c.ID)
	if moved.GHSAID != made.GHSAID || moved.GHSAID == lookAlike.GHSAID {
		t.Errorf("the case points to %s, want the adopted %s", moved.GHSAID, made.GHSAID)
	}
	for _, a := range w.srv.Advisories() {
		if a.GHSAID == made.GHSAID && (strings.Contains(a.Description, nonce) || !slices.Contains(a.CollaboratingUsers, "octocat")) {
			t.Errorf("the adopted draft after the move: %+v, want the reporter in and the secret out", a)
		}
	}
	if !audited(t, w.store, c.ID.String(), "advisory.adopted") {
		t.Error("the adoption is not audited")
	}
}

// A standby retries a move while GitHub still makes the dead instance's
// new draft: the retry waits for it and adopts it, no second draft.
func TestARetriedMoveWaitsForTheDraftStillInTheMaking(t *testing.T) {
	w := newWatchWorld(t, []string{"enarx/other"}, nil)
	retrySettle = 2 * time.Second
	ctx := context.Background()
	report := w.srv.AddReport(ghsatest.Report{Reporter: "octocat"})
	w.watcher.Poll(ctx)
	c := w.cases(t)[0]
	p := outbox.AdvisoryEffect{CaseID: c.ID.String(), Repository: "enarx/other", From: "enarx/enarx", FromGHSA: report, Nonce: outbox.NewNonce()}
	if err := w.store.Tx(ctx, func(ctx context.Context) error {
		_, err := outbox.Enqueue(ctx, w.store, store.GitHubLane(c.ID), outbox.KindAdvisoryMove, p, reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	made := dyingAttempt(t, w.srv, w.store, w.effects, outbox.KindAdvisoryMove, "POST /repos/enarx/other/security-advisories")
	if err := runEffect(t, w.store, w.effects, outbox.KindAdvisoryMove, p, 2); err != nil {
		t.Fatal(err)
	}
	<-made
	var drafts []string
	for _, a := range w.srv.Advisories() {
		if a.Repository == "enarx/other" {
			drafts = append(drafts, a.GHSAID)
		}
	}
	moved, _ := w.store.Case(ctx, c.ID)
	if len(drafts) != 1 || moved.GHSAID != drafts[0] || !audited(t, w.store, c.ID.String(), "advisory.adopted") {
		t.Errorf("drafts in enarx/other %v (the case has %s): the retry did not wait for the draft still in the making", drafts, moved.GHSAID)
	}
}

// audited reports whether the case's audit log has an entry of action.
func audited(t *testing.T, st *store.Store, caseID, action string) bool {
	t.Helper()
	entries, err := st.AuditOf(context.Background(), caseID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(entries, func(e store.AuditEntry) bool { return e.Action == action })
}

// The reporter of a private report is the user GitHub authenticated as
// its author, not whoever its submitter named first in the credits (the
// submitter writes those): the credits reach the team as credits.
func TestAReportsReporterIsItsAuthorAndCreditsAreShownAsCredits(t *testing.T) {
	w := newWatchWorld(t, nil, nil)
	ctx := context.Background()
	w.srv.AddReport(ghsatest.Report{Reporter: "reporter1", Credits: []ghsatest.Credit{
		{Login: "octocat", Type: "reporter", State: "pending"}, {Login: "reporter1", Type: "finder", State: "accepted"},
	}})
	w.watcher.Poll(ctx)
	cs := w.cases(t)
	if len(cs) != 1 {
		t.Fatalf("%d cases, want 1", len(cs))
	}
	if c := cs[0]; c.Reporter != disclosure.GitHubPerson("reporter1") || c.ReporterGitHub != "reporter1" {
		t.Errorf("the case's reporter is %s (GitHub %s), want the report's author reporter1", c.Reporter, c.ReporterGitHub)
	}
	notes := w.teamSays(t)
	if len(notes) != 1 || !strings.Contains(notes[0], "user **reporter1**") || !strings.Contains(notes[0], `octocat \(reporter, pending\)`) ||
		!strings.Contains(notes[0], `reporter1 \(finder, accepted\)`) {
		t.Errorf("the team room is told %q, want the author as reporter and the credits as credits", notes)
	}
}

// A next page on another host is never asked for (the token would go
// with it); the team hears that watching is in trouble.
func TestALinkToAnotherHostIsNotFollowed(t *testing.T) {
	var elsewhere []string
	evil := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		elsewhere = append(elsewhere, r.Header.Get("Authorization"))
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte("[]"))
	}))
	defer evil.Close()
	w := newWatchWorld(t, nil, nil)
	var health error
	for _, link := range []string{evil.URL + "/repos/enarx/enarx/security-advisories?after=x", "//" + strings.TrimPrefix(evil.URL, "http://") + "/x",
		w.srv.URL() + "../../x", strings.Replace(w.srv.URL(), "http://", "https://", 1) + "repos/enarx/enarx/security-advisories?after=y"} {
		w.srv.Inject(ghsatest.Fault{Status: 200, Headers: map[string]string{"Content-Type": "application/json", "Link": "<" + link + `>; rel="next"`}, Body: "[]"})
		fresh := w.newWatcher(nil, nil)
		fresh.Health = func(_ context.Context, err error) { health = err }
		fresh.Poll(context.Background())
		if health == nil || !strings.Contains(health.Error(), "not followed") {
			t.Errorf("link %s: health %v, want told the page was not followed", link, health)
		}
	}
	if len(elsewhere) > 0 {
		t.Errorf("the watcher asked another host %d times (credentials %q)", len(elsewhere), elsewhere)
	}
}

// Pages that never end cost a bounded number of requests per poll.
func TestPagingIsBoundedPerPoll(t *testing.T) {
	w := newWatchWorld(t, nil, nil)
	var health error
	w.watcher.Health = func(_ context.Context, err error) { health = err }
	next := w.srv.URL() + "repos/enarx/enarx/security-advisories?per_page=100&after=again"
	for range 3 * maxPages {
		w.srv.Inject(ghsatest.Fault{Status: 200, Headers: map[string]string{"Content-Type": "application/json", "Link": "<" + next + `>; rel="next"`}, Body: "[]"})
	}
	w.watcher.Poll(context.Background())
	if n := w.srv.Responses("GET", "/repos/enarx/enarx/security-advisories", 0); n > maxPages {
		t.Errorf("one poll asked for %d pages, want at most %d", n, maxPages)
	}
	if health == nil || !strings.Contains(health.Error(), "pages") {
		t.Errorf("health %v, want the operator told the listing was cut", health)
	}
	w.srv.TakeViolations() // the endless pages are not GitHub's
}

// `repo` drafts only into a repository that exists as named and is no
// fork: a name under a watched organization that GitHub does not know is
// answered, not retried for hours, and nothing is drafted.
func TestRepoChecksTheRepositoryFirst(t *testing.T) {
	w := newWatchWorld(t, nil, []string{"enarx"})
	ctx := context.Background()
	report := w.srv.AddReport(ghsatest.Report{Reporter: "octocat"})
	w.watcher.Poll(ctx)
	c := w.cases(t)[0]
	fork, _, err := w.client.CreateFork(ctx, report)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"enarx/ghost", fork} {
		move := outbox.AdvisoryEffect{CaseID: c.ID.String(), Repository: target, From: "enarx/enarx", FromGHSA: report, ReplyIn: "matrix:!case:x"}
		if err := runEffect(t, w.store, w.effects, outbox.KindAdvisoryMove, move, 1); err != nil {
			t.Fatalf("move to %s: %v, want it answered and ended", target, err)
		}
		if n := w.srv.Requests("POST", "/repos/"+target+"/security-advisories"); n != 0 {
			t.Errorf("%d drafts asked for in %s", n, target)
		}
		if got, _ := w.store.Case(ctx, c.ID); got.GHSAID != report {
			t.Errorf("after a move to %s the case points to %s", target, got.GHSAID)
		}
		// The effect ended: mark it so, as the outbox would.
		if err := w.store.CompleteEffect(ctx, pending(t, w.store, outbox.KindAdvisoryMove).ID, nil, reported); err != nil {
			t.Fatal(err)
		}
	}
	if all := w.srv.Advisories(); len(all) != 1 || all[0].State == "closed" {
		t.Errorf("advisories %+v, want the report alone and open", all)
	}
	effects, _, _ := w.store.EffectsOfKind(ctx, outbox.KindSend)
	refused := 0
	for _, e := range effects {
		var s outbox.SendEffect
		_ = e.Decode(&s)
		if s.To.Room == "matrix:!case:x" && (strings.Contains(s.Markdown, "no repository enarx/ghost") || strings.Contains(s.Markdown, "is a fork")) {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d answers naming why, want 2", refused)
	}
}

// Each App installation has its own rate limit: one used up holds back
// its own organization's feed only.
func TestEachInstallationHasItsOwnRateLimit(t *testing.T) {
	clock := clockwork.NewFakeClockAt(reported)
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Repositories: []string{"profian/steward"}, Token: "unused", Now: clock.Now,
		Installations: map[string]int64{"enarx": 7, "profian": 8}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", AppID: 42, InstallationID: 7, PrivateKey: testKey(t), Clock: clock,
		Organizations: []string{"enarx", "profian"}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	w := &Watcher{Client: c, Organizations: []string{"enarx", "profian"}, Every: time.Minute, Clock: clock,
		In: advisoriesFunc(func(_ context.Context, s []chat.GitHubAdvisory) error {
			for _, a := range s {
				seen = append(seen, a.Repository)
			}
			return nil
		})}
	w.Poll(context.Background()) // both installations' tokens made
	reset := fmt.Sprint(clock.Now().Add(time.Hour).Unix())
	srv.Inject(ghsatest.Fault{Status: 403, Headers: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
		Body: `{"message":"API rate limit exceeded for installation ID 7."}`})
	clock.Advance(time.Minute)
	w.Poll(context.Background()) // enarx's answer: used up
	srv.AddReport(ghsatest.Report{Repository: "profian/steward", Reporter: "octocat"})
	enarx := srv.Requests("GET", "/orgs/enarx/security-advisories")
	clock.Advance(time.Minute)
	w.Poll(context.Background())
	if !slices.Contains(seen, "profian/steward") {
		t.Error("profian's report was not seen while only enarx's installation was used up")
	}
	if n := srv.Requests("GET", "/orgs/enarx/security-advisories") - enarx; n != 0 {
		t.Errorf("%d requests with enarx's used-up installation", n)
	}
	if _, _, _, known := c.Rate().Remaining(); !known || c.Rate().RequestsLastHour() == 0 {
		t.Error("the rates /metrics shows are empty")
	}
}

func testKey(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// advisoriesFunc is a function as the watcher's inbound side.
type advisoriesFunc func(ctx context.Context, seen []chat.GitHubAdvisory) error

func (f advisoriesFunc) GitHubAdvisories(ctx context.Context, seen []chat.GitHubAdvisory) error {
	return f(ctx, seen)
}
