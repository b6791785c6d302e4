package chat

import (
	"errors"
	"time"

	"github.com/enarx/secbot/disclosure"
)

// The inbound vocabulary: what every channel (a chat platform, the
// security mailbox, GitHub) hands the core, translated at its edge from
// its own events. Nothing here is any platform's type.

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

// MailKind says what kind of mail a message of the security mailbox is.
type MailKind int

const (
	// MailPerson is a person's mail (with an Automatic reason: mail that
	// is only audited, as MailIgnored).
	MailPerson MailKind = iota
	// MailMachine is mail a program sent (Auto-Submitted: auto-generated,
	// a list, bulk mail: coordination systems, bug-bounty platforms,
	// ticketing systems): it gets no automatic answer, but it is a report
	// or a reply like a person's.
	MailMachine
	// MailAutoReply is an automatic answer (out of office): posted in the
	// case whose thread it answers, else only audited.
	MailAutoReply
	// MailBounce is a delivery report: told to the case room of the mail
	// of ours it returns, else only audited.
	MailBounce
	// MailIgnored is secbot's own mail, or mail with no readable sender.
	MailIgnored
)

// Effective is what kind of mail the message counts as: a person's mail
// with an Automatic reason is only audited.
func (m *MailRef) Effective() MailKind {
	if m.Kind == MailPerson && m.Automatic != "" {
		return MailIgnored
	}
	return m.Kind
}

// Machine is why the message is machine-sent, "" for a person's.
func (m *MailRef) Machine() string {
	if k := m.Effective(); k == MailMachine || k == MailAutoReply {
		return m.Automatic
	}
	return ""
}

// ErrLater means a message was not handled now and nothing of it was
// committed: it is to be handed over again later (see LaterError).
var ErrLater = errors.New("not handled yet")

// LaterError asks the channel to hand a message over again at Until: its
// sender's limit delays it, never drops it.
type LaterError struct{ Until time.Time }

func (e *LaterError) Error() string {
	return "the sender's limit: handled after " + e.Until.UTC().Format(time.RFC3339)
}

// Is makes a LaterError match ErrLater.
func (e *LaterError) Is(target error) bool { return target == ErrLater }

// GitHubAdvisory is an advisory on a watched repository as the GitHub
// channel translates it: where it is and its state, never its summary or
// description (a private report's are the reporter's words).
type GitHubAdvisory struct {
	GHSAID, URL string
	// Repository is owner/name.
	Repository string
	// State is triage (a private report not yet accepted), draft,
	// published or closed.
	State string
	// Reporter is the login of the GitHub user who submitted a private
	// report, its author ("" for an advisory the maintainers drafted).
	Reporter string
	// Credits are the report's credits, which its submitter wrote: shown
	// to the team as credits, never taken for the reporter.
	Credits   []GitHubCredit
	CreatedAt time.Time
}

// GitHubCredit is a credit on an advisory: a login, its type (finder,
// reporter, …) and its state (accepted, declined, pending).
type GitHubCredit struct{ Login, Type, State string }

// Device is one of a person's chat devices.
type Device struct{ ID, Name string }
