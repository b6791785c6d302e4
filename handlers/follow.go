package handlers

import (
	"context"
	"slices"
	"strings"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// TeamRoomUnencrypted says once in the team room that it is not end-to-end
// encrypted: what is posted there is readable by the homeserver.
func (h *Handlers) TeamRoomUnencrypted(ctx context.Context) error {
	room := h.Policy().TeamRoom
	if room == "" {
		return nil
	}
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		first, err := h.store.MarkHandled(ctx, "team-room-unencrypted:"+room, h.clock.Now())
		if err != nil || !first {
			return err
		}
		return h.enqueue(ctx, store.RoomLane(room), outbox.Target{Room: room}, templates.TeamRoomUnencrypted{}, outbox.SendEffect{}, false)
	})
	h.kick()
	return err
}

// FollowTeam brings the open cases' rooms in line with the team in force
// (at start and after a reload): members who joined the team are invited,
// members who left it are removed, each case's audit log says so, and the
// team room is told once. The first time, the team is only recorded.
func (h *Handlers) FollowTeam(ctx context.Context) error {
	p := h.Policy()
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		seen, recorded, err := h.store.TeamSeen(ctx)
		if err != nil || !recorded {
			if err == nil {
				err = h.store.SetTeamSeen(ctx, p.Team)
			}
			return err
		}
		added, removed := diffPeople(seen, p.Team), diffPeople(p.Team, seen)
		if len(added) == 0 && len(removed) == 0 {
			return nil
		}
		cases, err := h.store.OpenCases(ctx)
		if err != nil {
			return err
		}
		now := h.clock.Now()
		for _, c := range cases {
			lane, room := store.CaseLane(c.ID), outbox.Target{CaseRoomOf: c.ID.String()}
			for _, u := range added {
				if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindInvite, outbox.InviteEffect{To: room, User: u}, now); err != nil {
					return err
				}
			}
			ntk, err := h.store.NeedToKnow(ctx, c.ID)
			if err != nil {
				return err
			}
			for _, u := range removed {
				if u == c.Reporter || slices.ContainsFunc(ntk, func(n disclosure.NeedToKnow) bool { return n.Who == u }) {
					continue // the case's reporter, or on its need-to-know list: they stay
				}
				if _, err := outbox.Enqueue(ctx, h.store, lane, outbox.KindKick, outbox.KickEffect{To: room, User: u, Reason: "no longer on the security team"}, now); err != nil {
					return err
				}
			}
			detail := "invited " + joinPeople(added) + "; removed " + joinPeople(removed)
			if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: c.ID.String(), Action: "team.follow", Detail: detail, Allowed: true}); err != nil {
				return err
			}
		}
		if p.TeamRoom != "" {
			note := templates.TeamChanged{Added: peopleStrings(added), Removed: peopleStrings(removed), Cases: len(cases)}
			if err := h.enqueue(ctx, store.RoomLane(p.TeamRoom), outbox.Target{Room: p.TeamRoom}, note, outbox.SendEffect{}, false); err != nil {
				return err
			}
		}
		return h.store.SetTeamSeen(ctx, p.Team)
	})
	h.kick()
	return err
}

// diffPeople is who of b is not in a.
func diffPeople(a, b []disclosure.Person) []disclosure.Person {
	var out []disclosure.Person
	for _, p := range b {
		if !slices.Contains(a, p) {
			out = append(out, p)
		}
	}
	return out
}

func peopleStrings(people []disclosure.Person) []string {
	out := make([]string, len(people))
	for i, p := range people {
		out[i] = string(p)
	}
	return out
}

func joinPeople(people []disclosure.Person) string {
	if len(people) == 0 {
		return "nobody"
	}
	return strings.Join(peopleStrings(people), ", ")
}
