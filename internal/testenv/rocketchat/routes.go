package rctest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The REST routes. Each runs with s.mu held, after authentication, the
// rate limiter and Rocket.Chat's validator.

func (s *Server) chatSendMessage(c *call) (map[string]any, *apiError) {
	in, _ := c.params["message"].(map[string]any)
	if in == nil {
		return nil, meteorError("error-invalid-params", "The 'message' param is required", nil)
	}
	m, e := s.send(c.u, in)
	if e != nil {
		return nil, e
	}
	return map[string]any{"message": s.messageJSON(m, restTS)}, nil
}

// chatPostMessage is processWebhookMessage for one target: roomId, or
// channel as "#name", "@username" or a room ID.
func (s *Server) chatPostMessage(c *call) (map[string]any, *apiError) {
	target := str(c.params, "roomId")
	if target == "" {
		target = str(c.params, "channel")
	}
	if target == "" {
		return nil, plainError("error-invalid-channel")
	}
	var r *room
	switch target[0] {
	case '#':
		r = s.roomByName(target[1:])
		if r == nil {
			return nil, meteorError("invalid-channel", "Invalid channel", nil)
		}
	case '@':
		other := s.byName[target[1:]]
		if other == nil {
			return nil, meteorError("invalid-channel", "Invalid channel", nil)
		}
		r = s.dm(c.u, other)
	default:
		r = s.rooms[target]
		if r == nil {
			return nil, meteorError("invalid-channel", "Invalid channel", nil)
		}
	}
	in := map[string]any{"rid": r.id, "msg": str(c.params, "text")}
	for _, k := range []string{"tmid", "alias", "emoji", "avatar", "attachments", "customFields"} {
		if v, ok := c.params[k]; ok && v != nil {
			in[k] = v
		}
	}
	m, e := s.send(c.u, in)
	if e != nil {
		return nil, e
	}
	return map[string]any{"ts": s.now().UnixMilli(), "channel": target, "message": s.messageJSON(m, restTS)}, nil
}

func (s *Server) chatGetMessage(c *call) (map[string]any, *apiError) {
	m := s.msgs[str(c.params, "msgId")]
	if m == nil {
		return nil, plainError("")
	}
	if !s.canAccess(c.u, s.rooms[m.rid]) {
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "getSingleMessage"})
	}
	return map[string]any{"message": s.messageJSON(m, restTS)}, nil
}

func (s *Server) chatReact(c *call) (map[string]any, *apiError) {
	m := s.msgs[str(c.params, "messageId")]
	if m == nil {
		return nil, meteorError("error-message-not-found", `The provided "messageId" does not match any existing message.`, nil)
	}
	emoji := str(c.params, "emoji")
	if emoji == "" {
		emoji = str(c.params, "reaction")
	}
	if emoji == "" {
		return nil, meteorError("error-emoji-param-not-provided", `The required "emoji" param is missing.`, nil)
	}
	r := s.rooms[m.rid]
	if !s.canAccess(c.u, r) {
		return nil, meteorError("not-authorized", "Not Authorized", map[string]any{"method": "setReaction"})
	}
	emoji = ":" + strings.Trim(emoji, ":") + ":"
	if m.reactions == nil {
		m.reactions = map[string][]string{}
	}
	names := m.reactions[emoji]
	has := hasString(names, c.u.username)
	should, set := c.params["shouldReact"].(bool)
	if !set {
		should = !has
	}
	switch {
	case should && !has:
		m.reactions[emoji] = append(names, c.u.username)
	case !should && has:
		var keep []string
		for _, n := range names {
			if n != c.u.username {
				keep = append(keep, n)
			}
		}
		if len(keep) == 0 {
			delete(m.reactions, emoji)
		} else {
			m.reactions[emoji] = keep
		}
	default:
		return nil, nil
	}
	m.updated = s.now()
	s.publish(m)
	return nil, nil
}

