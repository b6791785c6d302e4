package rocketchat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// PlatformConfig is what a Platform needs.
type PlatformConfig struct {
	// Client talks to the server as the bot user. Required.
	Client *Client
	// Store is secbot's store: case rooms, DM rooms, the catch-up
	// position. Required.
	Store *store.Store
	// Secret is a per-installation secret (at least 16 bytes): the
	// message IDs of sends and the marks of case groups are derived from
	// it, so that a new installation (a fresh database whose outbox rows
	// start at 1 again) never takes a message or group of an earlier one
	// for its own. It is never sent anywhere. Required.
	Secret []byte
	// Log gets what the platform does; nothing by default.
	Log zerolog.Logger
	// Clock is the real clock by default.
	Clock clockwork.Clock
	// MinBackoff and MaxBackoff bound the realtime reconnect wait (1 s and
	// 1 min by default).
	MinBackoff, MaxBackoff time.Duration
}

// Platform is Rocket.Chat as secbot's core uses it (chat.Platform): its
// people are rocketchat:USERNAME, its rooms rocketchat:ROOMID.
type Platform struct {
	c      *Client
	st     *store.Store
	secret []byte
	log    zerolog.Logger
	clock  clockwork.Clock
	self   User
	minBO  time.Duration
	maxBO  time.Duration

	// live is whether the realtime connection is up and caught up;
	// caughtUp when the last catch-up was done (Unix ms, 0 before).
	live     atomic.Bool
	caughtUp atomic.Int64

	mu    sync.Mutex
	users map[string]string // username → user ID
	rooms map[string]Room   // room ID → what the bot knows of it
	names map[string]string // group or channel name → room ID
}

var _ chat.Platform = (*Platform)(nil)

// NewPlatform checks the client's credentials (/me) and returns the
// platform of the bot user they belong to.
func NewPlatform(ctx context.Context, cfg PlatformConfig) (*Platform, error) {
	if cfg.Client == nil || cfg.Store == nil {
		return nil, errors.New("rocketchat: a platform needs a client and a store")
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("rocketchat: a platform needs a per-installation secret of at least 16 bytes")
	}
	me, err := cfg.Client.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("rocketchat: check the bot's credentials: %w", err)
	}
	if me.Username == "" {
		return nil, errors.New("rocketchat: /me answers no username")
	}
	p := &Platform{
		c: cfg.Client, st: cfg.Store, secret: append([]byte(nil), cfg.Secret...), log: cfg.Log, clock: cfg.Clock,
		self: me, minBO: cfg.MinBackoff, maxBO: cfg.MaxBackoff,
		users: map[string]string{me.Username: me.ID}, rooms: map[string]Room{}, names: map[string]string{},
	}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	return p, nil
}

// Name is "rocketchat".
func (p *Platform) Name() disclosure.Platform { return disclosure.RocketChat }

// Self is the bot user, rocketchat:USERNAME.
func (p *Platform) Self() disclosure.Person { return person(p.self.Username) }

// Vouching: Rocket.Chat has no device signing; a team member's account
// (their user ID) is what their commands count from.
func (p *Platform) Vouching() chat.Vouching { return chat.VouchesForAccount }

// JoinRoom: Rocket.Chat adds the bot to rooms without an invitation for it
// to accept, so there is nothing to join.
func (p *Platform) JoinRoom(context.Context, string) error { return nil }

// LeaveRoom leaves a group or channel (a DM cannot be left).
func (p *Platform) LeaveRoom(ctx context.Context, room, _ string) error {
	id, err := p.roomID(ctx, room)
	if err != nil {
		return err
	}
	r, err := p.roomInfo(ctx, id)
	if err != nil {
		return classify(err)
	}
	if err := p.c.Leave(ctx, id, r.Type); err != nil {
		return classify(err)
	}
	p.mu.Lock()
	delete(p.rooms, id)
	p.mu.Unlock()
	return nil
}

// publicAudience is how many people a public channel counts as: anyone
// on the server may read it, members or not.
const publicAudience = 1 << 20

// JoinedMemberCount is the room's number of members (rooms.info); a
// public channel counts as everyone (publicAudience). The core takes a
// room of two for a private chat, and a public channel the bot and one
// other user are members of is read by anyone on the server: what is
// said there, and what the team later sends the reporter, must never be
// taken for private.
func (p *Platform) JoinedMemberCount(ctx context.Context, room string) (int, error) {
	id, err := p.roomID(ctx, room)
	if err != nil {
		return 0, err
	}
	r, err := p.c.RoomInfo(ctx, id)
	if err != nil {
		return 0, classify(err)
	}
	switch {
	case r.Type == Channel:
		return max(r.UsersCount, publicAudience), nil
	case r.Type == DirectMessage && r.UsersCount == 0:
		return len(r.Usernames), nil
	}
	return r.UsersCount, nil
}

