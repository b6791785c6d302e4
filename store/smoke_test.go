package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// Every query of the store runs on both databases: each method once, in
// the order a case lives, with what it reads back checked where it is
// plain. (Most are tested for their meaning in their packages' tests, on
// SQLite; this is the net for SQL that only one database accepts.)
func TestEveryQueryRunsOnBothDatabases(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		check := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
		later := t0.Add(time.Hour)
		c, err := s.CreateCase(ctx, "matrix:@r:x", "matrix:!dm:x", "matrix:!dm:x", t0)
		if err != nil {
			t.Fatal(err)
		}
		check("SetCaseRoom", s.SetCaseRoom(ctx, c.ID, "matrix:!case:x", t0))
		check("SetDMRoom", s.SetDMRoom(ctx, c.ID, "matrix:!dm2:x", t0))
		check("SetChannel", s.SetChannel(ctx, c.ID, disclosure.ChannelChat))
		check("SetStage", s.SetStage(ctx, c.ID, disclosure.StageConfirmed, "matrix:@alice:x", t0))
		check("SetFact", s.SetFact(ctx, c.ID, disclosure.FactSeverity, "high", t0))
		check("SetFork", s.SetFork(ctx, c.ID, "fork", "https://x/fork", t0))
		check("SetSetupAt", s.SetSetupAt(ctx, c.ID, later))
		if setups, err := s.SetupsSince(ctx, t0); err != nil || len(setups) != 1 {
			t.Errorf("SetupsSince: %v, %v", setups, err)
		}
		if got, err := s.CaseByRoom(ctx, "matrix:!case:x"); err != nil || got.ID != c.ID {
			t.Errorf("CaseByRoom: %v, %v", got, err)
		}
		if open, err := s.OpenCases(ctx); err != nil || len(open) != 1 {
			t.Errorf("OpenCases: %v, %v", open, err)
		}
		if since, err := s.CasesSince(ctx, t0.Add(-time.Hour)); err != nil || len(since) != 1 {
			t.Errorf("CasesSince: %v, %v", since, err)
		}
		check("SetDMRoomOf", s.SetDMRoomOf(ctx, "matrix:@r:x", "matrix:!dm3:x", t0))
		if room, err := s.DMRoom(ctx, "matrix:@r:x"); err != nil || room != "matrix:!dm3:x" {
			t.Errorf("DMRoom: %q, %v", room, err)
		}
		check("ForgetDMRoom", s.ForgetDMRoom(ctx, "matrix:@r:x", "matrix:!dm2:x"))
		if first, err := s.ServiceFailing(ctx, "github", "down", t0); err != nil || !first {
			t.Errorf("ServiceFailing: %v, %v", first, err)
		}
		if back, err := s.ServiceRecovered(ctx, "github"); err != nil || !back {
			t.Errorf("ServiceRecovered: %v, %v", back, err)
		}

		d := Deadline{CaseID: c.ID, Kind: disclosure.DeadlineAcknowledge, StartedAt: t0, DueAt: t0.Add(48 * time.Hour), NextAt: t0.Add(48 * time.Hour)}
		check("SetDeadline", s.SetDeadline(ctx, d))
		if _, err := s.EscalateNow(ctx, c.ID, d.Kind, "matrix:@r:x", later); err != nil {
			t.Errorf("EscalateNow: %v", err)
		}
		if _, err := s.NextDeadlineAt(ctx); err != nil {
			t.Errorf("NextDeadlineAt: %v", err)
		}
		if met, err := s.MeetDeadline(ctx, c.ID, d.Kind, "matrix:@alice:x", later); err != nil || !met {
			t.Errorf("MeetDeadline: %v, %v", met, err)
		}
		if all, err := s.DeadlinesOf(ctx, c.ID); err != nil || len(all) != 1 || !all[0].Met() {
			t.Errorf("DeadlinesOf: %v, %v", all, err)
		}
		check("StopDeadlines", s.StopDeadlines(ctx, c.ID))

		check("SetEmbargo", s.SetEmbargo(ctx, c.ID, disclosure.Embargo{State: disclosure.EmbargoActive, End: t0.Add(72 * time.Hour)}, []time.Time{later}, t0))
		due, err := s.DueEmbargoReminders(ctx, later)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueEmbargoReminders: %v, %v", due, err)
		}
		if sent, err := s.MarkEmbargoReminderSent(ctx, due[0]); err != nil || !sent {
			t.Errorf("MarkEmbargoReminderSent: %v, %v", sent, err)
		}
		if again, err := s.DueEmbargoReminders(ctx, later); err != nil || len(again) != 0 {
			t.Errorf("a sent reminder is due again: %v, %v", again, err)
		}
		if added, err := s.AddNeedToKnow(ctx, c.ID, "matrix:@dan:x", "matrix:@alice:x", "dan", t0); err != nil || !added {
			t.Errorf("AddNeedToKnow: %v, %v", added, err)
		}
		if list, err := s.NeedToKnow(ctx, c.ID); err != nil || len(list) != 1 {
			t.Errorf("NeedToKnow: %v, %v", list, err)
		}
		if removed, err := s.RemoveNeedToKnow(ctx, c.ID, "matrix:@dan:x"); err != nil || !removed {
			t.Errorf("RemoveNeedToKnow: %v, %v", removed, err)
		}

		id, err := s.EnqueueAt(ctx, CaseLane(c.ID), "chat.send", json.RawMessage(`{"a":"b"}`), t0, t0, false)
		check("Enqueue", err)
		check("SetEffectPayload", s.SetEffectPayload(ctx, id, json.RawMessage(`{"a":"c"}`)))
		if effects, _, err := s.EffectsOfKind(ctx, "chat.send"); err != nil || len(effects) != 1 {
			t.Errorf("EffectsOfKind: %v, %v", effects, err)
		}
		if _, err := s.NextEffectAt(ctx); err != nil {
			t.Errorf("NextEffectAt: %v", err)
		}
		if pending, err := s.EffectPendingInLane(ctx, CaseLane(c.ID)); err != nil || !pending {
			t.Errorf("EffectPendingInLane: %v, %v", pending, err)
		}
		if done, err := s.EffectDoneInLane(ctx, CaseLane(c.ID)); err != nil || done {
			t.Errorf("EffectDoneInLane: %v, %v", done, err)
		}
		if n, _, err := s.OutboxDepth(ctx); err != nil || n != 1 {
			t.Errorf("OutboxDepth: %d, %v", n, err)
		}
		if _, err := s.PruneOutboxBefore(ctx, later); err != nil {
			t.Errorf("PruneOutboxBefore: %v", err)
		}
		check("Audit", s.Audit(ctx, AuditEntry{At: t0, Actor: "matrix:@m:x", CaseID: c.ID.String(), Action: "claim", Allowed: false}))
		if counts, err := s.Counts(ctx, later); err != nil || counts.RefusedCommands != 1 {
			t.Errorf("Counts: %+v, %v", counts, err)
		}

		check("RecordEncrypted", s.RecordEncrypted(ctx, "matrix:!case:x", `{"algorithm":"m.megolm.v1.aes-sha2"}`, t0))
		if _, ok, err := s.EncryptedRoom(ctx, "matrix:!case:x"); err != nil || !ok {
			t.Errorf("EncryptedRoom: %v, %v", ok, err)
		}
		if told, err := s.TellDowngrade(ctx, "matrix:!case:x", later); err != nil || !told {
			t.Errorf("TellDowngrade: %v, %v", told, err)
		}
		if caseID, _, known, err := s.RoomUse(ctx, "matrix:!case:x"); err != nil || !known || caseID != c.ID.String() {
			t.Errorf("RoomUse: %q, %v, %v", caseID, known, err)
		}
		check("PinBotIdentity", s.PinBotIdentity(ctx, "MASTER", t0))
		if key, err := s.BotIdentity(ctx); err != nil || key != "MASTER" {
			t.Errorf("BotIdentity: %q, %v", key, err)
		}
		check("PinIdentity", s.PinIdentity(ctx, Identity{Member: "matrix:@alice:x", MasterKey: "K1", PinnedAt: t0, PinnedBy: "matrix:@secbot:x"}))
		if i, err := s.IdentityOf(ctx, "matrix:@alice:x"); err != nil || i.MasterKey != "K1" {
			t.Errorf("IdentityOf: %+v, %v", i, err)
		}
		if _, err := s.AnnounceIdentity(ctx, "matrix:@alice:x", "K2"); err != nil {
			t.Errorf("AnnounceIdentity: %v", err)
		}
		check("KnowDevice", s.KnowDevice(ctx, "matrix:@r:x", "DEV", t0))
		if devices, err := s.KnownDevices(ctx, "matrix:@r:x"); err != nil || len(devices) != 1 {
			t.Errorf("KnownDevices: %v, %v", devices, err)
		}
		check("MarkMailHandled", s.MarkMailHandled(ctx, "<m@x>", "a@x", t0))
		if handled, err := s.MailHandled(ctx, "<m@x>", "a@x"); err != nil || !handled {
			t.Errorf("MailHandled: %v, %v", handled, err)
		}
		check("SetMailboxUIDValidity", s.SetMailboxUIDValidity(ctx, "INBOX", 4000000000, t0))
		if v, ok, err := s.MailboxUIDValidity(ctx, "INBOX"); err != nil || !ok || v != 4000000000 {
			t.Errorf("MailboxUIDValidity: %d, %v, %v", v, ok, err)
		}
		check("SetTeamSeen", s.SetTeamSeen(ctx, []disclosure.Person{"matrix:@alice:x", "matrix:@bob:x"}))
		if team, ok, err := s.TeamSeen(ctx); err != nil || !ok || len(team) != 2 {
			t.Errorf("TeamSeen: %v, %v, %v", team, ok, err)
		}
		if _, err := s.BeginFirstSync(ctx); err != nil {
			t.Errorf("BeginFirstSync: %v", err)
		}
		check("SetSyncPosition", s.SetSyncPosition(ctx, "s1"))
		check("SetSyncPosition again", s.SetSyncPosition(ctx, "s2"))
		if pos, err := s.SyncPosition(ctx); err != nil || pos != "s2" {
			t.Errorf("SyncPosition: %q, %v", pos, err)
		}
		if _, err := s.EnqueueAt(ctx, ReplyLane(c.ID), "chat.send", json.RawMessage(`{}`), t0, t0, true); err != nil {
			t.Errorf("EnqueueAt urgent: %v", err)
		}
		if tables, err := s.Tables(ctx); err != nil || len(tables) < 25 {
			t.Errorf("Tables: %v, %v", tables, err)
		}
	})
}