// dm finds or creates the direct message room of two users.
func (s *Server) dm(a, b *user) *room {
	ids := []string{a.id, b.id}
	if a.id == b.id {
		ids = ids[:1]
	}
	sort.Strings(ids)
	if r := s.rooms[strings.Join(ids, "")]; r != nil {
		for _, uid := range ids {
			if sb := r.subs[uid]; sb != nil {
				sb.open = true
			}
		}
		return r
	}
	members := []string{a.id}
	if b.id != a.id {
		members = append(members, b.id)
	}
	return s.newRoom("d", "", a.id, members)
}

func (s *Server) imCreate(c *call) (map[string]any, *apiError) {
	names := []string{str(c.params, "username")}
	if v := str(c.params, "usernames"); v != "" {
		names = nil
		for _, n := range strings.Split(v, ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	if len(names) != 1 {
		// Group DMs are not part of what secbot uses.
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "createDirectMessage"})
	}
	other := s.byName[names[0]]
	if other == nil {
		return nil, meteorError("error-invalid-user", "Invalid user", map[string]any{"method": "createDirectMessage"})
	}
	if !s.can(c.u, "create-d") {
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "createDirectMessage"})
	}
	r := s.dm(c.u, other)
	room := s.roomJSON(r)
	room["rid"] = r.id
	return map[string]any{"room": room}, nil
}

// history is getChannelHistory: newest first, latest/oldest/inclusive,
// offset and count (default 20), thread replies only when asked.
func (s *Server) history(r *room, p map[string]any, showThreads bool) map[string]any {
	// Without latest the bound is the request's time, which every stored
	// message is at or before (also under a fake clock that stands still).
	var latest time.Time
	if v := str(p, "latest"); v != "" {
		latest, _ = parseJSDate(v)
	}
	var oldest time.Time
	if v := str(p, "oldest"); v != "" {
		oldest, _ = parseJSDate(v)
	}
	inclusive := p["inclusive"] == "true" || p["inclusive"] == true
	count, offset := num(p, "count", 20), num(p, "offset", 0)
	var out []any
	for i := len(s.order) - 1; i >= 0; i-- {
		m := s.order[i]
		if m.rid != r.id {
			continue
		}
		if inclusive {
			if (!latest.IsZero() && m.ts.After(latest)) || (!oldest.IsZero() && m.ts.Before(oldest)) {
				continue
			}
		} else if (!latest.IsZero() && !m.ts.Before(latest)) || (!oldest.IsZero() && !m.ts.After(oldest)) {
			continue
		}
		if !showThreads && m.tmid != "" && !m.tshow {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if count > 0 && len(out) >= count {
			break
		}
		out = append(out, s.messageJSON(m, restTS))
	}
	if out == nil {
		out = []any{}
	}
	return map[string]any{"messages": out}
}

func parseJSDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *Server) imHistory(c *call) (map[string]any, *apiError) {
	r := s.rooms[str(c.params, "roomId")]
	if r == nil || r.t != "d" {
		return nil, meteorError("error-room-not-found", `The required "roomId" param provided does not match any direct message`, nil)
	}
	if !s.canAccess(c.u, r) {
		return nil, forbidden()
	}
	return s.history(r, c.params, c.params["showThreadMessages"] == "true"), nil
}

func (s *Server) imList(c *call) (map[string]any, *apiError) {
	var ims []any
	for _, r := range s.sortedRooms() {
		if r.t == "d" && r.subs[c.u.id] != nil {
			ims = append(ims, s.roomJSON(r))
		}
	}
	return paginate("ims", ims, c.params), nil
}

func paginate(key string, items []any, p map[string]any) map[string]any {
	total := len(items)
	offset, count := num(p, "offset", 0), num(p, "count", 50)
	if offset > len(items) {
		offset = len(items)
	}
	items = items[offset:]
	if count > 0 && len(items) > count {
		items = items[:count]
	}
	if items == nil {
		items = []any{}
	}
	return map[string]any{key: items, "offset": offset, "count": len(items), "total": total}
}