// usernameRE is what Rocket.Chat allows in a username by default
// (UTF8_User_Names_Validation: [0-9a-zA-Z-_.]+).
var usernameRE = regexp.MustCompile(`^[0-9A-Za-z._-]+$`)

// ParsePerson reads a username as the team writes one in a command:
// @alice or alice.
func (p *Platform) ParsePerson(s string) (disclosure.Person, bool) {
	name := strings.TrimPrefix(s, "@")
	if !usernameRE.MatchString(name) {
		return "", false
	}
	return person(name), true
}

// RoomLink is the room in the server's web client: /direct/ID for a DM,
// /group/NAME for a group, /channel/NAME for a channel (by ID when the
// name is not known yet).
func (p *Platform) RoomLink(room string) string {
	id := chat.Native(room)
	p.mu.Lock()
	r, ok := p.rooms[id]
	p.mu.Unlock()
	switch {
	case ok && r.Type == DirectMessage:
		return p.c.base + "/direct/" + id
	case ok && r.Type == PrivateGroup && r.Name != "":
		return p.c.base + "/group/" + r.Name
	case ok && r.Type == Channel && r.Name != "":
		return p.c.base + "/channel/" + r.Name
	}
	return p.c.base + "/group/" + id
}

// RoomName is a group or channel as its users name it, #name
// (chat.RoomNames), once the bot knows the name (ResolveRoom, the
// catch-up, a message from it); "" for a DM or a room it does not know.
func (p *Platform) RoomName(room string) string {
	if disclosure.RoomPlatform(room) != disclosure.RocketChat {
		return ""
	}
	native := chat.Native(room)
	if name, ok := strings.CutPrefix(native, "#"); ok {
		return "#" + name
	}
	p.mu.Lock()
	r, ok := p.rooms[native]
	p.mu.Unlock()
	if !ok || r.Type == DirectMessage || r.Name == "" {
		return ""
	}
	return "#" + r.Name
}

var _ chat.RoomNames = (*Platform)(nil)
var _ chat.Identities = (*Platform)(nil)

// ResolveRoom turns a room as the config names it (rocketchat:NAME, a
// group's or channel's name, or rocketchat:ROOMID) into the room as
// messages name it (rocketchat:ROOMID). The wiring resolves [team] room
// and [announce] rooms with it at start, so that the team room compares
// equal to the room its messages come from.
func (p *Platform) ResolveRoom(ctx context.Context, room string) (string, error) {
	native := strings.TrimPrefix(chat.Native(room), "#")
	if r, err := p.c.RoomInfo(ctx, native); err == nil {
		p.remember(r)
		return qualifiedRoom(r.ID), nil
	}
	r, err := p.c.RoomByName(ctx, native)
	if err != nil {
		return "", fmt.Errorf("rocketchat: no room %q the bot may see: %w", native, err)
	}
	p.remember(r)
	return qualifiedRoom(r.ID), nil
}

// JoinPublic makes the bot a member of a public channel the config names
// (an [announce] room: a request to report may be made there too, as in
// any public room). The catch-up after a start reads the rooms the bot is
// a member of (subscriptions.get), while the realtime API streams a
// public channel's messages to anyone who may read it: without being a
// member, a request posted there while secbot was down would never be
// answered. A group or a DM is nothing to join (the bot is added to
// those); a member already, nothing changes.
func (p *Platform) JoinPublic(ctx context.Context, room string) error {
	id, err := p.roomID(ctx, room)
	if err != nil {
		return err
	}
	r, err := p.roomInfo(ctx, id)
	if err != nil {
		return classify(err)
	}
	if r.Type != Channel {
		return nil
	}
	if err := p.c.JoinChannel(ctx, id); err != nil {
		return classify(err)
	}
	return nil
}

func (p *Platform) remember(r Room) {
	if r.ID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rooms[r.ID] = r
	if r.Name != "" && r.Type != DirectMessage {
		p.names[r.Name] = r.ID
	}
}

