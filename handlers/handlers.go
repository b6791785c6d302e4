// Package handlers turns what arrives on a channel (a chat message, an
// invite) into the domain's decisions and applies them: it parses, asks
// disclosure, and records the decision with its side effects in one
// transaction. A refusal records nothing but its audit line.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Chat is what the handlers need of the chat side beyond the outbox:
// answering invites, which is safe to repeat and so is done directly.
type Chat interface {
	UserID() disclosure.Person
	JoinRoom(ctx context.Context, roomID string) error
	LeaveRoom(ctx context.Context, roomID string, reason string) error
	// JoinedMemberCount is the number of users joined to a room, as the
	// bot last saw it.
	JoinedMemberCount(ctx context.Context, roomID string) (int, error)
	// HasEncryption reports whether a user has an end-to-end encryption
	// device (their published device keys).
	HasEncryption(ctx context.Context, user disclosure.Person) (bool, error)
}

// Message is a chat message as the handlers see it: who wrote what where,
// translated from the channel's own event by the channel's package.
type Message struct {
	ID     string
	Room   string
	Sender disclosure.Person
	// Sent is when the sender's server says the message was sent (Matrix:
	// origin_server_ts, which the megolm session binds to the event); zero
	// when the channel does not say.
	Sent time.Time
	// Text is the body of a text message ("" for anything else).
	Text string
	// Attachment is true for files, images and the like.
	Attachment bool
	// Identity is the sender's end-to-end identity and whether it signed
	// the sending device (team members only; nil when unknown).
	Identity *disclosure.Identity
	// Plaintext marks a message sent unencrypted into an encrypted room.
	Plaintext bool
	// Mail is set for a message of the security mailbox (Room is then
	// empty and Sender an email person): what the mail channel read of
	// it, never its text.
	Mail *MailRef

	// trust is how far the sending device speaks for the sender.
	trust disclosure.DeviceTrust
}

// MailRef names a message of the security mailbox and where it belongs.
type MailRef struct {
	UIDValidity, UID uint32
	MessageID        string
	// Case is the case the message's thread names (zero: none).
	Case disclosure.CaseID
	// Automatic says why the message is machine-made ("" for a person's).
	Automatic string
	// SenderVerified is true when the mail channel proved the From is the
	// sender's (DKIM/DMARC); anyone can write any From, so a message
	// without the proof is posted marked as from an unverified sender and
	// counts as nobody's word. SenderCheck says how or why not.
	SenderVerified bool
	SenderCheck    string
	// Kind is what kind of machine-made mail it is (MailPerson with an
	// Automatic reason: mail that is only audited).
	Kind MailKind
	// BounceOf is, for a delivery report, the case of secbot's mail it
	// returns (zero: none of ours).
	BounceOf disclosure.CaseID
}

// Invite is the bot being invited to a room.
type Invite struct {
	Room   string
	Sender disclosure.Person
	// Direct is the inviter's claim that the room is a direct chat.
	Direct bool
}

// Handlers decides and applies what incoming messages and invites do.
type Handlers struct {
	policy    *disclosure.InForce
	store     *store.Store
	chat      Chat
	templates *templates.Set
	clock     clockwork.Clock
	// kick tells the outbox runner that effects were recorded.
	kick func()

	teamCmds     map[string]*command
	reporterCmds map[string]*command
	chatter      limiter
	// mailGate delays a flood of email from one sender (never drops it).
	mailGate mailGate
	// identities is the chat's end-to-end trust (nil: none).
	identities Identities
	// mailbox names the security mailbox's folder, for the team's notes.
	mailbox string
	// commandMaxAge is how long after it was sent a team command still
	// runs (0: DefaultCommandMaxAge).
	commandMaxAge time.Duration
	// refusals bounds how often an outsider's refusals are audited.
	refusals limiter
}

// SetMailbox names the security mailbox's folder in what the team reads
// about mail left there.
func (h *Handlers) SetMailbox(name string) { h.mailbox = name }