func (s *Server) sortedRooms() []*room {
	rs := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].name != rs[j].name {
			return rs[i].name < rs[j].name
		}
		return rs[i].id < rs[j].id
	})
	return rs
}

func (s *Server) roomByName(name string) *room {
	for _, r := range s.rooms {
		if r.t != "d" && r.name == name {
			return r
		}
	}
	return nil
}

// groupsCreate is createPrivateGroup → createRoom: the creator is owner,
// unknown members are skipped, initial members get no system message.
func (s *Server) groupsCreate(c *call) (map[string]any, *apiError) {
	if !s.can(c.u, "create-p") {
		return nil, forbidden()
	}
	name := str(c.params, "name")
	if !roomNameRE.MatchString(name) {
		return nil, meteorError("error-invalid-room-name", name+" is not a valid room name", map[string]any{"method": "createRoom", "room_name": name})
	}
	if s.roomByName(name) != nil {
		return nil, meteorError("error-duplicate-channel-name", "A channel with name '"+name+"' exists", map[string]any{"method": "createRoom", "channel_name": name})
	}
	members := []string{c.u.id}
	if list, ok := c.params["members"].([]any); ok {
		for _, v := range list {
			n, _ := v.(string)
			if u := s.byName[n]; u != nil && !hasString(members, u.id) {
				members = append(members, u.id)
			}
		}
	}
	r := s.newRoom("p", name, c.u.id, members)
	r.ro, _ = c.params["readOnly"].(bool)
	r.customFields, _ = c.params["customFields"].(map[string]any)
	if extra, ok := c.params["extraData"].(map[string]any); ok {
		r.encrypted, _ = extra["encrypted"].(bool)
	}
	if s.opts.ForceEncryptedPrivateGroups {
		r.encrypted = true
	}
	return map[string]any{"group": s.roomJSON(r)}, nil
}

// privateGroup is findPrivateGroupByIdOrName.
func (s *Server) privateGroup(u *user, p map[string]any) (*room, *apiError) {
	var r *room
	if id := str(p, "roomId"); id != "" {
		r = s.rooms[id]
	} else if name := str(p, "roomName"); name != "" {
		r = s.roomByName(name)
	} else {
		return nil, meteorError("error-room-param-not-provided", `The parameter "roomId" or "roomName" is required`, nil)
	}
	if r == nil || r.t != "p" || !s.canAccess(u, r) {
		return nil, meteorError("error-room-not-found", `The required "roomId" or "roomName" param provided does not match any group`, nil)
	}
	return r, nil
}

// usersFromParams is getUserListFromParams / getUserFromParams.
func (s *Server) usersFromParams(p map[string]any) ([]*user, *apiError) {
	var out []*user
	add := func(u *user) {
		for _, x := range out {
			if x == u {
				return
			}
		}
		out = append(out, u)
	}
	notFound := meteorError("error-invalid-user", `The required "userId" or "username" param provided does not match any users`, nil)
	if id := str(p, "userId"); id != "" {
		u := s.users[id]
		if u == nil {
			return nil, notFound
		}
		add(u)
	}
	for _, k := range []string{"username", "user"} {
		if n := str(p, k); n != "" {
			u := s.byName[n]
			if u == nil {
				return nil, notFound
			}
			add(u)
		}
	}
	if ids, ok := p["userIds"].([]any); ok {
		for _, v := range ids {
			id, _ := v.(string)
			if u := s.users[id]; u != nil {
				add(u)
			}
		}
	}
	if names, ok := p["usernames"].([]any); ok {
		for _, v := range names {
			n, _ := v.(string)
			if u := s.byName[n]; u != nil {
				add(u)
			}
		}
	}
	return out, nil
}

