package ghsa

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// effectsWorld is the GitHub effects on the stand-in, a store with one
// case, and the policy in force (team room !team:x).
type effectsWorld struct {
	srv     *ghsatest.Server
	store   *store.Store
	policy  *disclosure.InForce
	effects *Effects
	c       *store.Case
}

func newEffectsWorld(t *testing.T) *effectsWorld {
	t.Helper()
	ctx := context.Background()
	srv, client := standIn(t, false)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	w := &effectsWorld{srv: srv, store: st, policy: disclosure.NewInForce(disclosure.Policy{TeamRoom: "matrix:!team:x"})}
	if err := st.Tx(ctx, func(ctx context.Context) error {
		w.c, err = st.CreateCase(ctx, "matrix:@reporter:x", "matrix:!dm:x", "matrix:!dm:x", reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.effects = &Effects{Client: client, Store: st, Templates: tmpl, Clock: clockwork.NewFakeClockAt(reported), Policy: w.policy, Product: "enarx"}
	return w
}

// run makes one effect of kind for the case: the pending one of that
// kind, else a new one recorded as a command records it (no secret yet).
func (w *effectsWorld) run(t *testing.T, kind string, attempts int) error {
	t.Helper()
	return runEffect(t, w.store, w.effects, kind, outbox.AdvisoryEffect{CaseID: w.c.ID.String()}, attempts)
}

// runEffect makes the pending effect of kind in st (recording p first if
// there is none), as its attempt number attempts.
func runEffect(t *testing.T, st *store.Store, effects *Effects, kind string, p outbox.AdvisoryEffect, attempts int) error {
	t.Helper()
	ctx := context.Background()
	eff := pending(t, st, kind)
	if eff == nil {
		if err := st.Tx(ctx, func(ctx context.Context) error {
			_, err := outbox.Enqueue(ctx, st, "github:"+p.CaseID, kind, p, reported)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		eff = pending(t, st, kind)
	}
	eff.Attempts = attempts
	_, err := effects.Executors()[kind](ctx, *eff)
	return err
}

// pending is the pending effect of kind, or nil.
func pending(t *testing.T, st *store.Store, kind string) *store.Effect {
	t.Helper()
	effects, states, err := st.EffectsOfKind(context.Background(), kind)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range effects {
		if states[i] == "pending" {
			return &e
		}
	}
	return nil
}

// sends are the messages recorded so far.
func (w *effectsWorld) sends(t *testing.T) []outbox.SendEffect {
	t.Helper()
	effects, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]outbox.SendEffect, len(effects))
	for i, e := range effects {
		if err := e.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A SIGHUP that moves the team room moves GitHub's outage notices with it:
// the effects read the one policy in force, not a copy made at start.
func TestAReloadMovesTheOutageNoticeToTheNewTeamRoom(t *testing.T) {
	w := newEffectsWorld(t)
	p := *w.policy.Get()
	p.TeamRoom = "matrix:!new-team:x"
	w.policy.Set(p) // what SIGHUP does
	w.srv.Inject(ghsatest.Fault{Status: 502})
	if err := w.run(t, outbox.KindAdvisoryCreate, 1); err == nil {
		t.Fatal("a 502 did not fail the effect")
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "matrix:!new-team:x" {
		t.Errorf("the outage notice went to %+v, want the reloaded team room", sends)
	}
}

// An expired token is the operator's to fix: the team room hears what to
// fix, once; the case room (where the reporter reads) hears nothing; and
// the advisory is retried, not marked done.
func TestARefusedTokenTellsTheTeamAndMarksNothingDone(t *testing.T) {
	w := newEffectsWorld(t)
	for range 2 {
		w.srv.Inject(ghsatest.Fault{Status: 401, Body: `{"message":"Bad credentials"}`})
		err := w.run(t, outbox.KindAdvisoryCreate, 1)
		if retry, _ := IsRetryable(err); err == nil || !retry {
			t.Fatalf("a 401 is not retried: %v", err)
		}
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "matrix:!team:x" || !strings.Contains(sends[0].Markdown, "refused the token") {
		t.Fatalf("after two refusals: %+v, want the team told once what to fix", sends)
	}
	if err := w.run(t, outbox.KindAdvisoryCreate, 3); err != nil {
		t.Fatalf("once the token works: %v", err)
	}
	if got, _ := w.store.Case(context.Background(), w.c.ID); got.GHSAID == "" {
		t.Error("no advisory once the token works")
	}
}

// The poll for the private fork runs in a lane of its own, so publishing
// (in the case's GitHub lane) never waits minutes behind it.
func TestTheForkPollBlocksNothing(t *testing.T) {
	w := newEffectsWorld(t)
	if err := w.run(t, outbox.KindAdvisoryCreate, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.run(t, outbox.KindAdvisoryFork, 1); err != nil {
		t.Fatal(err)
	}
	polls, _, err := w.store.EffectsOfKind(context.Background(), outbox.KindAdvisoryForkReady)
	if err != nil || len(polls) != 1 {
		t.Fatalf("polls %d, %v", len(polls), err)
	}
	if polls[0].Lane == store.GitHubLane(w.c.ID) {
		t.Errorf("the fork poll is in the case's GitHub lane %q: publishing would wait behind it", polls[0].Lane)
	}
}

func TestParkedGitHubWorkIsToldToTheTeam(t *testing.T) {
	w := newEffectsWorld(t)
	payload, _ := json.Marshal(outbox.AdvisoryEffect{CaseID: w.c.ID.String()})
	eff := store.Effect{Kind: outbox.KindAdvisoryCreate, Attempts: LastAttempt, Payload: payload}
	if err := w.effects.Parked(context.Background(), eff, &Error{Kind: Operator, Message: "GitHub refused the token"}); err != nil {
		t.Fatal(err)
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "matrix:!team:x" || !strings.Contains(sends[0].Markdown, "given up after 100 attempts") ||
		!strings.Contains(sends[0].Markdown, "!sec advisory "+w.c.ID.String()) {
		t.Errorf("told %+v", sends)
	}
}

// The attack of a guessable case ID: a GitHub user files a private report
// titled like the next case's placeholder, the team claims it (a draft its
// author collaborates on), and the next case's first create fails. The
// retry drafts the case's own advisory and never adopts theirs.
func TestARetriedCreateNeverAdoptsADraftThatMerelyNamesTheCase(t *testing.T) {
	w := newEffectsWorld(t)
	ctx := context.Background()
	caseID := w.c.ID.String()
	bait := w.srv.AddReport(ghsatest.Report{Reporter: "octocat", Summary: SummaryFor(caseID), Description: DescriptionFor(caseID, reported)})
	w.srv.SetState(bait, "draft") // claimed: accepted as a draft
	if err := w.store.Tx(ctx, func(ctx context.Context) error {
		_, err := outbox.Enqueue(ctx, w.store, store.GitHubLane(w.c.ID), outbox.KindAdvisoryCreate, outbox.AdvisoryEffect{CaseID: caseID, Nonce: outbox.NewNonce()}, reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.srv.Inject(ghsatest.Fault{Status: 502})
	if err := w.run(t, outbox.KindAdvisoryCreate, 1); err == nil {
		t.Fatal("a 502 did not fail the first attempt")
	}
	if err := w.run(t, outbox.KindAdvisoryCreate, 2); err != nil {
		t.Fatal(err)
	}
	got, _ := w.store.Case(ctx, w.c.ID)
	if got.GHSAID == "" || got.GHSAID == bait {
		t.Fatalf("the case's advisory is %q, the stranger's report is %s", got.GHSAID, bait)
	}
	if all := w.srv.Advisories(); len(all) != 2 {
		t.Errorf("%d advisories, want the stranger's and the case's own", len(all))
	}
	if audited(t, w.store, caseID, "advisory.adopted") {
		t.Error("a fresh draft is audited as adopted")
	}
}

// A create that got through before a crash is adopted by its retry (its
// secret is in the draft), audited, and named in the team room; one with
// the secret that someone else joined is not.
func TestARetriedCreateAdoptsOnlyItsOwnDraft(t *testing.T) {
	for _, joined := range []bool{false, true} {
		w := newEffectsWorld(t)
		ctx := context.Background()
		caseID := w.c.ID.String()
		p := outbox.AdvisoryEffect{CaseID: caseID, Nonce: outbox.NewNonce()}
		if err := w.store.Tx(ctx, func(ctx context.Context) error {
			_, err := outbox.Enqueue(ctx, w.store, store.GitHubLane(w.c.ID), outbox.KindAdvisoryCreate, p, reported)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// The first attempt: GitHub made the draft, secbot crashed.
		made, err := w.effects.Client.CreateDraft(ctx, caseID, reported, "enarx", p.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		if joined {
			if err := w.effects.Client.AddCollaborator(ctx, made.GHSAID, "octocat"); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.run(t, outbox.KindAdvisoryCreate, 2); err != nil {
			t.Fatal(err)
		}
		got, _ := w.store.Case(ctx, w.c.ID)
		told := slices.ContainsFunc(w.sends(t), func(s outbox.SendEffect) bool {
			return s.To.Room == "matrix:!team:x" && strings.Contains(s.Markdown, made.GHSAID) && strings.Contains(s.Markdown, "earlier attempt")
		})
		if !joined && (got.GHSAID != made.GHSAID || len(w.srv.Advisories()) != 1 || !audited(t, w.store, caseID, "advisory.adopted") || !told) {
			t.Errorf("own draft: the case has %s (made %s), %d advisories, audited %v, team told %v", got.GHSAID, made.GHSAID, len(w.srv.Advisories()), audited(t, w.store, caseID, "advisory.adopted"), told)
		}
		if joined && (got.GHSAID == made.GHSAID || got.GHSAID == "") {
			t.Errorf("a draft someone else joined was adopted (%s)", got.GHSAID)
		}
	}
}

// A standby retries a create within a second of the active instance's
// death, while GitHub may still be carrying out the dead one's POST (it
// goes on with a request whose client is gone). The retry waits for it,
// then adopts that draft: the case gets one advisory, not two.
func TestARetriedCreateWaitsForTheDraftStillInTheMaking(t *testing.T) {
	w := newEffectsWorld(t)
	retrySettle = 2 * time.Second
	ctx := context.Background()
	p := outbox.AdvisoryEffect{CaseID: w.c.ID.String(), Nonce: outbox.NewNonce()}
	if err := w.store.Tx(ctx, func(ctx context.Context) error {
		_, err := outbox.Enqueue(ctx, w.store, store.GitHubLane(w.c.ID), outbox.KindAdvisoryCreate, p, reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	made := dyingAttempt(t, w.srv, w.store, w.effects, outbox.KindAdvisoryCreate, "POST /repos/enarx/enarx/security-advisories")
	if err := w.run(t, outbox.KindAdvisoryCreate, 2); err != nil {
		t.Fatal(err)
	}
	<-made // the first attempt's draft exists (if it did not already)
	all := w.srv.Advisories()
	got, _ := w.store.Case(ctx, w.c.ID)
	if len(all) != 1 || got.GHSAID != all[0].GHSAID || !audited(t, w.store, p.CaseID, "advisory.adopted") {
		t.Fatalf("%d advisories (the case has %q): the retry did not wait for the draft still in the making", len(all), got.GHSAID)
	}
}

// dyingAttempt makes the pending effect of kind as its first attempt,
// which dies (its context cancelled) once its request for GitHub's
// request (method and path) arrived; GitHub takes half a second over that
// request and carries it out all the same. The channel returned is closed
// once it did.
func dyingAttempt(t *testing.T, srv *ghsatest.Server, st *store.Store, effects *Effects, kind, request string) <-chan struct{} {
	t.Helper()
	started, made := make(chan struct{}), make(chan struct{})
	srv.Inject(ghsatest.Fault{For: request, Delay: 500 * time.Millisecond, Completes: true, Started: started, Done: made})
	dying, die := context.WithCancel(context.Background())
	eff := pending(t, st, kind)
	eff.Attempts = 1
	failed := make(chan error, 1)
	go func() {
		_, err := effects.Executors()[kind](dying, *eff)
		failed <- err
	}()
	select {
	case <-started:
	case err := <-failed:
		t.Fatalf("the first attempt ended before its request reached GitHub: %v", err)
	}
	die()
	if err := <-failed; err == nil {
		t.Fatal("the first attempt did not fail when it died")
	}
	return made
}

// A create recorded without a secret (by an older version, or a command)
// gets one in its outbox row before it sends anything, so its retry can
// recognise what it made.
func TestACreateRecordsItsSecretBeforeItSends(t *testing.T) {
	w := newEffectsWorld(t)
	w.srv.Inject(ghsatest.Fault{Status: 502})
	if err := w.run(t, outbox.KindAdvisoryCreate, 1); err == nil {
		t.Fatal("a 502 did not fail the effect")
	}
	var p outbox.AdvisoryEffect
	if err := pending(t, w.store, outbox.KindAdvisoryCreate).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if len(p.Nonce) < 32 || strings.Contains(p.Nonce, w.c.ID.String()) {
		t.Fatalf("the effect's secret is %q", p.Nonce)
	}
	if err := w.run(t, outbox.KindAdvisoryCreate, 2); err != nil {
		t.Fatal(err)
	}
	all := w.srv.Advisories()
	if len(all) != 1 || !strings.Contains(all[0].Description, p.Nonce) {
		t.Errorf("advisories %+v, want one carrying the effect's secret", all)
	}
}

// One advisory belongs to one case: the store refuses a second case for it.
func TestAnAdvisoryBelongsToOneCase(t *testing.T) {
	w := newEffectsWorld(t)
	ctx := context.Background()
	err := w.store.Tx(ctx, func(ctx context.Context) error {
		other, err := w.store.CreateCase(ctx, "matrix:@other:x", "matrix:!dm2:x", "matrix:!dm2:x", reported)
		if err != nil {
			return err
		}
		if err := w.store.SetAdvisory(ctx, w.c.ID, "GHSA-2222-3333-4444", "u", "enarx/enarx", reported); err != nil {
			return err
		}
		return w.store.SetAdvisory(ctx, other.ID, "GHSA-2222-3333-4444", "u", "enarx/enarx", reported)
	})
	if err == nil {
		t.Error("two cases recorded the same advisory")
	}
}
