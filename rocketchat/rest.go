package rocketchat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Me checks the credentials: it answers the user they belong to, and a
// permanent *Error (401) if the server does not accept them.
func (c *Client) Me(ctx context.Context) (User, error) {
	var u User
	if err := c.get(ctx, "me", nil, &u); err != nil {
		return User{}, err
	}
	if u.ID != c.userID {
		return User{}, fmt.Errorf("rocketchat: /me answers user %q, not the configured %q", u.ID, c.userID)
	}
	return u, nil
}

// Message is a message to send.
type Message struct {
	// ID is the message's _id, chosen by the caller and stable across
	// retries (derived from an outbox row): it is what makes a retry post
	// nothing new. Required.
	ID       string
	RoomID   string
	Text     string // markdown
	ThreadID string // tmid: post as a reply in this message's thread
}

// Sent is a message the server holds.
type Sent struct {
	Message ChatMessage
	// Duplicate is true when the server already had a message with this
	// ID from this user: an earlier try posted it, this one posted nothing.
	Duplicate bool
}

// ErrIDTaken is a send whose ID belongs to a message someone else posted
// (or one in another room): nothing was posted, and retrying will not help.
var ErrIDTaken = errors.New("rocketchat: the message ID is taken by another message")

// SendMessage posts m with chat.sendMessage under m.ID, at most once.
//
// What the server answers a repeated _id (Rocket.Chat's source, 7.x–8.x):
// executeSendMessage → sendMessage (apps/meteor/app/lib/server/functions/
// sendMessage.ts) looks the _id up first and, if a message has it,
// returns without inserting anything; the chat.sendMessage route
// (apps/meteor/app/api/server/v1/chat.ts) then hands that undefined to
// normalizeMessagesForUser, whose filterStarred reads message.starred and
// throws a TypeError, which ApiClass answers as 400 {success: false,
// error: "Cannot read properties of undefined (reading 'starred')"}. Two
// concurrent sends of one _id both pass the lookup, and the second insert
// fails with MongoDB's duplicate-key error: 400 {success: false, error:
// "E11000 duplicate key error collection: …"} (older servers, without
// the lookup, always answer that). Neither text is a contract, so on any
// 400 SendMessage asks the server (chat.getMessage) whether a message with
// m.ID exists: if it is this user's, in m.RoomID, the send counts as done
// (Duplicate); if it is someone else's, ErrIDTaken; if there is none, the
// 400 is the answer.
func (c *Client) SendMessage(ctx context.Context, m Message) (Sent, error) {
	if m.ID == "" {
		return Sent{}, errors.New("rocketchat: send: a message needs its ID (so that a retry cannot post twice)")
	}
	if m.RoomID == "" {
		return Sent{}, errors.New("rocketchat: send: no room")
	}
	msg := map[string]any{"_id": m.ID, "rid": m.RoomID, "msg": m.Text}
	if m.ThreadID != "" {
		msg["tmid"] = m.ThreadID
	}
	var out struct {
		Message wireMessage `json:"message"`
	}
	err := c.post(ctx, "chat.sendMessage", map[string]any{"message": msg}, &out)
	if err == nil {
		return Sent{Message: out.Message.message()}, nil
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		return Sent{}, err
	}
	existing, found, lookErr := c.message(ctx, m.ID)
	if lookErr != nil {
		// Unknown whether an earlier try posted it: a retry will tell.
		return Sent{}, fmt.Errorf("rocketchat: send %s refused (%v); checking whether it was posted already: %w", m.ID, err, lookErr)
	}
	if !found {
		return Sent{}, err
	}
	if existing.User.ID != c.userID || (existing.RoomID != m.RoomID && m.ThreadID == "") {
		return Sent{}, fmt.Errorf("%w (%s): %w", ErrIDTaken, m.ID, err)
	}
	return Sent{Message: existing, Duplicate: true}, nil
}

