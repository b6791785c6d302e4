package ghsa

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/ghsa/ghsatest"
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
	w := &effectsWorld{srv: srv, store: st, policy: disclosure.NewInForce(disclosure.Policy{TeamRoom: "!team:x"})}
	if err := st.Tx(ctx, func(ctx context.Context) error {
		w.c, err = st.CreateCase(ctx, "@reporter:x", "!dm:x", "!dm:x", reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.effects = &Effects{Client: client, Store: st, Templates: tmpl, Clock: clockwork.NewFakeClockAt(reported), Policy: w.policy, Product: "enarx"}
	return w
}

// run makes one effect of kind for the case.
func (w *effectsWorld) run(t *testing.T, kind string, attempts int) error {
	t.Helper()
	payload, err := json.Marshal(store.AdvisoryEffect{CaseID: w.c.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.effects.Executors()[kind](context.Background(), store.Effect{Kind: kind, Attempts: attempts, Payload: payload})
	return err
}

// sends are the messages recorded so far.
func (w *effectsWorld) sends(t *testing.T) []store.SendEffect {
	t.Helper()
	effects, _, err := w.store.EffectsOfKind(context.Background(), store.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.SendEffect, len(effects))
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
	p.TeamRoom = "!new-team:x"
	w.policy.Set(p) // what SIGHUP does
	w.srv.Inject(ghsatest.Fault{Status: 502})
	if err := w.run(t, store.KindAdvisoryCreate, 1); err == nil {
		t.Fatal("a 502 did not fail the effect")
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "!new-team:x" {
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
		err := w.run(t, store.KindAdvisoryCreate, 1)
		if retry, _ := IsRetryable(err); err == nil || !retry {
			t.Fatalf("a 401 is not retried: %v", err)
		}
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "!team:x" || !strings.Contains(sends[0].Markdown, "refused the token") {
		t.Fatalf("after two refusals: %+v, want the team told once what to fix", sends)
	}
	if err := w.run(t, store.KindAdvisoryCreate, 3); err != nil {
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
	if err := w.run(t, store.KindAdvisoryCreate, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.run(t, store.KindAdvisoryFork, 1); err != nil {
		t.Fatal(err)
	}
	polls, _, err := w.store.EffectsOfKind(context.Background(), store.KindAdvisoryForkReady)
	if err != nil || len(polls) != 1 {
		t.Fatalf("polls %d, %v", len(polls), err)
	}
	if polls[0].Lane == store.GitHubLane(w.c.ID) {
		t.Errorf("the fork poll is in the case's GitHub lane %q: publishing would wait behind it", polls[0].Lane)
	}
}

func TestParkedGitHubWorkIsToldToTheTeam(t *testing.T) {
	w := newEffectsWorld(t)
	payload, _ := json.Marshal(store.AdvisoryEffect{CaseID: w.c.ID.String()})
	eff := store.Effect{Kind: store.KindAdvisoryCreate, Attempts: LastAttempt, Payload: payload}
	if err := w.effects.Parked(context.Background(), eff, &Error{Kind: Operator, Message: "GitHub refused the token"}); err != nil {
		t.Fatal(err)
	}
	sends := w.sends(t)
	if len(sends) != 1 || sends[0].To.Room != "!team:x" || !strings.Contains(sends[0].Markdown, "given up after 100 attempts") ||
		!strings.Contains(sends[0].Markdown, "!sec advisory "+w.c.ID.String()) {
		t.Errorf("told %+v", sends)
	}
}
