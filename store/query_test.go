package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/enarx/secbot/disclosure"
)

// The reads through dbutil's QueryHelper and RowIter answer a missing row
// as the hand-written scans did: ErrNotFound where the method says so, a
// zero value or false otherwise, and nil for an empty list.
func TestMissingRowsReadAsBefore(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		id := disclosure.CaseID{Year: 2026, Seq: 1}
		if d, err := s.Deadline(ctx, id, disclosure.DeadlineAcknowledge); !errors.Is(err, ErrNotFound) || d != nil {
			t.Errorf("Deadline of nothing = %v, %v; want ErrNotFound", d, err)
		}
		if n, err := s.StartAttempt(ctx, 42); !errors.Is(err, ErrNotFound) || n != 0 {
			t.Errorf("StartAttempt of nothing = %d, %v; want ErrNotFound", n, err)
		}
		if c, ok, err := s.EncryptedRoom(ctx, "matrix:!r:hs"); c != "" || ok || err != nil {
			t.Errorf("EncryptedRoom = %q, %v, %v", c, ok, err)
		}
		if k, err := s.BotIdentity(ctx); k != "" || err != nil {
			t.Errorf("BotIdentity = %q, %v", k, err)
		}
		if tok, err := s.SyncPosition(ctx); tok != "" || err != nil {
			t.Errorf("SyncPosition = %q, %v", tok, err)
		}
		if at, err := s.LastCommandSent(ctx, "matrix:!r:hs"); !at.IsZero() || err != nil {
			t.Errorf("LastCommandSent = %v, %v", at, err)
		}
		if v, ok, err := s.MailboxUIDValidity(ctx, "INBOX"); v != 0 || ok || err != nil {
			t.Errorf("MailboxUIDValidity = %d, %v, %v", v, ok, err)
		}
		for name, read := range map[string]func() (bool, error){
			"WasHandled":          func() (bool, error) { return s.WasHandled(ctx, "$e") },
			"MailHandled":         func() (bool, error) { return s.MailHandled(ctx, "<m@x>", "a@x") },
			"EffectDoneInLane":    func() (bool, error) { return s.EffectDoneInLane(ctx, "lane") },
			"EffectPendingInLane": func() (bool, error) { return s.EffectPendingInLane(ctx, "lane") },
		} {
			if ok, err := read(); ok || err != nil {
				t.Errorf("%s = %v, %v", name, ok, err)
			}
		}
		if team, ok, err := s.TeamSeen(ctx); team != nil || ok || err != nil {
			t.Errorf("TeamSeen = %v, %v, %v", team, ok, err)
		}
		if parts, err := s.PostedParts(ctx, 42); parts == nil || len(parts) != 0 || err != nil {
			t.Errorf("PostedParts = %#v, %v; want an empty map", parts, err)
		}
		effects, states, err := s.EffectsOfKind(ctx, "chat.send")
		if effects != nil || states != nil || err != nil {
			t.Errorf("EffectsOfKind = %v, %v, %v", effects, states, err)
		}
		for name, read := range map[string]func() (any, error){
			"KnownDevices":        func() (any, error) { return s.KnownDevices(ctx, "matrix:@a:hs") },
			"DeadlinesOf":         func() (any, error) { return s.DeadlinesOf(ctx, id) },
			"DueDeadlines":        func() (any, error) { return s.DueDeadlines(ctx, t0, 10) },
			"DueEffects":          func() (any, error) { return s.DueEffects(ctx, t0, 10) },
			"AuditOf":             func() (any, error) { return s.AuditOf(ctx, id.String()) },
			"DeadLetters":         func() (any, error) { return s.DeadLetters(ctx) },
			"AwaitingEvents":      func() (any, error) { return s.AwaitingEvents(ctx) },
			"DueEmbargoReminders": func() (any, error) { return s.DueEmbargoReminders(ctx, t0) },
			"NeedToKnow":          func() (any, error) { return s.NeedToKnow(ctx, id) },
		} {
			list, err := read()
			if err != nil || !reflect.ValueOf(list).IsNil() {
				t.Errorf("%s = %#v, %v; want nil", name, list, err)
			}
		}
	})
}

