package handlers_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/ghsa"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// The whole way of queued work: the handlers decide it, the outbox makes
// it later with GitHub's stand-in, and what happened meanwhile counts.

const ghToken = "ghp_redecide_token"

var sr1 = disclosure.CaseID{Year: 2026, Seq: 1}

type rig struct {
	t      *testing.T
	w      *handlers.World
	srv    *ghsatest.Server
	outbox *outbox.Outbox

	mu      sync.Mutex
	sent    []outbox.SendEffect
	invited []disclosure.Person
}

// newRig is the handlers' world with GitHub on (the stand-in, a public
// repository so CVEs can be asked for), an announcement room, and case
// SR-2026-0001 at audit done with its public text on its advisory.
func newRig(t *testing.T) *rig {
	t.Helper()
	w := handlers.NewWorld(t, handlers.Monday)
	p := *w.InForce().Get()
	p.GitHub, p.Repository, p.Repositories, p.AnnounceRooms = true, "enarx/enarx", []string{"enarx/enarx"}, []string{"matrix:!announce:x"}
	w.InForce().Set(p)
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Public: true, Users: []string{"octocat", "dan-gh"}, Token: ghToken, Now: w.Clock().Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("requests GitHub's description rejects:\n%s", strings.Join(v, "\n"))
		}
		srv.Close()
	})
	client, err := ghsa.New(ghsa.Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", Token: ghToken, Clock: w.Clock()})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, w: w, srv: srv, outbox: outbox.New(w.Store(), w.Clock(), zerolog.Nop(), nil, nil)}
	effects := &ghsa.Effects{Client: client, Store: w.Store(), Templates: w.Templates(), Clock: w.Clock(), Policy: w.InForce(), Product: "enarx"}
	for kind, ex := range effects.Executors() {
		r.outbox.Register(kind, ex)
	}
	h := w.Handlers()
	r.outbox.Register(outbox.KindAnnounce, h.Announce)
	r.outbox.Register(outbox.KindPublished, h.Published)
	r.outbox.Register(outbox.KindInvite, h.GateInvite(func(_ context.Context, e store.Effect) (any, error) {
		var p outbox.InviteEffect
		if err := e.Decode(&p); err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.invited = append(r.invited, p.User)
		r.mu.Unlock()
		return nil, nil
	}))
	r.outbox.Register(outbox.KindSend, func(_ context.Context, e store.Effect) (any, error) {
		var p outbox.SendEffect
		if err := e.Decode(&p); err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.sent = append(r.sent, p)
		r.mu.Unlock()
		return nil, nil
	})
	for _, kind := range []string{outbox.KindReact, outbox.KindOpenDM, outbox.KindKick, outbox.KindCreateCaseRoom} {
		r.outbox.Register(kind, func(context.Context, store.Effect) (any, error) { return nil, nil })
	}
	w.OpenCase()
	r.later(time.Minute) // the advisory is drafted
	for _, cmd := range []string{"!sec claim", "!sec confirm < 1.1; 1.1", "!sec audit start", "!sec audit done",
		"!sec summary Out-of-bounds write in the loader", "!sec description A crafted image overflows a buffer in the loader."} {
		w.Say(handlers.CaseRoom, handlers.Bob, cmd)
	}
	r.run()
	if advs := srv.Advisories(); len(advs) != 1 || advs[0].State != "draft" || advs[0].Summary != "Out-of-bounds write in the loader" {
		t.Fatalf("the case's advisory: %+v", advs)
	}
	return r
}

