package rocketchat

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// The catch-up position is when the newest message secbot has handled
// (every older one handled too) was sent. It is kept through the store's
// per-room "last command sent" record (room_commands: a time that only
// ever moves forward) under positionKey, which is no room's name (rooms
// are rocketchat:ID): no new table for one value.
const positionKey = "rocketchat.catch-up"

// catchUpSlack is how far before the position a catch-up reads again: a
// message of another room may reach the stream a little after a newer one
// (a server's instances insert in parallel). What it reads twice is
// handed over once: by the IDs seen in this process, and after a restart
// by the core's handled IDs.
const catchUpSlack = 5 * time.Second

// maxFailures is how often the core may fail one message before it is
// parked as a dead letter (and counts as handled), as on Matrix.
const maxFailures = 5

// Run hands the core every message of the bot's rooms and of the public
// channels it may read, and a new subscription as an invitation, until
// ctx ends: over the realtime API, and after every (re)connect over REST
// what was said since the position (the rooms whose subscriptions
// changed since and the public channels that changed since, their
// history since),
// each message once and in the order it was sent. isTeam says whose
// messages carry their account as their identity.
func (p *Platform) Run(ctx context.Context, in chat.Dispatch, isTeam func(disclosure.Person) bool) error {
	r := &inbound{p: p, in: in, isTeam: isTeam, ctx: ctx,
		seen: map[string]time.Time{}, pending: map[string]time.Time{}, failures: map[string]int{}}
	pos, err := p.st.LastCommandSent(ctx, positionKey)
	if err != nil {
		return err
	}
	if pos.IsZero() {
		// The first start: what was said before it is not secbot's to
		// answer, and the rooms the bot is in already are no news.
		r.first = true
		// (At the store's and the server's precision, milliseconds.)
		pos = p.clock.Now().Truncate(time.Millisecond).Add(-time.Millisecond)
		if err := p.st.NoteCommandSent(ctx, positionKey, pos); err != nil {
			return err
		}
	}
	r.pos, r.newest = pos, pos
	connected := func(ctx context.Context) error {
		if err := r.catchUp(ctx); err != nil {
			return err
		}
		p.caughtUp.Store(p.clock.Now().UnixMilli())
		p.live.Store(true)
		return nil
	}
	dropped := func(error) { p.live.Store(false) }
	defer p.live.Store(false)
	rt := p.c.Realtime(RealtimeOptions{OnMessage: r.streamed, OnConnect: connected, OnDrop: dropped, MinBackoff: p.minBO, MaxBackoff: p.maxBO})
	return rt.Run(ctx)
}

// Healthy reports whether the platform is in touch with the server: its
// realtime connection is up and the catch-up after it was made.
func (p *Platform) Healthy() bool { return p.live.Load() }

