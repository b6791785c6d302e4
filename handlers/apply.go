package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

// The handlers apply the timers' decisions too.
var _ timers.Applier = (*Handlers)(nil)

// ApplyFiring applies the timers' decision d on the firing of the due
// deadline of cs, inside the caller's transaction, as a command's decision
// is applied: first the firing is recorded, guarded so that a deadline met,
// moved or fired since due was read applies nothing (false).
func (h *Handlers) ApplyFiring(ctx context.Context, due store.Deadline, cs *store.Case, d disclosure.Decision, now time.Time) (bool, error) {
	f := d.Fired
	if f == nil || f.Kind != due.Kind || cs.ID != due.CaseID {
		return false, fmt.Errorf("the firing of %s's %s deadline decides no firing of it", due.CaseID, due.Kind)
	}
	ok, err := h.store.AdvanceDeadline(ctx, due, f.Reminded, f.LadderStep, f.NextAt, "")
	if err != nil || !ok {
		return false, err // stale: met, moved or fired meanwhile
	}
	d.Fired = nil
	return true, h.applyTimer(ctx, cs, d, now)
}

// ApplyEmbargoReminder applies the timers' decision d on a due embargo
// reminder of cs inside the caller's transaction; the reminder is marked
// sent first, so it goes out once (false: it already was).
func (h *Handlers) ApplyEmbargoReminder(ctx context.Context, due store.EmbargoReminder, cs *store.Case, d disclosure.Decision, now time.Time) (bool, error) {
	if cs.ID != due.CaseID {
		return false, fmt.Errorf("an embargo reminder of %s decided on %s", due.CaseID, cs.ID)
	}
	ok, err := h.store.MarkEmbargoReminderSent(ctx, due)
	if err != nil || !ok {
		return false, err
	}
	return true, h.applyTimer(ctx, cs, d, now)
}

// applyTimer applies a timer's decision: secbot is its actor, and its
// messages go in the case's timers lane, which waits on no command.
func (h *Handlers) applyTimer(ctx context.Context, cs *store.Case, d disclosure.Decision, now time.Time) error {
	req := disclosure.Request{By: disclosure.Timer, Now: now, Policy: h.Policy()}
	return h.applyIn(ctx, store.TimersLane(cs.ID), chat.Message{Sender: disclosure.Timer}, cs, req, d)
}

// domainCase reads a stored case as the domain decides on it.
func (h *Handlers) domainCase(ctx context.Context, cs *store.Case) (*disclosure.Case, error) {
	return h.store.DomainCase(ctx, cs)
}

// storeDeadline is a domain deadline as the scheduler plans it.
func storeDeadline(caseID disclosure.CaseID, d disclosure.Deadline) store.Deadline {
	return store.Deadline{CaseID: caseID, Kind: d.Kind, StartedAt: d.StartedAt, DueAt: d.DueAt, RemindAt: d.RemindAt,
		Reminded: d.Reminded, LadderStep: d.LadderStep, MetAt: d.MetAt, NextAt: d.NextAt}
}

// apply records a decision: its state changes, audit line, effects and
// messages, inside the caller's transaction. cs is the decision's case
// (nil for commands without one); msg is what it answers.
func (h *Handlers) apply(ctx context.Context, msg chat.Message, cs *store.Case, req disclosure.Request, d disclosure.Decision) error {
	return h.applyIn(ctx, "", msg, cs, req, d)
}

