package matrixtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// User is a person on the test homeserver: a separate mautrix client with
// its own crypto store, syncing in the background and keeping every event
// it sees (decrypted where it can).
type User struct {
	Client *mautrix.Client
	crypto *cryptohelper.CryptoHelper
	// machine serializes what the test does to the user's crypto machine
	// (a new identity, a signature) with the sync's processing: mautrix
	// keeps the machine's own cross-signing keys unlocked.
	machine *sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	events  []*event.Event
	invites map[id.RoomID]*event.Event
	seen    map[string]bool
	changed chan struct{}
	// own is a room of the user's alone, for CatchUp's markers.
	own id.RoomID
	// toDevice holds the to-device markers that came back (CatchUp).
	toDevice map[string]bool
	// pending holds the encrypted events whose key had not come when they
	// did (mautrix decrypts them in the background when it comes);
	// resolved the events decrypted or given up on.
	pending  map[id.EventID]*event.Event
	resolved map[id.EventID]bool
	// AutoJoin makes the user accept every invite.
	AutoJoin bool
}

// NewUser registers localpart on srv, logs in with encryption (its crypto
// store in dir) and starts syncing.
func NewUser(ctx context.Context, srv *Server, localpart, dir string) (*User, error) {
	password := "password-" + localpart
	if err := srv.Register(ctx, localpart, password); err != nil {
		return nil, err
	}
	return Login(ctx, srv, localpart, password, dir)
}

// Login logs an existing account in with encryption and starts syncing;
// each of before is called on the client first (to add sync handlers or
// hooks without racing the sync).
func Login(ctx context.Context, srv *Server, localpart, password, dir string, before ...func(*mautrix.Client)) (*User, error) {
	cli, err := mautrix.NewClient(srv.URL, "", "")
	if err != nil {
		return nil, err
	}
	cli.Log = zerolog.Nop()
	helper, err := cryptohelper.NewCryptoHelper(cli, []byte("test-pickle-key-"+localpart), filepath.Join(dir, localpart+"-crypto.db"))
	if err != nil {
		return nil, err
	}
	helper.LoginAs = &mautrix.ReqLogin{
		Type:       mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:   password,
	}
	if err := helper.Init(ctx); err != nil {
		return nil, fmt.Errorf("log in %s: %w", localpart, err)
	}
	cli.Crypto = helper
	u := &User{Client: cli, crypto: helper, machine: &sync.Mutex{}, invites: map[id.RoomID]*event.Event{}, seen: map[string]bool{}, changed: make(chan struct{}),
		toDevice: map[string]bool{}, pending: map[id.EventID]*event.Event{}, resolved: map[id.EventID]bool{}}
	syncer := cli.Syncer.(*mautrix.DefaultSyncer)
	cli.Syncer = quickRetry{DefaultSyncer: syncer, machine: u.machine}
	record := func(_ context.Context, evt *event.Event) { u.record(evt) }
	for _, t := range []event.Type{event.EventMessage, event.EventReaction, event.StateMember, event.EventRedaction} {
		syncer.OnEventType(t, record)
	}
	syncer.OnEventType(event.StateMember, func(ctx context.Context, evt *event.Event) {
		if evt.GetStateKey() == cli.UserID.String() && evt.Content.AsMember().Membership == event.MembershipInvite && u.autoJoin() {
			_, _ = cli.JoinRoomByID(ctx, evt.RoomID)
		}
	})
	helper.DecryptErrorCallback = func(evt *event.Event, err error) {
		u.record(evt)
		u.resolve(evt.ID)
	}
	// Decrypted at once or once its late key came: handled, then resolved.
	helper.CustomPostDecrypt = func(ctx context.Context, evt *event.Event) {
		syncer.Dispatch(ctx, evt)
		u.resolve(evt.ID)
	}
	// After the crypto helper's own handler: an event it could neither
	// decrypt nor give up on waits for its key.
	syncer.OnEventType(event.EventEncrypted, func(_ context.Context, evt *event.Event) { u.notePending(evt) })
	syncer.OnEventType(toDeviceMarker, func(_ context.Context, evt *event.Event) {
		if token, ok := evt.Content.Raw["marker"].(string); ok && evt.Sender == cli.UserID {
			u.mu.Lock()
			u.toDevice[token] = true
			u.signal()
			u.mu.Unlock()
		}
	})
	for _, f := range before {
		f(cli)
	}
	syncCtx, cancel := context.WithCancel(context.Background())
	u.cancel, u.done = cancel, make(chan struct{})
	go func() {
		defer close(u.done)
		for syncCtx.Err() == nil {
			if err := cli.SyncWithContext(syncCtx); err != nil && syncCtx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return u, nil
}

func (u *User) autoJoin() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.AutoJoin
}

// SetAutoJoin makes the user accept every invite from now on.
func (u *User) SetAutoJoin(on bool) {
	u.mu.Lock()
	u.AutoJoin = on
	u.mu.Unlock()
}

func (u *User) record(evt *event.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	// A sync retried after an error can hand over an event again.
	key := evt.ID.String() + "|" + evt.Type.Type
	if u.seen[key] {
		return
	}
	u.seen[key] = true
	u.events = append(u.events, evt)
	if evt.Type == event.StateMember && evt.GetStateKey() == u.Client.UserID.String() && evt.Content.AsMember().Membership == event.MembershipInvite {
		u.invites[evt.RoomID] = evt
	}
	u.signal()
}

// signal wakes whoever waits on what the user saw (u.mu held).
func (u *User) signal() {
	close(u.changed)
	u.changed = make(chan struct{})
}

func (u *User) notePending(evt *event.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.resolved[evt.ID] {
		u.pending[evt.ID] = evt
	}
}

func (u *User) resolve(evtID id.EventID) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.resolved[evtID] = true
	delete(u.pending, evtID)
	u.signal()
}