// run makes every effect that is due, until none is.
func (r *rig) run() {
	r.t.Helper()
	for range 50 {
		n, err := r.outbox.RunDue(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	r.t.Fatal("the outbox does not settle")
}

// later lets d pass (retries fall due), then runs the outbox.
func (r *rig) later(d time.Duration) {
	r.t.Helper()
	r.w.Clock().Advance(d)
	r.run()
}

// fail makes GitHub answer the next request with a 502.
func (r *rig) fail() { r.srv.Inject(ghsatest.Fault{Status: 502, Body: "bad gateway"}) }

// teamRoomSaid reports whether a notice in the team room says all of parts.
func (r *rig) teamRoomSaid(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.sent, func(s outbox.SendEffect) bool {
		if s.To.Room != handlers.TeamRoom {
			return false
		}
		text := strings.ReplaceAll(s.Markdown, `\`, "") // Markdown's escapes
		for _, p := range parts {
			if !strings.Contains(text, p) {
				return false
			}
		}
		return true
	})
}

func (r *rig) announced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.sent, func(s outbox.SendEffect) bool { return s.To.Room == "matrix:!announce:x" })
}

func (r *rig) state() string { return r.srv.Advisories()[0].State }

func (r *rig) embargo() disclosure.EmbargoState {
	e, err := r.w.Store().Embargo(context.Background(), sr1)
	if err != nil {
		r.t.Fatal(err)
	}
	return e.State
}

func (r *rig) stage() disclosure.Stage {
	c, err := r.w.Store().Case(context.Background(), sr1)
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Stage
}

func (r *rig) states(kind string) []string {
	_, states, err := r.w.Store().EffectsOfKind(context.Background(), kind)
	if err != nil {
		r.t.Fatal(err)
	}
	return states
}

// agreeEmbargo has the team propose an embargo and the reporter agree.
func (r *rig) agreeEmbargo() {
	r.t.Helper()
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec embargo propose 2026-12-15")
	r.w.Say(handlers.CaseRoom, handlers.Reporter, "!agree")
	if r.embargo() != disclosure.EmbargoActive {
		r.t.Fatalf("the embargo is %s after the reporter agreed", r.embargo())
	}
}

// The case: a member publishes, GitHub fails for a while, the team
// and the reporter agree an embargo meanwhile. When GitHub answers again,
// nothing goes public: the publish was cancelled by the proposal, and the
// team room was told.
func TestAQueuedPublishDoesNotOutrunAnAgreedEmbargo(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec publish")
	r.fail()
	r.run()
	if r.srv.Responses("PATCH", "", 502) != 1 {
		t.Fatal("the publish did not meet GitHub's failure")
	}
	patches := r.srv.Requests("PATCH", "")
	r.agreeEmbargo()
	for range 3 {
		r.later(time.Hour)
	}
	if n := r.srv.Requests("PATCH", "") - patches; n != 0 || r.state() != "draft" {
		t.Errorf("GitHub got %d more PATCH requests; the advisory is %s", n, r.state())
	}
	if r.embargo() != disclosure.EmbargoActive || r.stage() != disclosure.StageAuditDone {
		t.Errorf("embargo %s, stage %s", r.embargo(), r.stage())
	}
	if r.announced() || len(r.states(outbox.KindAnnounce)) != 0 || len(r.states(outbox.KindPublished)) != 0 {
		t.Error("announced under the embargo")
	}
	if got := r.states(outbox.KindAdvisoryPublish); !slices.Equal(got, []string{"cancelled"}) {
		t.Errorf("the publish is %v", got)
	}
	if !r.teamRoomSaid("SR-2026-0001", "an embargo was proposed", "publish the advisory") {
		t.Errorf("the team room is not told what was cancelled: %+v", r.sent)
	}
}

// The same after a rejection: the publish waiting on GitHub is cancelled
// (a chat case's advisory stays a draft, for the team to close on GitHub).
func TestAQueuedPublishDoesNotOutrunARejection(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec publish")
	r.fail()
	r.run()
	patches := r.srv.Requests("PATCH", "")
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec reject Not a vulnerability after all.")
	for range 3 {
		r.later(time.Hour)
	}
	if n := r.srv.Requests("PATCH", "") - patches; n != 0 || r.state() != "draft" {
		t.Errorf("GitHub got %d more PATCH requests; the advisory is %s", n, r.state())
	}
	if len(r.states(outbox.KindPublished)) != 0 || r.announced() || r.stage() != disclosure.StageRejected {
		t.Errorf("published after the rejection: stage %s", r.stage())
	}
	if !r.teamRoomSaid("SR-2026-0001", "the case was rejected", "publish the advisory") {
		t.Errorf("the team room is not told what was cancelled: %+v", r.sent)
	}
}

// The coordinator's --force under the embargo that stands is theirs to
// give: it goes through, lifts the embargo and is announced.
func TestAForcedPublishUnderTheSameEmbargoRuns(t *testing.T) {
	r := newRig(t)
	r.agreeEmbargo()
	r.w.Say(handlers.CaseRoom, handlers.Alice, "!sec publish --force")
	r.fail()
	r.run()
	r.later(time.Hour) // GitHub answers again
	if r.state() != "published" || r.stage() != disclosure.StagePublished || r.embargo() != disclosure.EmbargoExited {
		t.Errorf("advisory %s, stage %s, embargo %s", r.state(), r.stage(), r.embargo())
	}
	if !r.announced() {
		t.Error("the forced publish is not announced")
	}
}

// A force does not outlive who gave it: once the coordinator is someone
// else, the queued publish is refused when it is due, and nothing goes out.
// No command cancelled it: the executor's own decision stops it.
func TestAForcedPublishIsRefusedWhenItsForcerIsNoLongerCoordinator(t *testing.T) {
	r := newRig(t)
	r.agreeEmbargo()
	r.w.Say(handlers.CaseRoom, handlers.Alice, "!sec publish --force")
	r.fail()
	r.run()
	patches := r.srv.Requests("PATCH", "")
	p := *r.w.InForce().Get()
	p.Coordinator = handlers.Bob
	r.w.InForce().Set(p)
	for range 3 {
		r.later(time.Hour)
	}
	if n := r.srv.Requests("PATCH", "") - patches; n != 0 || r.state() != "draft" {
		t.Errorf("GitHub got %d more PATCH requests; the advisory is %s", n, r.state())
	}
	if got := r.states(outbox.KindAdvisoryPublish); !slices.Equal(got, []string{"refused"}) {
		t.Errorf("the publish is %v", got)
	}
	if r.embargo() != disclosure.EmbargoActive || r.announced() {
		t.Errorf("embargo %s, announced %v", r.embargo(), r.announced())
	}
	if !r.teamRoomSaid("SR-2026-0001", "did not publish the advisory", "no longer the coordinator") {
		t.Errorf("the team room is not told why: %+v", r.sent)
	}
	entries, _ := r.w.Store().AuditOf(context.Background(), sr1.String())
	if !slices.ContainsFunc(entries, func(e store.AuditEntry) bool { return e.Action == "publish.queued" && !e.Allowed }) {
		t.Error("the refusal is not audited")
	}
}

// GitHub published, and before its confirmation was handled an embargo
// was agreed: the confirmation does not lift that embargo, announces
// nothing, and tells the team.
func TestGitHubsConfirmationDoesNotLiftAnEmbargoAgreedAfterThePublish(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec publish")
	if _, err := r.outbox.RunDue(context.Background()); err != nil { // the publish only
		t.Fatal(err)
	}
	if r.state() != "published" {
		t.Fatalf("the advisory is %s", r.state())
	}
	r.agreeEmbargo()
	r.run()
	if r.stage() != disclosure.StagePublished || r.embargo() != disclosure.EmbargoActive {
		t.Errorf("stage %s, embargo %s", r.stage(), r.embargo())
	}
	if r.announced() || len(r.states(outbox.KindAnnounce)) != 0 {
		t.Error("announced under the embargo agreed after the publish")
	}
	if !r.teamRoomSaid("SR-2026-0001", "while an embargo agreed after the publish was requested stands") {
		t.Errorf("the team room is not told: %+v", r.sent)
	}
	// The announcement is the coordinator's to force, and their force does
	// not outlive their role: queued, then decided again when it runs.
	r.w.Say(handlers.CaseRoom, handlers.Alice, "!sec announce --force")
	p := *r.w.InForce().Get()
	p.Coordinator = handlers.Bob
	r.w.InForce().Set(p)
	r.run()
	if r.announced() || !slices.Equal(r.states(outbox.KindAnnounce), []string{"refused"}) {
		t.Errorf("announced by a force whose coordinator left: %v", r.states(outbox.KindAnnounce))
	}
	if !r.teamRoomSaid("did not post the announcement", "no longer the coordinator") {
		t.Errorf("the team room is not told: %+v", r.sent)
	}
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec announce --force")
	r.run()
	if !r.announced() || r.embargo() != disclosure.EmbargoActive {
		t.Errorf("the coordinator's forced announcement: announced %v, embargo %s", r.announced(), r.embargo())
	}
}

// A CVE request waiting on GitHub is not made for a case rejected
// meanwhile.
func TestAQueuedCVERequestIsRefusedAfterARejection(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec cve")
	r.fail()
	r.run()
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec reject Not a vulnerability after all.")
	for range 3 {
		r.later(time.Hour)
	}
	for _, req := range r.srv.Log() {
		if strings.HasSuffix(req.Path, "/cve") {
			t.Errorf("GitHub was asked for a CVE: %+v", req)
		}
	}
	if got := r.states(outbox.KindAdvisoryCVE); !slices.Equal(got, []string{"refused"}) {
		t.Errorf("the CVE request is %v", got)
	}
	if !r.teamRoomSaid("did not request a CVE", "rejected") {
		t.Errorf("the team room is not told: %+v", r.sent)
	}
}

// Someone taken off the need-to-know list before their invitations went
// out gets neither the case room nor the advisory.
func TestSomeoneTakenOffTheListBeforeTheirInvitationsIsInvitedNowhere(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec embargo add @dan:x dan-gh")
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec embargo remove @dan:x")
	r.later(time.Hour)
	if slices.Contains(r.invited, "matrix:@dan:x") {
		t.Error("invited to the case room after leaving the list")
	}
	if n := r.srv.Requests("GET", "/users/dan-gh"); n != 0 {
		t.Errorf("the advisory collaborator was still added (%d look-ups of the user)", n)
	}
	if slices.Contains(r.srv.Advisories()[0].CollaboratingUsers, "dan-gh") {
		t.Error("dan-gh reads the advisory")
	}
	if !r.teamRoomSaid("did not invite @dan:x to the case room") || !r.teamRoomSaid("did not add dan-gh to the private advisory") {
		t.Errorf("the team room is not told: %+v", r.sent)
	}
}

// A member who left the team before their invitation went out is not
// invited.
func TestAMemberWhoLeftTheTeamIsNotInvited(t *testing.T) {
	r := newRig(t)
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec invite @carol:x")
	p := *r.w.InForce().Get()
	p.Team = []disclosure.Person{handlers.Alice, handlers.Bob}
	r.w.InForce().Set(p)
	r.later(time.Hour)
	if slices.Contains(r.invited, handlers.Carol) {
		t.Error("invited to the case room after leaving the team")
	}
	if !r.teamRoomSaid("did not invite @carol:x to the case room", "no longer") {
		t.Errorf("the team room is not told: %+v", r.sent)
	}
	// Who is still on the team is invited as before.
	r.w.Say(handlers.CaseRoom, handlers.Bob, "!sec invite @alice:x")
	r.run()
	if !slices.Contains(r.invited, handlers.Alice) {
		t.Error("a team member is not invited")
	}
}