// New returns the handlers, deciding under the policy in force.
func New(policy *disclosure.InForce, st *store.Store, chat Chat, tmpl *templates.Set, clock clockwork.Clock, kick func()) *Handlers {
	if kick == nil {
		kick = func() {}
	}
	h := &Handlers{policy: policy, store: st, chat: chat, templates: tmpl, clock: clock, kick: kick}
	h.teamCmds = h.teamCommands()
	h.reporterCmds = h.reporterCommands()
	return h
}

// UseIdentities makes team commands count only from devices the member's
// pinned identity signed, as ids tells.
func (h *Handlers) UseIdentities(ids Identities) { h.identities = ids }

// Policy returns the policy in force.
func (h *Handlers) Policy() *disclosure.Policy { return h.policy.Get() }

// request is msg's sender asking, where they wrote, now, under the policy
// in force.
func (h *Handlers) request(msg Message, where disclosure.Place) disclosure.Request {
	return disclosure.Request{By: msg.Sender, Device: msg.trust, Where: where, Now: h.clock.Now(), Policy: h.Policy()}
}

// IsTeam reports whether user is on the security team.
func (h *Handlers) IsTeam(user disclosure.Person) bool {
	return h.Policy().IsTeam(disclosure.Person(user))
}

// HandleInvite accepts direct chats from anyone (that is how reporters
// reach the bot) and other rooms only from the security team.
func (h *Handlers) HandleInvite(ctx context.Context, inv Invite) error {
	log := zerolog.Ctx(ctx)
	now := h.clock.Now()
	// The configured team room is joined whoever invites the bot there.
	if !inv.Direct && !h.IsTeam(inv.Sender) && inv.Room != h.Policy().TeamRoom {
		log.Info().Msg("Declining an invite to a group room from outside the team")
		if err := h.chat.LeaveRoom(ctx, inv.Room, "secbot joins group rooms only when the security team invites it"); err != nil {
			return fmt.Errorf("decline invite: %w", err)
		}
		return h.auditRefusal(ctx, store.AuditEntry{At: now, Actor: inv.Sender, Action: "invite", Detail: "group room invite declined", Allowed: false})
	}
	if err := h.chat.JoinRoom(ctx, inv.Room); err != nil {
		return fmt.Errorf("join %s: %w", inv.Room, err)
	}
	log.Info().Bool("direct", inv.Direct).Msg("Joined room")
	if inv.Direct {
		// is_direct is only the inviter's word: a "direct chat" with a
		// third member is a group room, and the bot leaves it at once.
		if n, err := h.chat.JoinedMemberCount(ctx, inv.Room); err == nil && n > 2 {
			log.Warn().Int("members", n).Msg("Leaving a direct chat with more than two members")
			if err := h.chat.LeaveRoom(ctx, inv.Room, "a direct chat with secbot is for two; it will open a new one when it has something to say"); err != nil {
				return fmt.Errorf("leave %s: %w", inv.Room, err)
			}
			// An earlier look (the same invite seen again) may have
			// counted two and kept the room as their direct chat.
			if err := h.store.ForgetDMRoom(ctx, inv.Sender, inv.Room); err != nil {
				return err
			}
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: inv.Sender, Action: "direct-chat.leave", Detail: "more than two members: not a direct chat", Allowed: false})
		}
		return h.store.SetDMRoomOf(ctx, inv.Sender, inv.Room, now)
	}
	return nil
}

// HandleUndecryptable tells the sender once per encryption session that a
// message could not be read, so they are not left waiting.
func (h *Handlers) HandleUndecryptable(ctx context.Context, msg Message, session string) {
	if msg.Sender == h.chat.UserID() {
		return
	}
	// Only a reporter writing to the bot is owed an answer; in group rooms
	// (the team room, where messages from before the bot joined cannot be
	// read) it would be noise.
	if p, err := h.place(ctx, msg); err != nil || p.where.Kind != disclosure.PrivateChat {
		return
	}
	key := "undecryptable:" + session
	if told, err := h.store.WasHandled(ctx, key); err != nil || told {
		return // told about this session already: no answer to count
	}
	if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
		return
	}
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandledBriefly(ctx, key, h.clock.Now())
		if err != nil || !first {
			return err
		}
		return h.enqueue(ctx, store.RoomLane(msg.Room), store.Target{Room: msg.Room}, templates.Undecryptable{}, store.SendEffect{ReplyTo: msg.ID}, false)
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not tell the sender about an undecryptable message")
	}
	h.kick()
}