// toDeviceMarker is the type of CatchUp's to-device markers.
var toDeviceMarker = event.Type{Type: "org.secbot.test.sync_marker", Class: event.ToDeviceEventType}

// ID is the user's Matrix ID.
func (u *User) ID() id.UserID { return u.Client.UserID }

// Events returns what the user has seen so far.
func (u *User) Events() []*event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*event.Event(nil), u.events...)
}

// Wait returns the first event seen (before or after the call) that match
// accepts, or an error after timeout.
func (u *User) Wait(ctx context.Context, timeout time.Duration, what string, match func(*event.Event) bool) (*event.Event, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		u.mu.Lock()
		events, changed := u.events[seen:], u.changed
		seen = len(u.events)
		u.mu.Unlock()
		for _, evt := range events {
			if match(evt) {
				return evt, nil
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("%s did not see %s within %s", u.ID(), what, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WaitMessage waits for a message in room (any room if empty) from sender
// whose body contains substr.
func (u *User) WaitMessage(ctx context.Context, timeout time.Duration, room id.RoomID, sender id.UserID, substr string) (*event.Event, error) {
	return u.Wait(ctx, timeout, fmt.Sprintf("a message containing %q", substr), func(evt *event.Event) bool {
		if evt.Type != event.EventMessage || (room != "" && evt.RoomID != room) || (sender != "" && evt.Sender != sender) {
			return false
		}
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return ok && containsFold(msg.Body, substr)
	})
}

// WaitInvite waits for an invite from inviter and returns it.
func (u *User) WaitInvite(ctx context.Context, timeout time.Duration, inviter id.UserID, match func(*event.Event) bool) (*event.Event, error) {
	return u.Wait(ctx, timeout, "an invite from "+inviter.String(), func(evt *event.Event) bool {
		return evt.Type == event.StateMember && evt.GetStateKey() == u.ID().String() && evt.Sender == inviter &&
			evt.Content.AsMember().Membership == event.MembershipInvite && (match == nil || match(evt))
	})
}

// Invites returns the rooms the user has been invited to so far.
func (u *User) Invites() []id.RoomID {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]id.RoomID, 0, len(u.invites))
	for r := range u.invites {
		out = append(out, r)
	}
	return out
}

// Join joins a room.
func (u *User) Join(ctx context.Context, room id.RoomID) error {
	_, err := u.Client.JoinRoomByID(ctx, room)
	return err
}

// DM creates an encrypted direct chat with other, the way Element does.
func (u *User) DM(ctx context.Context, other id.UserID) (id.RoomID, error) {
	resp, err := u.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset:   "trusted_private_chat",
		IsDirect: true,
		Invite:   []id.UserID{other},
		InitialState: []*event.Event{
			{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}},
		},
	})
	if err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

