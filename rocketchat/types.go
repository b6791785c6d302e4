package rocketchat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// RoomType is a room's t: a direct message, a private group or a public channel.
type RoomType string

const (
	DirectMessage RoomType = "d"
	PrivateGroup  RoomType = "p"
	Channel       RoomType = "c"
)

// User is a Rocket.Chat user as users.info and /me describe it.
type User struct {
	ID       string   `json:"_id"`
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Type     string   `json:"type"` // "user", "bot", "app"
	Active   bool     `json:"active"`
	Roles    []string `json:"roles"` // only for /me (and for admins)
}

// UserRef is the short form of a user inside a message or a room.
type UserRef struct {
	ID       string `json:"_id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// Room is a DM, private group or channel.
type Room struct {
	ID        string
	Type      RoomType
	Name      string // "" for a DM
	ReadOnly  bool
	Encrypted bool     // end-to-end encrypted: a bot cannot write or read in it
	Usernames []string // a DM's two members
	Creator   UserRef  // the owner who created a group or channel
	// CustomFields are the room's custom fields (groups.create's
	// customFields), invisible in Rocket.Chat's clients.
	CustomFields map[string]any
	// UsersCount is the number of members.
	UsersCount int
	// LastMessage is when the room's last message was sent (lm; zero if
	// none), UpdatedAt when the room last changed (_updatedAt: a message,
	// a thread reply, a member, a setting).
	LastMessage, UpdatedAt time.Time
}

type wireRoom struct {
	ID        string         `json:"_id"`
	RID       string         `json:"rid"`
	T         RoomType       `json:"t"`
	Name      string         `json:"name"`
	RO        bool           `json:"ro"`
	Encrypted bool           `json:"encrypted"`
	Usernames []string       `json:"usernames"`
	U         UserRef        `json:"u"`
	Custom    map[string]any `json:"customFields"`
	UsersCnt  int            `json:"usersCount"`
	LM        jsTime         `json:"lm"`
	UpdatedAt jsTime         `json:"_updatedAt"`
}

func (w wireRoom) room() Room {
	id := w.ID
	if id == "" {
		id = w.RID
	}
	return Room{ID: id, Type: w.T, Name: w.Name, ReadOnly: w.RO, Encrypted: w.Encrypted, Usernames: w.Usernames, Creator: w.U,
		CustomFields: w.Custom, UsersCount: w.UsersCnt, LastMessage: w.LM.Time, UpdatedAt: w.UpdatedAt.Time}
}

// Subscription is the bot's membership of a room (subscriptions.get).
type Subscription struct {
	ID     string // the subscription's own ID
	RoomID string
	Type   RoomType
	Name   string // the room's name; a DM's other user's username
	Open   bool
	Unread int
	Roles  []string // the bot's roles in the room ("owner", "moderator")
	// TS is when the bot joined the room (the subscription was made);
	// UpdatedAt when it last changed (a new message in the room, …).
	TS, UpdatedAt time.Time
}

type wireSubscription struct {
	ID        string   `json:"_id"`
	RID       string   `json:"rid"`
	T         RoomType `json:"t"`
	Name      string   `json:"name"`
	Open      bool     `json:"open"`
	Unread    int      `json:"unread"`
	Roles     []string `json:"roles"`
	TS        jsTime   `json:"ts"`
	UpdatedAt jsTime   `json:"_updatedAt"`
}

// ChatMessage is a message as the server stores it, from history, the
// stream or a send.
type ChatMessage struct {
	ID       string
	RoomID   string
	Text     string // msg: markdown
	Type     string // t: "" for a user's message; "e2e" for an encrypted one; otherwise a system message ("au", "ru", "uj", …)
	ThreadID string // tmid: the thread's root message
	User     UserRef
	// TS is when it was sent; UpdatedAt changes on an edit, a reaction or
	// a new reply in its thread (the stream sends such changes again).
	TS, UpdatedAt time.Time
	// File is true for a message that carries an upload (file, files or
	// attachments).
	File bool
	// Edited is true for a message edited after it was sent.
	Edited bool
}

// System reports whether the message is one the server wrote (someone
// joined, was added or removed, …) rather than a user's message; a bot
// skips these.
func (m ChatMessage) System() bool { return m.Type != "" && m.Type != "e2e" }

// Encrypted reports whether the message is end-to-end encrypted (and so
// unreadable to a bot).
func (m ChatMessage) Encrypted() bool { return m.Type == "e2e" }

type wireMessage struct {
	ID        string            `json:"_id"`
	RID       string            `json:"rid"`
	Msg       string            `json:"msg"`
	T         string            `json:"t"`
	TMID      string            `json:"tmid"`
	U         UserRef           `json:"u"`
	TS        jsTime            `json:"ts"`
	UpdatedAt jsTime            `json:"_updatedAt"`
	EditedAt  jsTime            `json:"editedAt"`
	File      json.RawMessage   `json:"file"`
	Files     []json.RawMessage `json:"files"`
	Attach    []json.RawMessage `json:"attachments"`
}

func (w wireMessage) message() ChatMessage {
	file := (len(w.File) > 0 && string(w.File) != "null") || len(w.Files) > 0 || len(w.Attach) > 0
	return ChatMessage{ID: w.ID, RoomID: w.RID, Text: w.Msg, Type: w.T, ThreadID: w.TMID, User: w.U,
		TS: w.TS.Time, UpdatedAt: w.UpdatedAt.Time, File: file, Edited: !w.EditedAt.IsZero()}
}

// jsTime reads the REST API's dates ("2026-12-01T10:00:00.000Z") and the
// realtime API's EJSON ones ({"$date": 1764583200000}).
type jsTime struct{ time.Time }

func (t *jsTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return err
		}
		t.Time = v
		return nil
	case '{':
		var e struct {
			Date *int64 `json:"$date"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return err
		}
		if e.Date == nil {
			return fmt.Errorf("date object without $date: %s", b)
		}
		t.Time = time.UnixMilli(*e.Date).UTC()
		return nil
	default:
		var ms int64
		if err := json.Unmarshal(b, &ms); err != nil {
			return err
		}
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	}
}

// restTime writes a time as the REST API's query parameters take it.
func restTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