// applyIn is apply with the decision's messages in lane ("": the case's,
// or the room's for a decision without a case).
func (h *Handlers) applyIn(ctx context.Context, lane string, msg chat.Message, cs *store.Case, req disclosure.Request, d disclosure.Decision) error {
	now, p := req.Now, req.Policy
	if d.Fired != nil {
		return fmt.Errorf("a deadline's firing is applied by ApplyFiring")
	}
	caseRef := ""
	if cs != nil {
		caseRef = cs.ID.String()
	}
	if d.Changes() && cs == nil {
		return fmt.Errorf("a decision without a case changes state")
	}
	audit := func(action, detail string) error {
		return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: msg.Sender, CaseID: caseRef, Action: action, Detail: detail, Allowed: true})
	}
	if d.Stage != "" || d.Handler != "" {
		stage, handler := cs.Stage, cs.Handler
		if d.Stage != "" {
			stage = d.Stage
		}
		if d.Handler != "" {
			handler = d.Handler
		}
		if err := h.store.SetStage(ctx, cs.ID, stage, handler, now); err != nil {
			return err
		}
		if stage != cs.Stage {
			// The timeline `status` shows.
			if err := audit("stage", string(cs.Stage)+" → "+string(stage)); err != nil {
				return err
			}
		}
	}
	if !d.SetupAt.IsZero() {
		if err := h.store.SetSetupAt(ctx, cs.ID, d.SetupAt); err != nil {
			return err
		}
	}
	if d.Pin != nil {
		if err := h.store.PinIdentity(ctx, store.Identity{Member: d.Pin.Member, MasterKey: d.Pin.Key, PinnedAt: now, PinnedBy: msg.Sender}); err != nil {
			return err
		}
	}
	if d.Action != "" {
		if err := audit(d.Action, d.Detail); err != nil {
			return err
		}
	}
	if d.Embargo != nil {
		var reminders []time.Time
		if !d.Embargo.End.IsZero() {
			reminders = disclosure.EmbargoReminders(d.Embargo.End, p.Calendar)
		}
		if err := h.store.SetEmbargo(ctx, cs.ID, *d.Embargo, reminders, now); err != nil {
			return err
		}
	}
	for _, dc := range d.Deadlines {
		if err := h.applyDeadline(ctx, cs.ID, msg.Sender, dc, p); err != nil {
			return err
		}
	}
	for _, f := range d.Facts {
		if err := h.store.SetFact(ctx, cs.ID, f.Fact, f.Value, now); err != nil {
			return err
		}
	}
	for _, n := range d.NeedToKnow {
		var err error
		if n.Remove {
			_, err = h.store.RemoveNeedToKnow(ctx, cs.ID, n.Who)
		} else {
			_, err = h.store.AddNeedToKnow(ctx, cs.ID, n.Who, msg.Sender, n.GitHub, now)
		}
		if err != nil {
			return err
		}
	}
	if d.Cancel != nil {
		if err := h.cancel(ctx, cs, p, *d.Cancel, now); err != nil {
			return err
		}
	}
	for _, e := range d.Effects {
		if err := h.applyEffect(ctx, msg, cs, e, now); err != nil {
			return err
		}
	}
	for _, m := range d.Say {
		if err := h.say(ctx, lane, msg, cs, p, m, now); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handlers) applyDeadline(ctx context.Context, caseID disclosure.CaseID, by disclosure.Person, dc disclosure.DeadlineChange, p *disclosure.Policy) error {
	var err error
	switch dc.Op {
	case disclosure.StartDeadline:
		err = h.store.SetDeadline(ctx, storeDeadline(caseID, p.NewDeadline(dc.Kind, dc.At)))
	case disclosure.MeetDeadline:
		_, err = h.store.MeetDeadline(ctx, caseID, dc.Kind, by, dc.At)
	case disclosure.StopDeadlines:
		err = h.store.StopDeadlines(ctx, caseID)
	case disclosure.EscalateDeadline:
		_, err = h.store.EscalateNow(ctx, caseID, dc.Kind, by, dc.At)
	}
	return err
}

// queuedKinds are the effect kinds of the domain's queued work.
var queuedKinds = map[disclosure.QueuedKind]string{
	disclosure.QueuedPublish:      outbox.KindAdvisoryPublish,
	disclosure.QueuedAnnounce:     outbox.KindAnnounce,
	disclosure.QueuedCVE:          outbox.KindAdvisoryCVE,
	disclosure.QueuedCollaborator: outbox.KindAdvisoryCollaborator,
	disclosure.QueuedInvite:       outbox.KindInvite,
}

// cancel cancels the case's pending work a decision makes wrong, audits
// it and tells the team room what was cancelled.
func (h *Handlers) cancel(ctx context.Context, cs *store.Case, p *disclosure.Policy, c disclosure.Cancel, now time.Time) error {
	kinds := make([]string, 0, len(c.Kinds))
	labels := map[string]string{}
	for _, k := range c.Kinds {
		kinds = append(kinds, queuedKinds[k])
		labels[queuedKinds[k]] = disclosure.Queued{Kind: k}.Label()
	}
	cancelled, err := outbox.CancelPending(ctx, h.store, cs.ID, kinds, "cancelled: "+c.Because, now)
	if err != nil || len(cancelled) == 0 {
		return err
	}
	var what []string
	for _, k := range cancelled {
		if l := labels[k]; !slices.Contains(what, l) {
			what = append(what, l)
		}
	}
	if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: cs.ID.String(), Action: "queued.cancel", Detail: strings.Join(what, ", ") + ": " + c.Because, Allowed: true}); err != nil {
		return err
	}
	if p.TeamRoom == "" {
		return nil
	}
	return h.enqueue(ctx, store.CaseLane(cs.ID), outbox.Target{Room: p.TeamRoom}, templates.QueuedCancelled{CaseID: cs.ID.String(), Because: c.Because, What: what}, outbox.SendEffect{}, false)
}

