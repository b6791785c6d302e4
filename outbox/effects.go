package outbox

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/enarx/secbot/disclosure"
)

// Effect kinds and their payloads: the vocabulary shared by the handlers
// that decide effects and the executors that make them. Payloads hold only
// what the bot itself says, never the text of a reporter's message.
//
// A kind names what is done and on which channel (chat, mail, GitHub),
// never the platform that does it: chat kinds are made by whichever chat
// platform the room lives on. The payloads here are those the core
// writes; a payload that only one executor writes and reads lives with it.
const (
	KindSend           = "chat.send"
	KindCreateCaseRoom = "chat.create_case_room"
	KindOpenDM         = "chat.open_dm"
	KindInvite         = "chat.invite"
	KindReact          = "chat.react"
	KindKick           = "chat.kick"

	// KindAnnounce posts a published advisory's announcement.
	KindAnnounce = "case.announce"
	// KindPublished is GitHub's confirmation that a case's advisory is
	// public, for the domain to decide on.
	KindPublished = "case.published"

	KindMailSend = "mail.send"
	KindMailPost = "mail.post"

	KindAdvisoryCreate       = "github.create_advisory"
	KindAdvisoryCollaborator = "github.collaborator"
	KindAdvisoryFork         = "github.fork"
	KindAdvisoryForkReady    = "github.fork_ready"
	KindAdvisoryCVE          = "github.cve"
	KindAdvisoryPublish      = "github.publish"
	KindAdvisoryUpdate       = "github.update"
	// KindAdvisoryState changes the advisory's state (accept or close a
	// private report).
	KindAdvisoryState = "github.state"
	// KindAdvisoryMove drafts the advisory in another repository.
	KindAdvisoryMove = "github.move"
)

// AdvisoryEffect is a GitHub operation on a case's advisory. Answers go
// to ReplyIn (the room the request came from), replying to ReplyTo.
type AdvisoryEffect struct {
	CaseID  string `json:"case_id"`
	Login   string `json:"login,omitempty"`  // collaborator
	Remove  bool   `json:"remove,omitempty"` // collaborator
	ReplyIn string `json:"reply_in,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	// Update fields, each sent only when set.
	Affected string   `json:"affected,omitempty"`
	Patched  string   `json:"patched,omitempty"`
	Severity string   `json:"severity,omitempty"`
	CWEs     []string `json:"cwes,omitempty"`
	Credit   string   `json:"credit,omitempty"`
	// The public text; team text, dropped from the outbox once delivered.
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	// State is the advisory's new state.
	State string `json:"state,omitempty"`
	// Repository is where a move drafts the advisory anew; FromGHSA in
	// From is the advisory it replaces.
	Repository string `json:"repository,omitempty"`
	From       string `json:"from,omitempty"`
	FromGHSA   string `json:"from_ghsa,omitempty"`
	// For is the need-to-know person a collaborator is added for.
	For disclosure.Person `json:"for,omitempty"`
	// Force is the coordinator's override of an embargo (publish).
	Force *disclosure.Force `json:"force,omitempty"`
	// Nonce is the secret a create or move writes into the draft it makes,
	// so that a retry after a crash adopts only that draft: random, never
	// derived from the case ID (which anyone can guess and put in a
	// private report's title).
	Nonce string `json:"nonce,omitempty"`
}

// NewNonce returns a fresh secret for an AdvisoryEffect's Nonce.
func NewNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return hex.EncodeToString(b)
}

// Target names a room, either directly or as a room that may only exist by
// the time the effect runs (the case room, the DM with a user).
type Target struct {
	Room       string            `json:"room,omitempty"`
	CaseRoomOf string            `json:"case_room_of,omitempty"`
	DMWith     disclosure.Person `json:"dm_with,omitempty"`
}

// SendEffect posts a notice rendered from Markdown.
type SendEffect struct {
	To         Target `json:"to"`
	Markdown   string `json:"markdown"`
	ThreadRoot string `json:"thread_root,omitempty"`
	ReplyTo    string `json:"reply_to,omitempty"`
	// Mentions are the users pinged by the message.
	Mentions []disclosure.Person `json:"mentions,omitempty"`
	// IfRefused, if set, is told when the platform refuses the message
	// for good (the bot may not post in that room).
	IfRefused string `json:"if_refused,omitempty"`
}

// KickEffect removes a user from a room.
type KickEffect struct {
	To     Target            `json:"to"`
	User   disclosure.Person `json:"user"`
	Reason string            `json:"reason,omitempty"`
}

// CreateCaseRoomEffect creates a case's private encrypted room.
type CreateCaseRoomEffect struct {
	CaseID string              `json:"case_id"`
	Name   string              `json:"name"`
	Invite []disclosure.Person `json:"invite"`
	// Team are the team members among them, who may invite; the bot stays
	// the room's only admin.
	Team []disclosure.Person `json:"team,omitempty"`
	// Platform is where the room is made (a row queued before rooms had
	// platforms has none: Matrix).
	Platform disclosure.Platform `json:"platform,omitempty"`
}

// OpenDMEffect opens (or finds) the encrypted direct chat with a user.
type OpenDMEffect struct {
	User   disclosure.Person `json:"user"`
	CaseID string            `json:"case_id,omitempty"`
}

// InviteEffect invites a user to a room.
type InviteEffect struct {
	To   Target            `json:"to"`
	User disclosure.Person `json:"user"`
}

// ReactEffect reacts to an event, the answer of quiet commands.
type ReactEffect struct {
	Room  string `json:"room"`
	Event string `json:"event"`
	Key   string `json:"key"`
}