// RoomUse tells a case room, a reporter's direct chat of a case, another
// direct chat of the bot and a stranger's room apart.
func TestRoomUseTellsRoomsApart(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		var c *Case
		err := s.Tx(ctx, func(ctx context.Context) (err error) {
			c, err = s.CreateCase(ctx, "matrix:@r:hs", "matrix:!src:hs", "matrix:!dm:hs", t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetCaseRoom(ctx, c.ID, "matrix:!case:hs", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDMRoomOf(ctx, "matrix:@m:hs", "matrix:!other:hs", t0); err != nil {
			t.Fatal(err)
		}
		for room, want := range map[string]struct {
			caseID    string
			dm, known bool
		}{
			"matrix:!case:hs":  {c.ID.String(), false, true},
			"matrix:!dm:hs":    {c.ID.String(), true, true},
			"matrix:!other:hs": {"", true, true},
			"matrix:!else:hs":  {"", false, false},
		} {
			caseID, dm, known, err := s.RoomUse(ctx, room)
			if err != nil || caseID != want.caseID || dm != want.dm || known != want.known {
				t.Errorf("RoomUse(%s) = %q, %v, %v, %v; want %q, %v, %v", room, caseID, dm, known, err, want.caseID, want.dm, want.known)
			}
		}
	})
}

// Counts groups the cases by stage and the failed effects by the family
// of their kind (the part before the first dot).
func TestCountsGroupCasesAndFailedEffects(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		for _, reporter := range []disclosure.Person{"matrix:@a:hs", "matrix:@b:hs"} {
			if err := s.Tx(ctx, func(ctx context.Context) error {
				_, err := s.CreateCase(ctx, reporter, "", "", t0)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		for i, kind := range []string{"chat.send", "chat.invite", "github.create_advisory", "legacy", "chat.send"} {
			id, err := s.EnqueueAt(ctx, "lane"+string(rune('a'+i)), kind, []byte(`{}`), t0, t0, false)
			if err != nil {
				t.Fatal(err)
			}
			if i < 4 {
				if err := s.FailEffect(ctx, id, "gone", t0); err != nil {
					t.Fatal(err)
				}
			}
		}
		c, err := s.Counts(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"received": 2}; !reflect.DeepEqual(c.CasesByStage, want) {
			t.Errorf("CasesByStage = %v, want %v", c.CasesByStage, want)
		}
		if want := map[string]int{"chat": 2, "github": 1, "": 1}; !reflect.DeepEqual(c.FailedEffects, want) {
			t.Errorf("FailedEffects = %v, want %v", c.FailedEffects, want)
		}
		if c.OutboxPending != 1 {
			t.Errorf("OutboxPending = %d, want 1", c.OutboxPending)
		}
	})
}

// The reads run in the transaction of the context Tx hands out: they see
// its writes before the commit, and nothing of them after a rollback.
func TestReadsInATransactionSeeItsWrites(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		rollback := errors.New("roll back")
		var id disclosure.CaseID
		err := s.Tx(ctx, func(ctx context.Context) error {
			c, err := s.CreateCase(ctx, "matrix:@r:hs", "", "", t0)
			if err != nil {
				return err
			}
			id = c.ID
			if err := s.SetDeadline(ctx, Deadline{CaseID: id, Kind: disclosure.DeadlineAcknowledge, StartedAt: t0, DueAt: t0, NextAt: t0}); err != nil {
				return err
			}
			if _, err := s.EnqueueAt(ctx, CaseLane(id), "chat.send", []byte(`{}`), t0, t0, true); err != nil {
				return err
			}
			if err := s.KnowDevice(ctx, "matrix:@r:hs", "DEV", t0); err != nil {
				return err
			}
			if err := s.RecordPostedPart(ctx, 7, "p", "$e"); err != nil {
				return err
			}
			if err := s.MarkMailHandled(ctx, "<m@x>", "a@x", t0); err != nil {
				return err
			}
			if d, err := s.Deadline(ctx, id, disclosure.DeadlineAcknowledge); err != nil || d.CaseID != id {
				t.Errorf("Deadline in the transaction = %v, %v", d, err)
			}
			if due, err := s.DueDeadlines(ctx, t0, 10); err != nil || len(due) != 1 {
				t.Errorf("DueDeadlines in the transaction = %v, %v", due, err)
			}
			if due, err := s.DueEffects(ctx, t0, 10); err != nil || len(due) != 1 || !due[0].Urgent {
				t.Errorf("DueEffects in the transaction = %v, %v", due, err)
			}
			if effects, states, err := s.EffectsOfKind(ctx, "chat.send"); err != nil || len(effects) != 1 || !effects[0].Urgent || !reflect.DeepEqual(states, []string{"pending"}) {
				t.Errorf("EffectsOfKind in the transaction = %v, %v, %v", effects, states, err)
			}
			if devices, err := s.KnownDevices(ctx, "matrix:@r:hs"); err != nil || !reflect.DeepEqual(devices, []string{"DEV"}) {
				t.Errorf("KnownDevices in the transaction = %v, %v", devices, err)
			}
			if parts, err := s.PostedParts(ctx, 7); err != nil || !reflect.DeepEqual(parts, map[string]string{"p": "$e"}) {
				t.Errorf("PostedParts in the transaction = %v, %v", parts, err)
			}
			if ok, err := s.MailHandled(ctx, "<m@x>", "a@x"); err != nil || !ok {
				t.Errorf("MailHandled in the transaction = %v, %v", ok, err)
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("Tx = %v", err)
		}
		if _, err := s.Deadline(ctx, id, disclosure.DeadlineAcknowledge); !errors.Is(err, ErrNotFound) {
			t.Errorf("Deadline after the rollback: %v, want ErrNotFound", err)
		}
		if effects, _, err := s.EffectsOfKind(ctx, "chat.send"); err != nil || len(effects) != 0 {
			t.Errorf("EffectsOfKind after the rollback = %v, %v", effects, err)
		}
		if devices, err := s.KnownDevices(ctx, "matrix:@r:hs"); err != nil || len(devices) != 0 {
			t.Errorf("KnownDevices after the rollback = %v, %v", devices, err)
		}
	})
}