// HandleMessage handles one chat message. It returns an error only when
// nothing was committed, so the message can be handled again.
func (h *Handlers) HandleMessage(ctx context.Context, msg Message) error {
	if msg.Sender == h.chat.UserID() {
		return nil
	}
	p, err := h.place(ctx, msg)
	if err != nil {
		return err
	}
	if p.crowded {
		return h.leaveCrowded(ctx, msg)
	}
	where, cs := p.where, p.cs
	if msg.Plaintext {
		caseRef := ""
		if cs != nil {
			caseRef = cs.ID.String()
		}
		return h.ignorePlaintext(ctx, msg, caseRef)
	}
	if msg.trust, err = h.deviceTrust(ctx, msg); err != nil {
		return err
	}
	if rest, ok := h.commandText(msg.Text); ok {
		if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
			return err
		}
		return h.teamCommand(ctx, msg, where, rest)
	}
	switch where.Kind {
	case disclosure.CaseRoom:
		if h.IsTeam(msg.Sender) {
			return h.teamSpoke(ctx, msg, cs)
		}
		if msg.Sender == cs.Reporter {
			if cmd, p, ok := h.reporterCommand(msg.Text); ok {
				if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
					return err
				}
				return h.runReporterCommand(ctx, msg, where, cmd, p, cs)
			}
		}
	case disclosure.PrivateChat:
		if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
			return err
		}
		if cmd, p, ok := h.reporterCommand(msg.Text); ok {
			open, err := h.store.OpenCaseOf(ctx, msg.Sender)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return h.runReporterCommand(ctx, msg, where, cmd, p, open)
		}
		return h.handleDirect(ctx, msg)
	case disclosure.Elsewhere:
		if disclosure.IsReportIntent(msg.Text) {
			if quiet, err := h.quieted(ctx, msg); quiet || err != nil {
				return err
			}
			return h.intake(ctx, msg, false)
		}
	}
	return nil
}

// teamSpoke handles a team member's ordinary message in a case room: the
// domain decides what it meets or restarts (nothing, for a finished case).
func (h *Handlers) teamSpoke(ctx context.Context, msg Message, cs *store.Case) error {
	return h.once(ctx, msg.ID, func(ctx context.Context) error {
		c, err := h.domainCase(ctx, cs)
		if err != nil {
			return err
		}
		req := h.request(msg, disclosure.Place{Kind: disclosure.CaseRoom, Case: cs.ID})
		return h.apply(ctx, msg, cs, req, c.TeamSpoke(req))
	})
}

// leaveCrowded leaves a "direct chat" with more than two members, forgets
// it as one, and records why; nothing said there is handled.
func (h *Handlers) leaveCrowded(ctx context.Context, msg Message) error {
	zerolog.Ctx(ctx).Warn().Msg("Leaving a direct chat with more than two members")
	return h.once(ctx, msg.ID, func(ctx context.Context) error {
		if err := h.store.ForgetDMRoom(ctx, msg.Sender, msg.Room); err != nil {
			return err
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: h.clock.Now(), Actor: msg.Sender, Action: "direct-chat.leave", Detail: "more than two members: not a direct chat", Allowed: false}); err != nil {
			return err
		}
		return h.chat.LeaveRoom(ctx, msg.Room, "a direct chat with secbot is for two; it will open a new one when it has something to say")
	})
}

// placed is what a room is to the policy, and the case it belongs to.
type placed struct {
	where disclosure.Place
	cs    *store.Case
	// crowded marks the sender's stored direct chat once it has more than
	// two members: is_direct is only the inviter's word, and what the bot
	// says in a direct chat is for one person.
	crowded bool
}