// groupsInvite is addUsersToRoom: the inviter needs add-user-to-any-p-room
// (admin) or to be in the room with add-user-to-joined-room (owner,
// moderator); each new member gets an "au" message from the inviter.
func (s *Server) groupsInvite(c *call) (map[string]any, *apiError) {
	var r *room
	if id := str(c.params, "roomId"); id != "" {
		r = s.rooms[id]
		if r == nil {
			r = s.roomByName(id)
		}
	} else if name := str(c.params, "roomName"); name != "" {
		r = s.roomByName(name)
	}
	if r == nil || r.t != "p" {
		return nil, meteorError("error-room-not-found", `The required "roomId" or "roomName" param provided does not match any group`, nil)
	}
	users, e := s.usersFromParams(c.params)
	if e != nil {
		return nil, e
	}
	if len(users) == 0 {
		return nil, meteorError("error-empty-invite-list", "Cannot invite if no valid users are provided", nil)
	}
	inRoom := r.subs[c.u.id] != nil
	if !s.can(c.u, "add-user-to-any-p-room") && !(inRoom && s.can(c.u, "add-user-to-joined-room", r)) {
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "addUsersToRoom"})
	}
	for _, u := range users {
		if r.subs[u.id] != nil {
			continue
		}
		s.join(r, u.id)
		s.systemMessage("au", r, c.u, u.username)
	}
	return map[string]any{"group": s.roomJSON(r)}, nil
}

// groupsKick is removeUserFromRoom: remove-user in the room (owner,
// moderator, admin); an "ru" message from the remover.
func (s *Server) groupsKick(c *call) (map[string]any, *apiError) {
	r, e := s.privateGroup(c.u, c.params)
	if e != nil {
		return nil, e
	}
	users, e := s.usersFromParams(c.params)
	if e != nil {
		return nil, e
	}
	if len(users) == 0 {
		return nil, meteorError("error-invalid-user", `The required "userId" or "username" param provided does not match any users`, nil)
	}
	target := users[0]
	if !s.can(c.u, "remove-user", r) {
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "removeUserFromRoom"})
	}
	if r.subs[target.id] == nil {
		return nil, meteorError("error-user-not-in-room", "User is not in this room", map[string]any{"method": "removeUserFromRoom"})
	}
	if hasString(r.roles[target.id], "owner") {
		owners := 0
		for _, roles := range r.roles {
			if hasString(roles, "owner") {
				owners++
			}
		}
		if owners == 1 {
			return nil, meteorError("error-you-are-last-owner", "You are the last owner. Please set new owner before leaving the room.", map[string]any{"method": "removeUserFromRoom"})
		}
	}
	s.systemMessage("ru", r, c.u, target.username)
	s.leave(r, target.id)
	return nil, nil
}

// leaveRoom is leaveRoomMethod: the last owner may not leave; a "ul"
// message from the one who left.
func (s *Server) leaveRoom(u *user, r *room) *apiError {
	if r.subs[u.id] == nil {
		return meteorError("error-user-not-in-room", "You are not in this room", map[string]any{"method": "leaveRoom"})
	}
	if hasString(r.roles[u.id], "owner") {
		owners := 0
		for _, roles := range r.roles {
			if hasString(roles, "owner") {
				owners++
			}
		}
		if owners == 1 {
			return meteorError("error-you-are-last-owner", "You are the last owner. Please set new owner before leaving the room.", map[string]any{"method": "leaveRoom"})
		}
	}
	s.systemMessage("ul", r, u, u.username)
	s.leave(r, u.id)
	return nil
}

func (s *Server) groupsLeave(c *call) (map[string]any, *apiError) {
	r, e := s.privateGroup(c.u, c.params)
	if e != nil {
		return nil, e
	}
	return nil, s.leaveRoom(c.u, r)
}

// channelsJoin is channels.join (joinRoom): a user who may see the
// channel becomes a member, with a "uj" message; a member already is no
// change. The stand-in's channels have no join codes.
func (s *Server) channelsJoin(c *call) (map[string]any, *apiError) {
	r, e := s.channel(c.params)
	if e != nil {
		return nil, e
	}
	if !s.canAccess(c.u, r) {
		return nil, meteorError("error-not-allowed", "Not allowed", map[string]any{"method": "joinRoom"})
	}
	if r.subs[c.u.id] == nil {
		s.join(r, c.u.id)
		s.systemMessage("uj", r, c.u, c.u.username)
	}
	return map[string]any{"channel": s.roomJSON(r)}, nil
}

