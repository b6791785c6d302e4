// Package handlers turns what arrives on any channel (a chat message or
// invite, an email, a GitHub advisory) into the domain's decisions and
// applies them: it parses, asks disclosure, and records the decision with
// its side effects in one transaction, and asks the domain again before a
// queued effect that depends on the case runs (invites, announcements). A
// refusal records nothing but its audit line and its answer.
package handlers

import (
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Handlers decides and applies what incoming messages and invites do.
type Handlers struct {
	policy *disclosure.InForce
	store  *store.Store
	// platforms are the chat platforms, each doing what is safe to
	// repeat directly (answering invites); the rest goes by the outbox.
	platforms chat.Platforms
	templates *templates.Set
	clock     clockwork.Clock
	// kick tells the outbox runner that effects were recorded.
	kick func()

	teamCmds     map[string]*command
	reporterCmds map[string]*command
	chatter      limiter
	// mailGate delays a flood of email from one sender (never drops it).
	mailGate mailGate
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
func New(policy *disclosure.InForce, st *store.Store, platforms chat.Platforms, tmpl *templates.Set, clock clockwork.Clock, kick func()) *Handlers {
	if kick == nil {
		kick = func() {}
	}
	h := &Handlers{policy: policy, store: st, platforms: platforms, templates: tmpl, clock: clock, kick: kick}
	h.teamCmds = h.teamCommands()
	h.reporterCmds = h.reporterCommands()
	return h
}

// Policy returns the policy in force.
func (h *Handlers) Policy() *disclosure.Policy { return h.policy.Get() }

// request is msg's sender asking (trust: how far their device speaks for them), where they wrote, now, under the policy
// in force.
func (h *Handlers) request(msg chat.Message, trust disclosure.DeviceTrust, where disclosure.Place) disclosure.Request {
	return disclosure.Request{By: msg.Sender, Device: trust, Where: where, Now: h.clock.Now(), Policy: h.Policy()}
}

// IsTeam reports whether user is on the security team.
func (h *Handlers) IsTeam(user disclosure.Person) bool {
	return h.Policy().IsTeam(disclosure.Person(user))
}