// LastCatchUp is when the last catch-up after a (re)connect was done
// (zero before the first).
func (p *Platform) LastCatchUp() time.Time {
	if ms := p.caughtUp.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// inbound is one Run's state. Messages are handled one at a time (mu).
type inbound struct {
	p      *Platform
	in     chat.Dispatch
	isTeam func(disclosure.Person) bool
	ctx    context.Context

	mu     sync.Mutex
	first  bool
	pos    time.Time // every message sent before it (less the slack) is handled
	newest time.Time // the newest message handled
	known  map[string]bool
	// seen are the messages handled (or skipped) in this process, by ID,
	// with when they were sent; pending those waiting for another try.
	seen     map[string]time.Time
	pending  map[string]time.Time
	failures map[string]int
}

// roomMessage is a message with its room's type.
type roomMessage struct {
	ChatMessage
	roomType RoomType
}

// catchUp reads what was said since the position: it runs after every
// connect, while the stream's messages wait.
func (r *inbound) catchUp(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := r.pos.Add(-catchUpSlack)
	// What it learns of the rooms counts only once the catch-up got as
	// far as handing over the new ones: a catch-up cut short by an error
	// is made again in full.
	var joined []Subscription
	known, fresh := r.known, map[string]bool(nil)
	if known == nil {
		all, err := r.p.c.Subscriptions(ctx, time.Time{})
		if err != nil {
			return err
		}
		fresh = map[string]bool{}
		known = fresh
		for _, s := range all.Update {
			fresh[s.RoomID] = true
			r.p.remember(Room{ID: s.RoomID, Type: s.Type, Name: groupName(s)})
			// Added while secbot was away (on the first start: since it
			// started; the rooms it was in before are no news).
			if (!r.first && !s.TS.Before(from)) || (r.first && !s.TS.Before(r.pos)) {
				joined = append(joined, s)
			}
		}
	}
	changed, err := r.p.c.Subscriptions(ctx, from)
	if err != nil {
		return err
	}
	var msgs []roomMessage
	var added []string
	for _, s := range changed.Update {
		if !known[s.RoomID] {
			added = append(added, s.RoomID)
			r.p.remember(Room{ID: s.RoomID, Type: s.Type, Name: groupName(s)})
			joined = append(joined, s)
		}
		hist, err := r.p.c.History(ctx, s.RoomID, s.Type, from)
		if IsPermanent(err) {
			// A room whose history the bot may not read (a channel
			// that hides it from non-moderators, …) must not stop the
			// catch-up of the others.
			r.p.log.Warn().Err(err).Str("room_id", s.RoomID).Msg("Could not read a room's history to catch up; skipped")
			continue
		}
		if err != nil {
			return err
		}
		for _, m := range hist {
			msgs = append(msgs, roomMessage{m, s.Type})
		}
	}
	// The public channels the bot is not in: while it is up the stream
	// hands it their messages (roomParticipant false), so what was said
	// in them while it was away is news too. channels.list tells which
	// changed since (one page, more only for many channels with news);
	// only those channels' history is read.
	member := map[string]bool{}
	for _, s := range changed.Update {
		member[s.RoomID] = true
	}
	channels, err := r.p.c.ChannelsChangedSince(ctx, from)
	if IsPermanent(err) {
		// Without view-c-room the bot sees no channel it is not in.
		r.p.log.Warn().Err(err).Msg("Could not list the public channels to catch up; only the bot's own rooms were read")
		channels, err = nil, nil
	}
	if err != nil {
		return err
	}
	for _, ch := range channels {
		if known[ch.ID] || member[ch.ID] || ch.Type != Channel {
			continue
		}
		hist, err := r.p.c.History(ctx, ch.ID, Channel, from)
		if IsPermanent(err) {
			r.p.log.Warn().Err(err).Str("room_id", ch.ID).Msg("Could not read a public channel's history to catch up; skipped")
			continue
		}
		if err != nil {
			return err
		}
		if len(hist) > 0 && ch.Name != "" {
			r.p.remember(Room{ID: ch.ID, Type: Channel, Name: ch.Name})
		}
		for _, m := range hist {
			msgs = append(msgs, roomMessage{m, Channel})
		}
	}
	for _, s := range joined {
		if err := r.invited(ctx, s); err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.p.log.Warn().Err(err).Str("room_id", s.RoomID).Msg("Could not hand over being added to a room")
		}
	}
	if fresh != nil {
		r.known = fresh
	}
	for _, id := range added {
		r.known[id] = true
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].TS.Before(msgs[j].TS) })
	for _, m := range msgs {
		r.handle(ctx, m)
	}
	return nil
}

// groupName is a group's or channel's name ("" for a DM, whose
// subscription is named after the other user).
func groupName(s Subscription) string {
	if s.Type == DirectMessage {
		return ""
	}
	return s.Name
}

// streamed is a message the realtime API delivered.
func (r *inbound) streamed(ctx context.Context, m IncomingMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.RoomParticipant && r.known != nil && !r.known[m.RoomID] {
		// A room the bot was just added to (a new DM, a group).
		if err := r.newRooms(ctx); err != nil {
			r.p.log.Warn().Err(err).Msg("Could not read the bot's new rooms; the room's next message tries again")
		}
	}
	kind := m.RoomType
	if kind == "" {
		r.p.mu.Lock()
		kind = r.p.rooms[m.RoomID].Type
		r.p.mu.Unlock()
	}
	if kind != "" && kind != DirectMessage && m.RoomName != "" {
		r.p.remember(Room{ID: m.RoomID, Type: kind, Name: m.RoomName})
	}
	r.handle(ctx, roomMessage{m.ChatMessage, kind})
}

// newRooms finds the subscriptions the bot does not know yet and hands
// them over as invitations.
func (r *inbound) newRooms(ctx context.Context) error {
	all, err := r.p.c.Subscriptions(ctx, time.Time{})
	if err != nil {
		return err
	}
	for _, s := range all.Update {
		if r.known[s.RoomID] {
			continue
		}
		r.known[s.RoomID] = true
		r.p.remember(Room{ID: s.RoomID, Type: s.Type, Name: groupName(s)})
		if err := r.invited(ctx, s); err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.p.log.Warn().Err(err).Str("room_id", s.RoomID).Msg("Could not hand over being added to a room")
		}
	}
	return nil
}

// invited hands over a new subscription as the invitation Rocket.Chat
// does not have: a DM as a direct invitation from its other user; a group
// or channel as one from who added the bot (the "au" message naming it,
// else the room's creator, who made the bot a member at creation). Rooms
// the bot made or joined itself are no invitation.
func (r *inbound) invited(ctx context.Context, s Subscription) error {
	room := qualifiedRoom(s.RoomID)
	if s.Type == DirectMessage {
		if s.Name == "" || s.Name == r.p.self.Username {
			return nil
		}
		return r.in.Invite(ctx, chat.Invite{Room: room, Sender: person(s.Name), Direct: true})
	}
	inviter, err := r.inviter(ctx, s)
	if err != nil || inviter == "" {
		return err
	}
	return r.in.Invite(ctx, chat.Invite{Room: room, Sender: person(inviter)})
}

