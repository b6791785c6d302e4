package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
)

func TestAChangedIdentityWaitsForTheCoordinator(t *testing.T) {
	w := newWorld(t, monday)
	w.useIdentities()
	ctx := context.Background()
	w.openCase()
	w.published = map[disclosure.Person]string{bob: "KEY-RESET"}
	before := len(w.sends())
	if got := w.say(teamRoom, bob, "!sec claim SR-2026-0001"); !strings.Contains(got, "identity changed") {
		t.Errorf("a changed identity's command: %q", got)
	}
	w.say(teamRoom, bob, "!sec list")
	if err := w.h.IdentitySeen(ctx, bob, disclosure.Identity{Current: "KEY-RESET"}); err != nil {
		t.Fatal(err)
	}
	told := 0
	for _, s := range w.sends()[before:] {
		if strings.Contains(s, "🔐") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the team room was told about one change %d times: %q", told, w.sends()[before:])
	}
	if cs, _ := w.store.Case(ctx, case1); cs.Handler != "" {
		t.Errorf("the refused claim made %s the handler", cs.Handler)
	}
	if got := w.say(teamRoom, bob, "!sec trust @bob:x"); !strings.Contains(got, "coordinator") {
		t.Errorf("bob trusted himself: %q", got)
	}
	if got := w.say(teamRoom, alice, "!sec trust @bob:x KEY-RESET"); !strings.Contains(got, "trusted") {
		t.Errorf("the coordinator's trust: %q", got)
	}
	if got := w.say(teamRoom, bob, "!sec claim SR-2026-0001"); !strings.Contains(got, "handler") {
		t.Errorf("after the re-pin: %q", got)
	}
	audit, err := w.store.AuditOf(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	for _, want := range []string{"identity.changed", "trust"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("no %q in the audit log: %v", want, actions)
		}
	}
}

func TestAFirstIdentityIsPinnedOnSight(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.policy.Set(func() disclosure.Policy { p := *w.policy.Get(); p.Team = append(p.Team, "matrix:@dave:x"); return p }())
	if got := w.say(teamRoom, "matrix:@dave:x", "!sec list"); strings.Contains(got, "Refused") {
		t.Errorf("a new member's first command: %q", got)
	}
	if i, err := w.store.IdentityOf(ctx, "matrix:@dave:x"); err != nil || i.MasterKey != "KEY-matrix:@dave:x" {
		t.Errorf("pinned %+v, %v", i, err)
	}
}

func TestPlaintextInAnEncryptedRoomIsIgnored(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	before := len(w.sends())
	msg := chat.Message{ID: "$plain", Room: teamRoom, Sender: alice, Text: "!sec close SR-2026-0001", Identity: w.identity(alice), Plaintext: true}
	if err := w.h.HandleMessage(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if n := len(w.sends()) - before; n != 0 {
		t.Errorf("%d answers to a plaintext command", n)
	}
	if cs, _ := w.store.Case(ctx, case1); cs.Stage != disclosure.StageReceived {
		t.Errorf("the stage is %s", cs.Stage)
	}
	if a, _ := w.store.AuditBy(ctx, alice); len(a) == 0 || a[len(a)-1].Action != "plaintext.ignored" {
		t.Errorf("not audited: %+v", a)
	}
}

func TestAReportersNewDeviceIsToldToTheTeam(t *testing.T) {
	w := newWorld(t, monday)
	ctx := context.Background()
	w.openCase()
	seen := func(devices ...string) {
		t.Helper()
		var ds []chat.Device
		for _, d := range devices {
			ds = append(ds, chat.Device{ID: d, Name: "phone"})
		}
		if err := w.h.DevicesSeen(ctx, reporter, ds); err != nil {
			t.Fatal(err)
		}
	}
	seen("DEV1")
	n := len(w.sends())
	seen("DEV1")
	seen("DEV1", "DEV2")
	seen("DEV1", "DEV2")
	sends := w.sends()[n:]
	if len(sends) != 1 || !strings.Contains(sends[0], "DEV2") {
		t.Errorf("told %q", sends)
	}
	effects, _, _ := w.store.EffectsOfKind(ctx, outbox.KindSend)
	var p outbox.SendEffect
	_ = effects[len(effects)-1].Decode(&p)
	if p.To.CaseRoomOf != case1.String() {
		t.Errorf("told in %+v, not the case room", p.To)
	}
}