func (s *Server) channelsLeave(c *call) (map[string]any, *apiError) {
	r, e := s.channel(c.params)
	if e != nil {
		return nil, e
	}
	return nil, s.leaveRoom(c.u, r)
}

func (s *Server) groupsHistory(c *call) (map[string]any, *apiError) {
	r, e := s.privateGroup(c.u, c.params)
	if e != nil {
		return nil, e
	}
	return s.history(r, c.params, c.params["showThreadMessages"] != "false"), nil
}

func (s *Server) groupsInfo(c *call) (map[string]any, *apiError) {
	r, e := s.privateGroup(c.u, c.params)
	if e != nil {
		return nil, e
	}
	return map[string]any{"group": s.roomJSON(r)}, nil
}

func (s *Server) groupsMembers(c *call) (map[string]any, *apiError) {
	r, e := s.privateGroup(c.u, c.params)
	if e != nil {
		return nil, e
	}
	var members []any
	for _, uid := range r.members {
		members = append(members, s.userJSON(s.users[uid], false))
	}
	return paginate("members", members, c.params), nil
}

func (s *Server) groupsList(c *call) (map[string]any, *apiError) {
	var groups []any
	for _, r := range s.sortedRooms() {
		if r.t == "p" && r.subs[c.u.id] != nil {
			groups = append(groups, s.roomJSON(r))
		}
	}
	return paginate("groups", groups, c.params), nil
}

// channel is findChannelByIdOrName.
func (s *Server) channel(p map[string]any) (*room, *apiError) {
	var r *room
	if id := str(p, "roomId"); id != "" {
		r = s.rooms[id]
	} else if name := str(p, "roomName"); name != "" {
		r = s.roomByName(name)
	} else {
		return nil, meteorError("error-room-param-not-provided", `The parameter "roomId" or "roomName" is required`, nil)
	}
	if r == nil || r.t != "c" {
		return nil, meteorError("error-room-not-found", `The required "roomId" or "roomName" param provided does not match any channel`, nil)
	}
	return r, nil
}

func (s *Server) channelsHistory(c *call) (map[string]any, *apiError) {
	r, e := s.channel(c.params)
	if e != nil {
		return nil, e
	}
	if !s.canAccess(c.u, r) {
		return nil, forbidden()
	}
	return s.history(r, c.params, c.params["showThreadMessages"] != "false"), nil
}

