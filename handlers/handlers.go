// Package handlers turns what arrives on any channel (a chat message or
// invite, an email, a GitHub advisory) into the domain's decisions and
// applies them: it parses, asks disclosure, and records the decision with
// its side effects in one transaction, and asks the domain again before a
// queued effect that depends on the case runs (invites, announcements). A
// refusal records nothing but its audit line and its answer.
package handlers

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/disclosure"
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
