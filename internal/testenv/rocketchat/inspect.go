package rctest

import "sort"

// DirectRoom finds the DM between two users (a user's DM with themself
// if a and b are one), as im.create made it.
func (s *Server) DirectRoom(a, b string) (Room, bool) {
	ids := []string{a, b}
	sort.Strings(ids)
	if a == b {
		ids = ids[:1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		if r.t != "d" || len(r.members) != len(ids) {
			continue
		}
		members := append([]string(nil), r.members...)
		sort.Strings(members)
		same := true
		for i := range ids {
			same = same && members[i] == ids[i]
		}
		if same {
			return s.roomView(r), true
		}
	}
	return Room{}, false
}

// RoomsOf is every room a user is a member of (DMs, groups, channels),
// in no particular order: what that user's client lists.
func (s *Server) RoomsOf(userID string) []Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Room
	for _, r := range s.rooms {
		if r.subs[userID] != nil {
			out = append(out, s.roomView(r))
		}
	}
	return out
}