// place says what a room is to the policy: the team room, a case room, a
// private chat with the sender, or anywhere else.
func (h *Handlers) place(ctx context.Context, msg Message) (placed, error) {
	if team := h.Policy().TeamRoom; team != "" && msg.Room == team {
		return placed{where: disclosure.Place{Kind: disclosure.TeamRoom}}, nil
	}
	if c, err := h.store.CaseByRoom(ctx, msg.Room); err == nil {
		return placed{where: disclosure.Place{Kind: disclosure.CaseRoom, Case: c.ID}, cs: c}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return placed{}, err
	}
	dm, err := h.store.DMRoom(ctx, msg.Sender)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return placed{}, err
	}
	n, countErr := h.chat.JoinedMemberCount(ctx, msg.Room)
	switch {
	case dm == msg.Room && countErr == nil && n > 2:
		return placed{where: disclosure.Place{Kind: disclosure.Elsewhere}, crowded: true}, nil
	case dm == msg.Room:
		return placed{where: disclosure.Place{Kind: disclosure.PrivateChat}}, nil
	case countErr == nil && n == 2 && !h.IsTeam(msg.Sender):
		// A two-person room a reporter made without is_direct is a DM in
		// all but name. Not for team commands: a room with two members now
		// may have more (and read its history) later; only the member's own
		// direct chat shows every case.
		return placed{where: disclosure.Place{Kind: disclosure.PrivateChat}}, nil
	}
	return placed{where: disclosure.Place{Kind: disclosure.Elsewhere}}, nil
}

func (h *Handlers) handleDirect(ctx context.Context, msg Message) error {
	if msg.Text != "" && disclosure.IsReportIntent(msg.Text) {
		return h.intake(ctx, msg, true)
	}
	// Chatter changes nothing but its answer: its record is pruned.
	return h.onceBriefly(ctx, msg.ID, func(ctx context.Context) error {
		here := store.Target{Room: msg.Room}
		lane := store.RoomLane(msg.Room)
		open, err := h.store.OpenCaseOf(ctx, msg.Sender)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		details := disclosure.LooksLikeDetails(msg.Text, msg.Attachment)
		if open != nil {
			lane = store.CaseLane(open.ID)
			if details {
				if err := h.enqueue(ctx, lane, here, templates.DMDetailsWarning(caseRoomData(open)), store.SendEffect{ReplyTo: msg.ID}, false); err != nil {
					return err
				}
			}
			return h.enqueue(ctx, lane, here, templates.DMExistingCase(caseRoomData(open)), store.SendEffect{}, false)
		}
		if details {
			return h.enqueue(ctx, lane, here, templates.DMDetailsNoCase{}, store.SendEffect{ReplyTo: msg.ID}, false)
		}
		return h.enqueue(ctx, lane, here, templates.NotUnderstood{}, store.SendEffect{}, false)
	})
}

// once runs fn in a transaction that also marks the event handled, for
// good; if it was handled before, however long ago, fn does not run.
func (h *Handlers) once(ctx context.Context, eventID string, fn func(ctx context.Context) error) error {
	return h.onceMarked(ctx, eventID, h.store.MarkHandled, fn)
}

// onceBriefly is once for an event whose handling changes nothing but an
// answer: its record is pruned after the retention.
func (h *Handlers) onceBriefly(ctx context.Context, eventID string, fn func(ctx context.Context) error) error {
	return h.onceMarked(ctx, eventID, h.store.MarkHandledBriefly, fn)
}

func (h *Handlers) onceMarked(ctx context.Context, eventID string, mark func(context.Context, string, time.Time) (bool, error), fn func(ctx context.Context) error) error {
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := mark(ctx, eventID, h.clock.Now())
		if err != nil {
			return err
		}
		if !first {
			zerolog.Ctx(ctx).Debug().Msg("Event already handled")
			return nil
		}
		if err := fn(ctx); err != nil {
			return err
		}
		crashpoint.Hit("handler.before_commit")
		return nil
	})
	if err == nil {
		h.kick()
	}
	return err
}

// enqueue renders d and records it as a message to send: the one way the
// handlers say anything. effect carries threading and mentions; urgent
// messages (the answer a reporter waits on) go before routine ones.
func (h *Handlers) enqueue(ctx context.Context, lane string, to store.Target, d templates.Data, effect store.SendEffect, urgent bool) error {
	effect.To = to
	return scheduler.Say(ctx, h.store, h.templates, lane, effect, d, h.clock.Now(), urgent)
}

