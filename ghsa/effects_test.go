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

// A SIGHUP that moves the team room moves GitHub's outage notices with it:
// the effects read the one policy in force, not a copy made at start.
func TestAReloadMovesTheOutageNoticeToTheNewTeamRoom(t *testing.T) {
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
	clock := clockwork.NewFakeClockAt(reported)
	var c *store.Case
	if err := st.Tx(ctx, func(ctx context.Context) error {
		c, err = st.CreateCase(ctx, "@reporter:x", "!dm:x", "!dm:x", reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	policy := disclosure.NewInForce(disclosure.Policy{TeamRoom: "!old-team:x"})
	effects := &Effects{Client: client, Store: st, Templates: tmpl, Clock: clock, Policy: policy, Product: "enarx"}
	p := *policy.Get()
	p.TeamRoom = "!new-team:x"
	policy.Set(p) // what SIGHUP does

	srv.Inject(ghsatest.Fault{Status: 502})
	create := effects.Executors()[store.KindAdvisoryCreate]
	if _, err := create(ctx, store.Effect{Kind: store.KindAdvisoryCreate, Payload: mustJSON(t, store.AdvisoryEffect{CaseID: c.ID.String()})}); err == nil {
		t.Fatal("a 502 did not fail the effect")
	}
	sends, _, err := st.EffectsOfKind(ctx, store.KindSend)
	if err != nil {
		t.Fatal(err)
	}
	if len(sends) != 1 {
		t.Fatalf("%d messages, want the one outage notice", len(sends))
	}
	var s store.SendEffect
	if err := sends[0].Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.To.Room != "!new-team:x" {
		t.Errorf("the outage notice went to %s, want the reloaded team room", s.To.Room)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An expired token is the operator's to fix: the team room hears what to
// fix, once; the case room (where the reporter reads) hears nothing; and
// the advisory is retried, not marked done.
func TestARefusedTokenTellsTheTeamAndMarksNothingDone(t *testing.T) {
	ctx := context.Background()
	srv, client := standIn(t, false)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, _ := templates.Load("")
	var c *store.Case
	if err := st.Tx(ctx, func(ctx context.Context) error {
		c, err = st.CreateCase(ctx, "@reporter:x", "!dm:x", "!dm:x", reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	effects := &Effects{Client: client, Store: st, Templates: tmpl, Clock: clockwork.NewFakeClockAt(reported), Policy: disclosure.NewInForce(disclosure.Policy{TeamRoom: "!team:x"}), Product: "enarx"}
	create := effects.Executors()[store.KindAdvisoryCreate]
	effect := store.Effect{Kind: store.KindAdvisoryCreate, Payload: mustJSON(t, store.AdvisoryEffect{CaseID: c.ID.String()})}
	for range 2 {
		srv.Inject(ghsatest.Fault{Status: 401, Body: `{"message":"Bad credentials"}`})
		_, err := create(ctx, effect)
		if retry, _ := IsRetryable(err); err == nil || !retry {
			t.Fatalf("a 401 is not retried: %v", err)
		}
	}
	sends, _, _ := st.EffectsOfKind(ctx, store.KindSend)
	if len(sends) != 1 {
		t.Fatalf("%d messages after two refusals, want the team told once", len(sends))
	}
	var s store.SendEffect
	_ = sends[0].Decode(&s)
	if s.To.Room != "!team:x" || !strings.Contains(s.Markdown, "refused the token") {
		t.Errorf("told %+v", s)
	}
	if _, err := create(ctx, effect); err != nil {
		t.Fatalf("once the token works: %v", err)
	}
	if got, _ := st.Case(ctx, c.ID); got.GHSAID == "" {
		t.Error("no advisory once the token works")
	}
}

// The poll for the private fork runs in a lane of its own, so publishing
// (in the case's GitHub lane) never waits minutes behind it.
func TestTheForkPollBlocksNothing(t *testing.T) {
	ctx := context.Background()
	_, client := standIn(t, false)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, _ := templates.Load("")
	var c *store.Case
	if err := st.Tx(ctx, func(ctx context.Context) error {
		c, err = st.CreateCase(ctx, "@reporter:x", "!dm:x", "!dm:x", reported)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	effects := &Effects{Client: client, Store: st, Templates: tmpl, Clock: clockwork.NewFakeClockAt(reported), Policy: disclosure.NewInForce(disclosure.Policy{}), Product: "enarx"}
	payload := mustJSON(t, store.AdvisoryEffect{CaseID: c.ID.String()})
	if _, err := effects.Executors()[store.KindAdvisoryCreate](ctx, store.Effect{Kind: store.KindAdvisoryCreate, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if _, err := effects.Executors()[store.KindAdvisoryFork](ctx, store.Effect{Kind: store.KindAdvisoryFork, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	polls, lanes, err := st.EffectsOfKind(ctx, store.KindAdvisoryForkReady)
	if err != nil || len(polls) != 1 {
		t.Fatalf("polls %d, %v", len(polls), err)
	}
	if polls[0].Lane == store.GitHubLane(c.ID) {
		t.Errorf("the fork poll is in the case's GitHub lane %q (state %s): publishing would wait behind it", polls[0].Lane, lanes[0])
	}
}

func TestParkedGitHubWorkIsToldToTheTeam(t *testing.T) {
	ctx := context.Background()
	_, client := standIn(t, false)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "secbot.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tmpl, _ := templates.Load("")
	effects := &Effects{Client: client, Store: st, Templates: tmpl, Clock: clockwork.NewFakeClockAt(reported), Policy: disclosure.NewInForce(disclosure.Policy{TeamRoom: "!team:x"}), Product: "enarx"}
	eff := store.Effect{Kind: store.KindAdvisoryCreate, Attempts: LastAttempt, Payload: mustJSON(t, store.AdvisoryEffect{CaseID: "SR-2026-0001"})}
	if err := effects.Parked(ctx, eff, &Error{Kind: Operator, Message: "GitHub refused the token"}); err != nil {
		t.Fatal(err)
	}
	sends, _, _ := st.EffectsOfKind(ctx, store.KindSend)
	var s store.SendEffect
	if len(sends) != 1 || sends[0].Decode(&s) != nil || s.To.Room != "!team:x" || !strings.Contains(s.Markdown, "given up after 100 attempts") || !strings.Contains(s.Markdown, "!sec advisory SR-2026-0001") {
		t.Errorf("told %+v", s)
	}
}