var advisoryKinds = map[disclosure.AdvisoryOpKind]string{
	disclosure.AdvisoryCollaborator: outbox.KindAdvisoryCollaborator,
	disclosure.AdvisoryUpdate:       outbox.KindAdvisoryUpdate,
	disclosure.AdvisoryFork:         outbox.KindAdvisoryFork,
	disclosure.AdvisoryCVE:          outbox.KindAdvisoryCVE,
	disclosure.AdvisoryPublish:      outbox.KindAdvisoryPublish,
	disclosure.AdvisoryCreate:       outbox.KindAdvisoryCreate,
	disclosure.AdvisoryState:        outbox.KindAdvisoryState,
	disclosure.AdvisoryMove:         outbox.KindAdvisoryMove,
}

func (h *Handlers) applyEffect(ctx context.Context, msg chat.Message, cs *store.Case, e disclosure.Effect, now time.Time) error {
	lane, caseRoom := store.CaseLane(cs.ID), outbox.Target{CaseRoomOf: cs.ID.String()}
	var err error
	switch e := e.(type) {
	case disclosure.InviteToCaseRoom:
		_, err = outbox.Enqueue(ctx, h.store, lane, outbox.KindInvite, outbox.InviteEffect{To: caseRoom, User: e.Who}, now)
	case disclosure.CreateCaseRoom:
		// Urgent: the reporter may be waiting to join it.
		_, err = outbox.EnqueueAt(ctx, h.store, lane, outbox.KindCreateCaseRoom, outbox.CreateCaseRoomEffect{CaseID: cs.ID.String(), Name: e.Name, Invite: e.Invite, Team: e.Team, Platform: e.Platform}, now, e.At, true)
	case disclosure.DraftAdvisory:
		_, err = outbox.EnqueueAt(ctx, h.store, store.GitHubLane(cs.ID), outbox.KindAdvisoryCreate, outbox.AdvisoryEffect{CaseID: cs.ID.String(), Nonce: outbox.NewNonce()}, now, e.At, false)
	case disclosure.RemoveFromCaseRoom:
		_, err = outbox.Enqueue(ctx, h.store, lane, outbox.KindKick, outbox.KickEffect{To: caseRoom, User: e.Who, Reason: e.Reason}, now)
	case disclosure.AdvisoryOp:
		eff := outbox.AdvisoryEffect{
			CaseID: cs.ID.String(), Login: e.Login, Remove: e.Remove, ReplyIn: msg.Room, ReplyTo: msg.ID,
			Affected: e.Affected, Patched: e.Patched, Severity: e.Severity, CWEs: e.CWEs, Credit: e.Credit,
			Summary: e.Summary, Description: e.Description, State: e.State, Repository: e.Repository,
			For: e.For, Force: e.Force,
		}
		if e.Op == disclosure.AdvisoryMove {
			// What it moves from, as it is now: a retry after the new draft
			// is recorded still closes the right one.
			eff.FromGHSA, eff.From = cs.GHSAID, cs.GHSARepo
			if eff.From == "" {
				eff.From = h.Policy().Repository
			}
		}
		_, err = outbox.Enqueue(ctx, h.store, store.GitHubLane(cs.ID), advisoryKinds[e.Op], eff, now)
	case disclosure.Announce:
		_, err = outbox.Enqueue(ctx, h.store, lane, outbox.KindAnnounce, AnnounceEffect{CaseID: cs.ID.String(), ReplyIn: msg.Room, ReplyTo: msg.ID, Force: e.Force}, now)
	default:
		err = fmt.Errorf("unknown effect %T", e)
	}
	return err
}