// roomInfo is what the bot knows of a room, asking the server the first time.
func (p *Platform) roomInfo(ctx context.Context, id string) (Room, error) {
	p.mu.Lock()
	r, ok := p.rooms[id]
	p.mu.Unlock()
	if ok && r.Type != "" {
		return r, nil
	}
	r, err := p.c.RoomInfo(ctx, id)
	if err != nil {
		return Room{}, err
	}
	p.remember(r)
	return r, nil
}

// roomID is the server's ID of a room of this platform: a qualified room
// ID, or a #name (resolved by rooms.info).
func (p *Platform) roomID(ctx context.Context, room string) (string, error) {
	if pl := disclosure.RoomPlatform(room); pl != disclosure.RocketChat {
		return "", fmt.Errorf("%w: %q is not a Rocket.Chat room", chat.ErrPermanent, room)
	}
	native := chat.Native(room)
	name, byName := strings.CutPrefix(native, "#")
	if !byName {
		return native, nil
	}
	p.mu.Lock()
	id, ok := p.names[name]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	r, err := p.c.RoomByName(ctx, name)
	if err != nil {
		return "", classify(err)
	}
	p.remember(r)
	return r.ID, nil
}

// ErrNotThePinnedAccount is a username that now belongs to another
// account than the one pinned as that team member's identity (a rename,
// and someone else took the name): nothing is sent to it and it is added
// to no room. It wraps chat.ErrPermanent.
var ErrNotThePinnedAccount = errors.New("rocketchat: the username belongs to another account than the one pinned for it")

// userID is the user ID of a Rocket.Chat person (users.info), refused
// (ErrNotThePinnedAccount) when the person's pinned identity is another
// account: a username can be renamed and taken by someone else, and what
// secbot gives a team member (a case room, an escalation) must not reach
// whoever holds the name now.
func (p *Platform) userID(ctx context.Context, who disclosure.Person) (string, error) {
	if who.Platform() != disclosure.RocketChat {
		return "", fmt.Errorf("%w: %q is not a Rocket.Chat person", chat.ErrPermanent, who)
	}
	name := who.Native()
	p.mu.Lock()
	id, ok := p.users[name]
	p.mu.Unlock()
	if !ok {
		u, err := p.c.UserInfo(ctx, name)
		if err != nil {
			return "", classify(err)
		}
		id = u.ID
		p.mu.Lock()
		p.users[name] = id
		p.mu.Unlock()
	}
	pinned, err := p.st.IdentityOf(ctx, who)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if err == nil && pinned.MasterKey != "" && pinned.MasterKey != id {
		return "", fmt.Errorf("%w: %w (%s is %s, pinned %s)", chat.ErrPermanent, ErrNotThePinnedAccount, who, id, pinned.MasterKey)
	}
	return id, nil
}

// Identity is the account who's username belongs to now (users.info,
// never the cache): the core pins a team member's commands to it, and a
// different one is an identity change.
func (p *Platform) Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error) {
	if who.Platform() != disclosure.RocketChat {
		return disclosure.Identity{}, fmt.Errorf("%w: %q is not a Rocket.Chat person", chat.ErrPermanent, who)
	}
	u, err := p.c.UserInfo(ctx, who.Native())
	if err != nil {
		return disclosure.Identity{}, classify(err)
	}
	return disclosure.Identity{Current: u.ID, Account: true}, nil
}

// TrustChanged forgets the account cached for member's username: the
// pinned account changed, and what secbot sends the member goes to the
// account the name belongs to now (checked against the new pin).
func (p *Platform) TrustChanged(_ context.Context, member disclosure.Person) {
	p.mu.Lock()
	delete(p.users, member.Native())
	p.mu.Unlock()
}

// person is a username as the core names it.
func person(username string) disclosure.Person {
	return disclosure.PersonOn(disclosure.RocketChat, username)
}

// qualifiedRoom is a room ID as the core names it.
func qualifiedRoom(id string) string { return disclosure.On(disclosure.RocketChat, id) }

// derive is a tag of what under the installation's secret: hex, n bytes.
func (p *Platform) derive(what string, n int) string { return store.Tag(p.secret, what, n) }

// classify marks answers that a retry will not change as permanent
// (chat.ErrPermanent) and passes a 429's wait on to the outbox.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		if apiErr.Status == http.StatusTooManyRequests && apiErr.RetryAfter > 0 {
			return &outbox.RetryAfterError{Err: err, After: apiErr.RetryAfter}
		}
		if !apiErr.Retryable() {
			return fmt.Errorf("%w: %w", chat.ErrPermanent, err)
		}
	}
	if errors.Is(err, ErrIDTaken) {
		return fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	return err
}