// message is chat.getMessage: found is false if the server has no such
// message (or none the user may read).
func (c *Client) message(ctx context.Context, id string) (ChatMessage, bool, error) {
	var out struct {
		Message *wireMessage `json:"message"`
	}
	err := c.get(ctx, "chat.getMessage", url.Values{"msgId": {id}}, &out)
	if IsPermanent(err) {
		return ChatMessage{}, false, nil
	}
	if err != nil {
		return ChatMessage{}, false, err
	}
	if out.Message == nil || out.Message.ID != id {
		return ChatMessage{}, false, nil
	}
	return out.Message.message(), true, nil
}

// CreatePrivateGroup creates a private group (groups.create, not read-only)
// with the bot as its owner and the given members (usernames; the server
// skips unknown ones silently). Room.Encrypted says whether the server made
// it end-to-end encrypted (E2E_Force_Encryption_For_Private_Room), in
// which case a bot cannot use it.
func (c *Client) CreatePrivateGroup(ctx context.Context, name string, members []string) (Room, error) {
	return c.CreateMarkedGroup(ctx, name, members, nil)
}

// CreateMarkedGroup is CreatePrivateGroup with custom fields on the group
// (invisible in Rocket.Chat's clients): a mark by which its creator can
// tell the group for its own later (GroupByName).
func (c *Client) CreateMarkedGroup(ctx context.Context, name string, members []string, customFields map[string]any) (Room, error) {
	if members == nil {
		members = []string{}
	}
	var out struct {
		Group wireRoom `json:"group"`
	}
	body := map[string]any{"name": name, "members": members, "readOnly": false}
	if customFields != nil {
		body["customFields"] = customFields
	}
	if err := c.post(ctx, "groups.create", body, &out); err != nil {
		return Room{}, err
	}
	return out.Group.room(), nil
}

// InviteToGroup adds a user (by ID) to a private group (groups.invite);
// the bot must be the group's owner or moderator. Inviting a member is no
// change and no error.
func (c *Client) InviteToGroup(ctx context.Context, roomID, userID string) error {
	return c.post(ctx, "groups.invite", map[string]any{"roomId": roomID, "userId": userID}, nil)
}

// KickFromGroup removes a user (by ID) from a private group (groups.kick).
func (c *Client) KickFromGroup(ctx context.Context, roomID, userID string) error {
	return c.post(ctx, "groups.kick", map[string]any{"roomId": roomID, "userId": userID}, nil)
}

// pageSize is how many items one page of a list or history asks for.
const pageSize = 100

// GroupMembers lists a private group's members (groups.members), all pages.
func (c *Client) GroupMembers(ctx context.Context, roomID string) ([]User, error) {
	var all []User
	for offset := 0; ; {
		var out struct {
			Members []User `json:"members"`
			Total   int    `json:"total"`
		}
		q := url.Values{"roomId": {roomID}, "offset": {strconv.Itoa(offset)}, "count": {strconv.Itoa(pageSize)}}
		if err := c.get(ctx, "groups.members", q, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Members...)
		offset += len(out.Members)
		if len(out.Members) == 0 || offset >= out.Total {
			return all, nil
		}
	}
}

// CreateDM opens (or finds) the direct message room of the bot and a user
// (im.create).
func (c *Client) CreateDM(ctx context.Context, username string) (Room, error) {
	var out struct {
		Room wireRoom `json:"room"`
	}
	if err := c.post(ctx, "im.create", map[string]any{"username": username}, &out); err != nil {
		return Room{}, err
	}
	r := out.Room.room()
	if r.Type == "" {
		r.Type = DirectMessage
	}
	return r, nil
}

// Subscriptions are the bot's rooms that changed (subscriptions.get).
type Subscriptions struct {
	Update []Subscription
	// Removed are the IDs of subscriptions gone since (the bot left or was
	// removed); only with an updatedSince.
	Removed []string
}