// inviter is who added the bot to a group or channel ("" for the bot).
func (r *inbound) inviter(ctx context.Context, s Subscription) (string, error) {
	hist, err := r.p.c.History(ctx, s.RoomID, s.Type, s.TS.Add(-catchUpSlack))
	if err != nil {
		return "", err
	}
	by := ""
	for _, m := range hist {
		switch {
		case m.Type == "au" && m.Text == r.p.self.Username:
			by = m.User.Username
		case m.Type == "uj" && m.User.ID == r.p.self.ID:
			by = r.p.self.Username
		}
	}
	if by == "" {
		info, err := r.p.c.RoomInfo(ctx, s.RoomID)
		if err != nil {
			return "", err
		}
		r.p.remember(info)
		by = info.Creator.Username
	}
	if by == r.p.self.Username {
		return "", nil
	}
	return by, nil
}

// handle hands one message to the core, once: not the bot's own, not
// system messages, not an older message the stream sends again because it
// changed (an edit, a reaction, a reply in its thread).
func (r *inbound) handle(ctx context.Context, m roomMessage) {
	if _, ok := r.seen[m.ID]; ok {
		return
	}
	if _, waiting := r.pending[m.ID]; !waiting && m.TS.Before(r.pos.Add(-catchUpSlack)) {
		return
	}
	log := r.p.log.With().Str("room_id", m.RoomID).Str("message_id", m.ID).Logger()
	switch {
	case m.User.ID == r.p.self.ID, m.System():
		r.done(ctx, m)
		return
	case m.Encrypted():
		// End-to-end encrypted in a web client: a bot cannot read it.
		log.Info().Msg("Skipping an end-to-end encrypted message")
		r.done(ctx, m)
		return
	}
	msg := chat.Message{ID: m.ID, Room: qualifiedRoom(m.RoomID), Sender: person(m.User.Username), Sent: m.TS, Attachment: m.File}
	if !m.File {
		msg.Text = m.Text
	}
	if r.isTeam != nil && r.isTeam(msg.Sender) {
		// The account is the identity: pinned on first sight, and another
		// user ID under the same username is an identity change.
		msg.Identity = &disclosure.Identity{Current: m.User.ID, DeviceSigned: true, Account: true}
	}
	err := r.in.Message(ctx, msg)
	var later *chat.LaterError
	switch {
	case err == nil:
		r.done(ctx, m)
	case ctx.Err() != nil:
		// Stopping: the next start's catch-up hands it over again.
	case errors.As(err, &later):
		r.again(m, later.Until.Sub(r.p.clock.Now()))
	default:
		r.failures[m.ID]++
		n := r.failures[m.ID]
		if n < maxFailures {
			log.Error().Err(err).Int("attempts", n).Msg("Handling a message failed; it will be handed over again")
			r.again(m, time.Duration(n)*time.Second)
			return
		}
		log.Error().Err(err).Int("attempts", n).Msg("Handling a message keeps failing; parked as a dead letter")
		if perr := r.p.st.ParkEvent(ctx, store.DeadLetter{Room: msg.Room, Event: m.ID, ParkedAt: r.p.clock.Now(), Attempts: n, Category: "handler"}); perr != nil {
			log.Error().Err(perr).Msg("Could not park the message; it will be handed over again after a restart")
			return
		}
		r.done(ctx, m)
	}
}

// again hands a message over again after wait; the position stays before
// it until then.
func (r *inbound) again(m roomMessage, wait time.Duration) {
	r.pending[m.ID] = m.TS
	go func() {
		t := r.p.clock.NewTimer(max(wait, 0))
		defer t.Stop()
		select {
		case <-r.ctx.Done():
			return
		case <-t.Chan():
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.handle(r.ctx, m)
	}()
}

// done records a message as handled and moves the position on: to the
// newest message handled, but never past one still waiting.
func (r *inbound) done(ctx context.Context, m roomMessage) {
	r.seen[m.ID] = m.TS
	delete(r.pending, m.ID)
	delete(r.failures, m.ID)
	if m.TS.After(r.newest) {
		r.newest = m.TS
	}
	pos := r.newest
	for _, ts := range r.pending {
		if ts.Before(pos) {
			pos = ts
		}
	}
	if !pos.After(r.pos) {
		return
	}
	if err := r.p.st.NoteCommandSent(ctx, positionKey, pos); err != nil {
		r.p.log.Warn().Err(err).Msg("Could not store the catch-up position; a restart reads more again")
		return
	}
	r.pos = pos
	for id, ts := range r.seen {
		if ts.Before(pos.Add(-2 * catchUpSlack)) {
			delete(r.seen, id)
		}
	}
}