// WaitJoined waits until user is joined to room (as the user sees it).
func (u *User) WaitJoined(ctx context.Context, timeout time.Duration, room id.RoomID, user id.UserID) error {
	_, err := u.Wait(ctx, timeout, user.String()+" joining "+room.String(), func(evt *event.Event) bool {
		return evt.Type == event.StateMember && evt.RoomID == room && evt.GetStateKey() == user.String() && evt.Content.AsMember().Membership == event.MembershipJoin
	})
	return err
}

// Say sends a text message.
func (u *User) Say(ctx context.Context, room id.RoomID, text string) (id.EventID, error) {
	resp, err := u.Client.SendText(ctx, room, text)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// RawEvent fetches an event as the homeserver stores it (the type and
// content that went over the wire). Dendrite may answer M_NOT_FOUND for a
// moment after the send returned, until the event is visible to its reads:
// that answer is asked again until timeout.
func (u *User) RawEvent(ctx context.Context, timeout time.Duration, room id.RoomID, evt id.EventID) (*event.Event, error) {
	deadline := time.Now().Add(timeout)
	for {
		raw, err := u.Client.GetEvent(ctx, room, evt)
		if err == nil || !errors.Is(err, mautrix.MNotFound) || time.Now().After(deadline) {
			return raw, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CatchUp waits until the user's sync has delivered everything the
// homeserver had when the call began, and the user has read it: the user
// posts a marker in a room of its own (made on first use) and waits to see
// it come back. The homeserver orders its timeline stream, so a sync that
// brings the marker has brought every event stored before it, in any of
// the user's rooms. The keys to read them by come on another stream, which
// Dendrite fills on its own (a busy one lets a message come a second or
// more before its key): the user sends itself a to-device marker too,
// which comes after every to-device message sent before it, and waits for
// the events whose key came with them to be decrypted.
func (u *User) CatchUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := u.catchUpTimeline(ctx, timeout); err != nil {
		return err
	}
	token := fmt.Sprintf("%s %d", u.Client.DeviceID, time.Now().UnixNano())
	if _, err := u.Client.SendToDevice(ctx, toDeviceMarker, &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		u.ID(): {u.Client.DeviceID: {Raw: map[string]any{"marker": token}}},
	}}); err != nil {
		return fmt.Errorf("%s: send a to-device sync marker: %w", u.ID(), err)
	}
	for {
		u.mu.Lock()
		came, changed := u.toDevice[token], u.changed
		var waiting []*event.Event
		for _, evt := range u.pending {
			waiting = append(waiting, evt)
		}
		u.mu.Unlock()
		if came {
			decrypting := false
			for _, evt := range waiting {
				content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
				if !ok {
					continue
				}
				if sess, err := u.crypto.Machine().CryptoStore.GetGroupSession(ctx, evt.RoomID, content.SessionID); err == nil && sess != nil {
					decrypting = true // its key is here: it is being decrypted
					break
				}
			}
			if !decrypting {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if came {
				return fmt.Errorf("%s: events whose keys came were not decrypted within %s", u.ID(), timeout)
			}
			return fmt.Errorf("%s did not see its own to-device sync marker within %s", u.ID(), timeout)
		}
	}
}

func (u *User) catchUpTimeline(ctx context.Context, timeout time.Duration) error {
	u.mu.Lock()
	own := u.own
	u.mu.Unlock()
	if own == "" {
		resp, err := u.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Sync markers"})
		if err != nil {
			return fmt.Errorf("%s: create a room for sync markers: %w", u.ID(), err)
		}
		own = resp.RoomID
		u.mu.Lock()
		u.own = own
		u.mu.Unlock()
	}
	marker, err := u.Say(ctx, own, "sync marker")
	if err != nil {
		return fmt.Errorf("%s: send a sync marker: %w", u.ID(), err)
	}
	_, err = u.Wait(ctx, timeout, "its own sync marker "+marker.String(), func(evt *event.Event) bool { return evt.ID == marker })
	return err
}

// Close stops syncing.
func (u *User) Close() {
	u.cancel()
	u.Client.StopSync()
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
	}
	_ = u.crypto.Close()
}

var errNotMessage = errors.New("not a message")

// Body returns a message event's body.
func Body(evt *event.Event) (string, error) {
	msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok {
		return "", errNotMessage
	}
	return msg.Body, nil
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}

// NewPlain registers localpart and returns a client logged in without
// encryption and without syncing: a cheap stand-in for a flood's sender
// or one of a burst of reporters.
func NewPlain(ctx context.Context, srv *Server, localpart string) (*mautrix.Client, error) {
	password := "password-" + localpart
	if err := srv.Register(ctx, localpart, password); err != nil {
		return nil, err
	}
	cli, err := mautrix.NewClient(srv.URL, "", "")
	if err != nil {
		return nil, err
	}
	cli.Log = zerolog.Nop()
	_, err = cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: localpart},
		Password:         password,
		StoreCredentials: true,
	})
	if err != nil {
		return nil, fmt.Errorf("log in %s: %w", localpart, err)
	}
	return cli, nil
}