// Subscriptions answers the bot's subscriptions updated after
// updatedSince (every one if it is zero): a room with news since then is
// among them, which is how a catch-up finds the rooms to read.
func (c *Client) Subscriptions(ctx context.Context, updatedSince time.Time) (Subscriptions, error) {
	q := url.Values{}
	if !updatedSince.IsZero() {
		q.Set("updatedSince", restTime(updatedSince))
	}
	var out struct {
		Update []wireSubscription `json:"update"`
		Remove []struct {
			ID string `json:"_id"`
		} `json:"remove"`
	}
	if err := c.get(ctx, "subscriptions.get", q, &out); err != nil {
		return Subscriptions{}, err
	}
	var s Subscriptions
	for _, w := range out.Update {
		s.Update = append(s.Update, Subscription{ID: w.ID, RoomID: w.RID, Type: w.T, Name: w.Name, Open: w.Open,
			Unread: w.Unread, Roles: w.Roles, TS: w.TS.Time, UpdatedAt: w.UpdatedAt.Time})
	}
	for _, r := range out.Remove {
		s.Removed = append(s.Removed, r.ID)
	}
	return s, nil
}

// ChannelsChangedSince lists the public channels that changed at or after
// since (channels.list, which needs view-c-room to list the channels the
// bot is not in; the bot role has it): newest change first (sort by
// _updatedAt, which the server moves on every message, thread reply
// included), reading pages only as far as the first channel older than
// since, so that a catch-up costs one page plus one per hundred channels
// with news, not one per hundred channels on the server. A channel that
// changes while the pages are read moves to the front and may be listed
// twice (once); its new message is the stream's.
func (c *Client) ChannelsChangedSince(ctx context.Context, since time.Time) ([]Room, error) {
	var out []Room
	seen := map[string]bool{}
	for offset := 0; ; {
		var page struct {
			Channels []wireRoom `json:"channels"`
			Total    int        `json:"total"`
		}
		q := url.Values{"sort": {`{"_updatedAt":-1}`}, "offset": {strconv.Itoa(offset)}, "count": {strconv.Itoa(pageSize)}}
		if err := c.get(ctx, "channels.list", q, &page); err != nil {
			return nil, err
		}
		for _, w := range page.Channels {
			r := w.room()
			if r.UpdatedAt.Before(since) && r.LastMessage.Before(since) {
				return out, nil
			}
			if r.Type == "" {
				r.Type = Channel
			}
			if !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
		offset += len(page.Channels)
		if len(page.Channels) == 0 || offset >= page.Total {
			return out, nil
		}
	}
}

// historyRoute is the history call of each kind of room.
var historyRoute = map[RoomType]string{DirectMessage: "im.history", PrivateGroup: "groups.history", Channel: "channels.history"}

// History answers a room's messages sent at or after oldest (all of them
// if it is zero), oldest first, thread replies and system messages
// included, reading every page. It is inclusive so that a caller who
// passes the time of the last message it handled misses nothing sent in
// the same millisecond; it gets that message again and skips it by ID.
func (c *Client) History(ctx context.Context, roomID string, kind RoomType, oldest time.Time) ([]ChatMessage, error) {
	route, ok := historyRoute[kind]
	if !ok {
		return nil, fmt.Errorf("rocketchat: history: unknown room type %q", kind)
	}
	seen := map[string]bool{}
	var newestFirst []ChatMessage
	var latest time.Time
	offset := 0
	for {
		q := url.Values{"roomId": {roomID}, "count": {strconv.Itoa(pageSize)}, "showThreadMessages": {"true"}, "inclusive": {"true"}}
		if !oldest.IsZero() {
			q.Set("oldest", restTime(oldest))
		}
		if !latest.IsZero() {
			q.Set("latest", restTime(latest))
		}
		if offset > 0 {
			q.Set("offset", strconv.Itoa(offset))
		}
		var out struct {
			Messages []wireMessage `json:"messages"`
		}
		if err := c.get(ctx, route, q, &out); err != nil {
			return nil, err
		}
		added := 0
		for _, w := range out.Messages {
			m := w.message()
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			newestFirst = append(newestFirst, m)
			added++
			if latest.IsZero() || m.TS.Before(latest) {
				latest = m.TS
			}
		}
		if len(out.Messages) < pageSize {
			break
		}
		// The next page ends at the oldest message so far, inclusive (others
		// may share its millisecond). A full page of one millisecond adds
		// nothing: then step past it by offset.
		if added == 0 {
			offset += len(out.Messages)
		} else {
			offset = 0
		}
	}
	out := make([]ChatMessage, len(newestFirst))
	for i, m := range newestFirst {
		out[len(newestFirst)-1-i] = m
	}
	// Pages overlap at their edges; order by time, keeping the server's
	// order within one millisecond.
	sortByTS(out)
	return out, nil
}

func sortByTS(ms []ChatMessage) {
	// insertion sort: the input is nearly sorted already
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].TS.Before(ms[j-1].TS); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// UserInfo looks a user up by username (users.info): its ID is what a
// username is pinned to.
func (c *Client) UserInfo(ctx context.Context, username string) (User, error) {
	var out struct {
		User User `json:"user"`
	}
	if err := c.get(ctx, "users.info", url.Values{"username": {username}}, &out); err != nil {
		return User{}, err
	}
	return out.User, nil
}

// RoomInfo describes a room the bot may read (rooms.info), among other
// things whether it is end-to-end encrypted.
func (c *Client) RoomInfo(ctx context.Context, roomID string) (Room, error) {
	var out struct {
		Room wireRoom `json:"room"`
	}
	if err := c.get(ctx, "rooms.info", url.Values{"roomId": {roomID}}, &out); err != nil {
		return Room{}, err
	}
	return out.Room.room(), nil
}

// GroupByName describes a private group the bot is in by its name
// (groups.info); found is false if there is none the bot may see.
func (c *Client) GroupByName(ctx context.Context, name string) (room Room, found bool, err error) {
	var out struct {
		Group wireRoom `json:"group"`
	}
	err = c.get(ctx, "groups.info", url.Values{"roomName": {name}}, &out)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest && apiErr.Type == "error-room-not-found" {
		return Room{}, false, nil
	}
	if err != nil {
		return Room{}, false, err
	}
	return out.Group.room(), true, nil
}

// RoomByName describes a group or channel the bot may read by its name
// (rooms.info).
func (c *Client) RoomByName(ctx context.Context, name string) (Room, error) {
	var out struct {
		Room wireRoom `json:"room"`
	}
	if err := c.get(ctx, "rooms.info", url.Values{"roomName": {name}}, &out); err != nil {
		return Room{}, err
	}
	return out.Room.room(), nil
}

// leaveRoute is the leave call of each kind of room a bot can leave.
var leaveRoute = map[RoomType]string{PrivateGroup: "groups.leave", Channel: "channels.leave"}

// Leave leaves a private group or channel (groups.leave, channels.leave).
// A DM cannot be left, only hidden: leaving one is no call and no error.
func (c *Client) Leave(ctx context.Context, roomID string, kind RoomType) error {
	if kind == DirectMessage {
		return nil
	}
	route, ok := leaveRoute[kind]
	if !ok {
		return fmt.Errorf("rocketchat: leave: unknown room type %q", kind)
	}
	return c.post(ctx, route, map[string]any{"roomId": roomID}, nil)
}

// JoinChannel makes the bot a member of a public channel (channels.join);
// a member already, nothing changes.
func (c *Client) JoinChannel(ctx context.Context, roomID string) error {
	return c.post(ctx, "channels.join", map[string]any{"roomId": roomID}, nil)
}

// React sets the bot's reaction (an emoji shortcode such as
// ":white_check_mark:") on a message (chat.react with shouldReact, so that
// a repeat changes nothing).
func (c *Client) React(ctx context.Context, messageID, emoji string) error {
	return c.post(ctx, "chat.react", map[string]any{"messageId": messageID, "emoji": emoji, "shouldReact": true}, nil)
}