// channelsList is channels.list: it needs view-c-room or
// view-joined-room (else 403); with view-c-room every public channel,
// without it only those the user is in. sort is parseJsonQuery's (a JSON
// object of fields to 1 or -1; name ascending by default; a channel
// without the field sorts as the lowest value, as in MongoDB), paged by
// offset and count; _id narrows it to one channel. The stand-in has no
// teams, so the server's team filter has nothing to hide.
func (s *Server) channelsList(c *call) (map[string]any, *apiError) {
	seeAll := s.can(c.u, "view-c-room")
	if !seeAll && !s.can(c.u, "view-joined-room") {
		return nil, &apiError{status: 403, body: map[string]any{"success": false,
			"error": "User does not have the permissions required for this action [error-unauthorized]"}}
	}
	type key struct {
		field string
		dir   int
	}
	keys := []key{{"name", 1}}
	if v := str(c.params, "sort"); v != "" {
		bad := meteorError("error-invalid-sort", fmt.Sprintf("Invalid sort parameter provided: %q", v), map[string]any{"helperMethod": "parseJsonQuery"})
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		tok, err := dec.Token()
		if err != nil || tok != json.Delim('{') {
			return nil, bad
		}
		keys = nil
		for dec.More() {
			f, err := dec.Token()
			if err != nil {
				return nil, bad
			}
			var d json.Number
			if err := dec.Decode(&d); err != nil || (d != "1" && d != "-1") {
				return nil, bad
			}
			dir := 1
			if d == "-1" {
				dir = -1
			}
			keys = append(keys, key{f.(string), dir})
		}
	}
	field := func(r *room, f string) (string, bool) {
		switch f {
		case "name":
			return r.name, true
		case "_id":
			return r.id, true
		case "ts":
			return restTime(r.ts), true
		case "_updatedAt":
			return restTime(r.updated), true
		case "lm":
			if r.lm.IsZero() {
				return "", false
			}
			return restTime(r.lm), true
		}
		return "", false
	}
	var rooms []*room
	for _, r := range s.sortedRooms() {
		if r.t != "c" || (!seeAll && r.subs[c.u.id] == nil) {
			continue
		}
		if id := str(c.params, "_id"); id != "" && r.id != id {
			continue
		}
		rooms = append(rooms, r)
	}
	sort.SliceStable(rooms, func(i, j int) bool {
		for _, k := range keys {
			a, aok := field(rooms[i], k.field)
			b, bok := field(rooms[j], k.field)
			if aok != bok {
				// a missing field sorts lowest
				return (bok && k.dir == 1) || (aok && k.dir == -1)
			}
			if a != b {
				return (a < b) == (k.dir == 1)
			}
		}
		return false
	})
	var channels []any
	for _, r := range rooms {
		channels = append(channels, s.roomJSON(r))
	}
	return paginate("channels", channels, c.params), nil
}

func (s *Server) channelsInfo(c *call) (map[string]any, *apiError) {
	r, e := s.channel(c.params)
	if e != nil {
		return nil, e
	}
	return map[string]any{"channel": s.roomJSON(r)}, nil
}

func (s *Server) roomsInfo(c *call) (map[string]any, *apiError) {
	var r *room
	if id := str(c.params, "roomId"); id != "" {
		r = s.rooms[id]
	} else {
		r = s.roomByName(str(c.params, "roomName"))
	}
	if r == nil || !s.canAccess(c.u, r) {
		return nil, &apiError{status: 400, body: map[string]any{"success": false, "error": "not-allowed", "errorType": "Not Allowed"}}
	}
	return map[string]any{"room": s.roomJSON(r)}, nil
}

// subscriptionsGet answers {update, remove}: with updatedSince, only what
// changed after it (and the subscriptions removed since).
func (s *Server) subscriptionsGet(c *call) (map[string]any, *apiError) {
	var since time.Time
	if v := str(c.params, "updatedSince"); v != "" {
		t, ok := parseJSDate(v)
		if !ok {
			return nil, meteorError("error-roomId-param-invalid", `The "lastUpdate" query parameter must be a valid date.`, nil)
		}
		since = t
	}
	update := []any{}
	for _, r := range s.sortedRooms() {
		sb := r.subs[c.u.id]
		if sb == nil || (!since.IsZero() && !sb.updated.After(since)) {
			continue
		}
		update = append(update, s.subJSON(r, c.u.id))
	}
	remove := []any{}
	if !since.IsZero() {
		for _, rm := range s.removed {
			if rm.uid == c.u.id && rm.at.After(since) {
				remove = append(remove, map[string]any{"_id": rm.id, "_deletedAt": restTime(rm.at)})
			}
		}
	}
	return map[string]any{"update": update, "remove": remove}, nil
}

func (s *Server) usersInfo(c *call) (map[string]any, *apiError) {
	var u *user
	if id := str(c.params, "userId"); id != "" {
		u = s.users[id]
	} else if n := str(c.params, "username"); n != "" {
		u = s.byName[n]
	}
	if u == nil {
		return nil, plainError("User not found.")
	}
	return map[string]any{"user": s.userJSON(u, u == c.u)}, nil
}

func (s *Server) me(c *call) (map[string]any, *apiError) {
	return s.userJSON(c.u, true), nil
}