// PlainDM opens an unencrypted direct chat from cli to other and waits
// until other has joined it.
func PlainDM(ctx context.Context, cli *mautrix.Client, other id.UserID, timeout time.Duration) (id.RoomID, error) {
	resp, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{other}})
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	for {
		members, err := cli.JoinedMembers(ctx, resp.RoomID)
		if err == nil {
			if _, ok := members.Joined[other]; ok {
				return resp.RoomID, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not join %s within %s", other, resp.RoomID, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PlainMessages returns the bodies of the messages sender sent to room,
// oldest first; an encrypted one (unreadable here) is an error.
func PlainMessages(ctx context.Context, cli *mautrix.Client, room id.RoomID, sender id.UserID) ([]string, error) {
	var out []string
	from := ""
	for {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 500)
		if err != nil {
			return nil, err
		}
		for _, evt := range resp.Chunk {
			if evt.Sender != sender {
				continue
			}
			switch evt.Type {
			case event.EventEncrypted:
				return nil, fmt.Errorf("%s sent an encrypted message to %s", sender, room)
			case event.EventMessage:
				_ = evt.Content.ParseRaw(evt.Type)
				out = append(out, evt.Content.AsMessage().Body)
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	slices.Reverse(out)
	return out, nil
}

// PlainInvites counts the pending invites to rooms other than direct
// chats that inviter sent cli's user (one initial sync, no encryption).
func PlainInvites(ctx context.Context, cli *mautrix.Client, inviter id.UserID) (int, error) {
	resp, err := cli.SyncRequest(ctx, 0, "", "", true, event.PresenceOffline)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range resp.Rooms.Invite {
		for _, evt := range r.State.Events {
			_ = evt.Content.ParseRaw(evt.Type)
			if evt.Type == event.StateMember && evt.GetStateKey() == cli.UserID.String() && evt.Sender == inviter && !evt.Content.AsMember().IsDirect {
				n++
			}
		}
	}
	return n, nil
}

// quickRetry is mautrix's syncer, retrying a failed sync after a second
// instead of its fixed ten: a test user is back within a second of the
// homeserver (the outage test's reporter waits for the bot's answer).
type quickRetry struct {
	*mautrix.DefaultSyncer
	machine *sync.Mutex
}

func (quickRetry) OnFailedSync(*mautrix.RespSync, error) (time.Duration, error) {
	return time.Second, nil
}

// ProcessResponse processes a sync while the test leaves the crypto
// machine alone (User.machine).
func (q quickRetry) ProcessResponse(ctx context.Context, resp *mautrix.RespSync, since string) error {
	q.machine.Lock()
	defer q.machine.Unlock()
	return q.DefaultSyncer.ProcessResponse(ctx, resp, since)
}
