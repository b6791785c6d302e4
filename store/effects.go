package store

import "maunium.net/go/mautrix/id"

// Effect kinds and their payloads: the vocabulary shared by the handlers
// that decide effects and the executors that make them. Payloads hold only
// what the bot itself says, never the text of a reporter's message.
const (
	KindSend           = "matrix.send"
	KindCreateCaseRoom = "matrix.create_case_room"
	KindOpenDM         = "matrix.open_dm"
	KindInvite         = "matrix.invite"
	KindReact          = "matrix.react"
)

// Target names a room, either directly or as a room that may only exist by
// the time the effect runs (the case room, the DM with a user).
type Target struct {
	Room       id.RoomID `json:"room,omitempty"`
	CaseRoomOf string    `json:"case_room_of,omitempty"`
	DMWith     id.UserID `json:"dm_with,omitempty"`
}

// SendEffect posts a notice rendered from Markdown.
type SendEffect struct {
	To         Target     `json:"to"`
	Markdown   string     `json:"markdown"`
	ThreadRoot id.EventID `json:"thread_root,omitempty"`
	ReplyTo    id.EventID `json:"reply_to,omitempty"`
	// Mentions are the users pinged by the message.
	Mentions []id.UserID `json:"mentions,omitempty"`
}

// CreateCaseRoomEffect creates a case's private encrypted room.
type CreateCaseRoomEffect struct {
	CaseID string      `json:"case_id"`
	Name   string      `json:"name"`
	Invite []id.UserID `json:"invite"`
}

// OpenDMEffect opens (or finds) the encrypted direct chat with a user.
type OpenDMEffect struct {
	User   id.UserID `json:"user"`
	CaseID string    `json:"case_id,omitempty"`
}

// InviteEffect invites a user to a room.
type InviteEffect struct {
	To   Target    `json:"to"`
	User id.UserID `json:"user"`
}

// ReactEffect reacts to an event, the answer of quiet commands.
type ReactEffect struct {
	Room  id.RoomID  `json:"room"`
	Event id.EventID `json:"event"`
	Key   string     `json:"key"`
}

// CreateRoomResult is what creating a room returns.
type CreateRoomResult struct {
	Room id.RoomID `json:"room"`
}

// SendResult is what sending a message returns.
type SendResult struct {
	Event id.EventID `json:"event"`
}