// say records one message of a decision for its audience.
func (h *Handlers) say(ctx context.Context, lane string, msg chat.Message, cs *store.Case, p *disclosure.Policy, m disclosure.Message, now time.Time) error {
	switch {
	case lane != "":
	case cs != nil:
		lane = store.CaseLane(cs.ID)
	default:
		lane = store.RoomLane(msg.Room)
	}
	if m.React != "" {
		_, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindReact, outbox.ReactEffect{Room: msg.Room, Event: msg.ID, Key: m.React}, now)
		return err
	}
	switch m.To.Kind {
	case disclosure.Here:
		return h.enqueue(ctx, lane, outbox.Target{Room: msg.Room}, m.Data, outbox.SendEffect{ReplyTo: msg.ID}, false)
	case disclosure.ToCaseRoom:
		if !cs.RoomUnusable {
			if err := h.enqueue(ctx, lane, outbox.Target{CaseRoomOf: cs.ID.String()}, m.Data, outbox.SendEffect{}, false); err != nil {
				return err
			}
		}
		switch {
		case cs.Reporter.Channel() == disclosure.ChannelEmail:
			// The reporter is not in the room: what they would read there
			// is mailed to them.
			return outbox.MailReporter(ctx, h.store, h.templates, cs.ID, cs.Reporter, m.Data, now, false)
		case cs.Reporter.Channel() == disclosure.ChannelChat && (cs.RoomUnusable || !disclosure.ReadsCaseRoom(cs.Reporter, h.caseRoomPlatform(cs, p))):
			// A reporter on another chat than the case room's, or whose case
			// room proved unusable, reads it in their direct chat.
			if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindOpenDM, outbox.OpenDMEffect{User: cs.Reporter, CaseID: cs.ID.String()}, now); err != nil {
				return err
			}
			return h.enqueue(ctx, lane, outbox.Target{DMWith: cs.Reporter}, m.Data, outbox.SendEffect{}, false)
		}
		return nil
	case disclosure.InCaseRoom:
		return h.enqueue(ctx, lane, outbox.Target{CaseRoomOf: cs.ID.String()}, m.Data, outbox.SendEffect{}, false)
	case disclosure.ToTeamRoom:
		if p.TeamRoom == "" {
			return nil
		}
		if m.Apart {
			lane = store.RoomLane(p.TeamRoom)
		}
		return h.enqueue(ctx, lane, outbox.Target{Room: p.TeamRoom}, m.Data, outbox.SendEffect{Mentions: m.Mentions}, false)
	case disclosure.ToPerson:
		who := m.To.Who
		if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindOpenDM, outbox.OpenDMEffect{User: who}, now); err != nil {
			return err
		}
		return h.enqueue(ctx, lane, outbox.Target{DMWith: who}, m.Data, outbox.SendEffect{Mentions: []disclosure.Person{who}}, false)
	}
	return fmt.Errorf("unknown audience %d", m.To.Kind)
}

// refuse answers a refused command where it was typed and records the
// attempt in the audit log: nothing else is written.
func (h *Handlers) refuse(ctx context.Context, c *cmdContext, r *disclosure.Refusal) error {
	caseRef := ""
	switch {
	case c.sc != nil:
		caseRef = c.sc.ID.String()
	case c.req.Where.Kind == disclosure.CaseRoom:
		caseRef = c.req.Where.Case.String()
	}
	action := r.Action
	if action == "" && c.cmd != nil {
		action = "command " + c.cmd.name
	}
	if err := h.auditRefusal(ctx, store.AuditEntry{At: c.req.Now, Actor: c.msg.Sender, CaseID: caseRef, Action: templates.Truncate(action, 48), Detail: "refused: " + r.Reason, Allowed: false}); err != nil {
		return err
	}
	var d templates.Data = templates.Refused{Reason: r.Reason}
	if r.NotTeam {
		d = templates.NotTeam{Prefix: c.req.Policy.CommandPrefix}
	}
	return h.enqueue(ctx, store.RoomLane(c.msg.Room), outbox.Target{Room: c.msg.Room}, d, outbox.SendEffect{ReplyTo: c.msg.ID}, false)
}

// refuseUsage answers a command given the wrong way with its syntax.
func (h *Handlers) refuseUsage(ctx context.Context, c *cmdContext, u usageError, reporter bool) error {
	prefix := c.req.Policy.CommandPrefix
	if reporter {
		prefix = ""
	}
	if err := h.auditRefusal(ctx, store.AuditEntry{At: c.req.Now, Actor: c.msg.Sender, CaseID: caseRefOf(c), Action: "command " + c.cmd.name, Detail: "refused: usage", Allowed: false}); err != nil {
		return err
	}
	return h.enqueue(ctx, store.RoomLane(c.msg.Room), outbox.Target{Room: c.msg.Room}, templates.Usage{Syntax: syntax(prefix, c.cmd), Hint: u.hint}, outbox.SendEffect{ReplyTo: c.msg.ID}, false)
}

func caseRefOf(c *cmdContext) string {
	if c.sc != nil {
		return c.sc.ID.String()
	}
	return ""
}