type caseRoomFields struct{ CaseID, CaseRoom, CaseRoomLink string }

func caseRoomData(c *store.Case) caseRoomFields {
	return caseRoomFields{CaseID: c.ID.String(), CaseRoom: string(c.CaseRoom), CaseRoomLink: id.RoomID(c.CaseRoom).URI().MatrixToURL()}
}

// TeamRoomUnencrypted says once in the team room that it is not end-to-end
// encrypted: what is posted there is readable by the homeserver.
func (h *Handlers) TeamRoomUnencrypted(ctx context.Context) error {
	room := h.Policy().TeamRoom
	if room == "" {
		return nil
	}
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandled(ctx, "team-room-unencrypted:"+room, h.clock.Now())
		if err != nil || !first {
			return err
		}
		return h.enqueue(ctx, store.RoomLane(room), store.Target{Room: room}, templates.TeamRoomUnencrypted{}, store.SendEffect{}, false)
	})
	h.kick()
	return err
}

// FollowTeam brings the open cases' rooms in line with the team in force
// (at start and after a reload): members who joined the team are invited,
// members who left it are removed, each case's audit log says so, and the
// team room is told once. The first time, the team is only recorded.
func (h *Handlers) FollowTeam(ctx context.Context) error {
	p := h.Policy()
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		seen, recorded, err := h.store.TeamSeen(ctx)
		if err != nil || !recorded {
			if err == nil {
				err = h.store.SetTeamSeen(ctx, p.Team)
			}
			return err
		}
		added, removed := diffPeople(seen, p.Team), diffPeople(p.Team, seen)
		if len(added) == 0 && len(removed) == 0 {
			return nil
		}
		cases, err := h.store.OpenCases(ctx)
		if err != nil {
			return err
		}
		now := h.clock.Now()
		for _, c := range cases {
			lane, room := store.CaseLane(c.ID), store.Target{CaseRoomOf: c.ID.String()}
			for _, u := range added {
				if _, err := h.store.Enqueue(ctx, lane, store.KindInvite, store.InviteEffect{To: room, User: u}, now); err != nil {
					return err
				}
			}
			ntk, err := h.store.NeedToKnow(ctx, c.ID)
			if err != nil {
				return err
			}
			for _, u := range removed {
				if u == c.Reporter || slices.ContainsFunc(ntk, func(n disclosure.NeedToKnow) bool { return n.Who == u }) {
					continue // the case's reporter, or on its need-to-know list: they stay
				}
				if _, err := h.store.Enqueue(ctx, lane, store.KindKick, store.KickEffect{To: room, User: u, Reason: "no longer on the security team"}, now); err != nil {
					return err
				}
			}
			detail := "invited " + joinPeople(added) + "; removed " + joinPeople(removed)
			if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: c.ID.String(), Action: "team.follow", Detail: detail, Allowed: true}); err != nil {
				return err
			}
		}
		if p.TeamRoom != "" {
			note := templates.TeamChanged{Added: peopleStrings(added), Removed: peopleStrings(removed), Cases: len(cases)}
			if err := h.enqueue(ctx, store.RoomLane(p.TeamRoom), store.Target{Room: p.TeamRoom}, note, store.SendEffect{}, false); err != nil {
				return err
			}
		}
		return h.store.SetTeamSeen(ctx, p.Team)
	})
	h.kick()
	return err
}

// diffPeople is who of b is not in a.
func diffPeople(a, b []disclosure.Person) []disclosure.Person {
	var out []disclosure.Person
	for _, p := range b {
		if !slices.Contains(a, p) {
			out = append(out, p)
		}
	}
	return out
}

func peopleStrings(people []disclosure.Person) []string {
	out := make([]string, len(people))
	for i, p := range people {
		out[i] = string(p)
	}
	return out
}

func joinPeople(people []disclosure.Person) string {
	if len(people) == 0 {
		return "nobody"
	}
	return strings.Join(peopleStrings(people), ", ")
}
