package handlers

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Identities is what the handlers need of a chat channel's end-to-end
// trust: a person's cross-signing identity as published now, and a hook
// for when the identity a member's devices are trusted by changed.
type Identities interface {
	// Identity is who's identity as published now (DeviceSigned unset).
	Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error)
	// TrustChanged is told after member's pinned identity changed, so
	// room keys reach the devices it signs from the next message on.
	TrustChanged(ctx context.Context, member disclosure.Person)
}

// deviceTrust is how far the device msg came from speaks for its sender:
// a team member's identity is pinned on first sight (outside strict mode)
// and a changed one is told to the team room, each once.
func (h *Handlers) deviceTrust(ctx context.Context, msg chat.Message) (disclosure.DeviceTrust, error) {
	if !h.IsTeam(msg.Sender) || msg.Identity == nil {
		return disclosure.DeviceUnverified, nil
	}
	pinned, err := h.observeIdentity(ctx, msg.Sender, *msg.Identity)
	if err != nil {
		return disclosure.DeviceUnverified, err
	}
	return h.Policy().TrustOf(msg.Sender, pinned, *msg.Identity), nil
}

// IdentitySeen is a channel's news of a team member's published identity
// (their device list changed): pinned on first sight, told to the team
// room if it changed.
func (h *Handlers) IdentitySeen(ctx context.Context, member disclosure.Person, id disclosure.Identity) error {
	if !h.IsTeam(member) {
		return nil
	}
	_, err := h.observeIdentity(ctx, member, id)
	return err
}

// observeIdentity records what is to be recorded of member's identity as
// published now, and returns the pinned key.
func (h *Handlers) observeIdentity(ctx context.Context, member disclosure.Person, id disclosure.Identity) (string, error) {
	p, now := h.Policy(), h.clock.Now()
	// Every team message asks: only news (a first sight, a changed key)
	// takes a write transaction.
	if known, err := h.store.IdentityOf(ctx, member); err == nil && !p.FirstSight(member, known.MasterKey, id) && !p.IdentityNews(member, known.MasterKey, known.Announced, id) {
		return known.MasterKey, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	var pinned string
	first := false
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		pinned, first = "", false // a retried transaction starts again
		ident, err := h.store.IdentityOf(ctx, member)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		stored := err == nil
		pinned = ident.MasterKey
		if p.FirstSight(member, pinned, id) {
			pinned, first = id.Current, true
			if err := h.store.PinIdentity(ctx, store.Identity{Member: member, MasterKey: id.Current, PinnedAt: now, PinnedBy: h.self(string(member))}); err != nil {
				return err
			}
			return h.store.Audit(ctx, store.AuditEntry{At: now, Actor: member, Action: "identity.pin", Detail: "first seen: " + id.Current, Allowed: true})
		}
		if !p.IdentityNews(member, pinned, ident.Announced, id) {
			return nil
		}
		if !stored {
			// Strict mode keeps no pins; the row remembers what was told.
			if err := h.store.PinIdentity(ctx, store.Identity{Member: member, MasterKey: "", PinnedAt: now, PinnedBy: h.self(string(member))}); err != nil {
				return err
			}
		}
		if told, err := h.store.AnnounceIdentity(ctx, member, id.Current); err != nil || !told {
			return err
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: member, Action: "identity.changed", Detail: "published " + id.Current + ", pinned " + p.PinnedKey(member, pinned), Allowed: false}); err != nil {
			return err
		}
		if p.TeamRoom == "" {
			return nil
		}
		zerolog.Ctx(ctx).Warn().Str("member", member.String()).Msg("A team member's cross-signing identity changed; their commands wait")
		return h.enqueue(ctx, store.RoomLane(p.TeamRoom), outbox.Target{Room: p.TeamRoom},
			templates.IdentityChanged{Member: member.String(), Key: id.Current, Prefix: p.CommandPrefix, Strict: p.StrictIdentities(), Account: id.Account}, outbox.SendEffect{Mentions: []disclosure.Person{member, p.Coordinator}}, false)
	})
	if err != nil {
		return "", err
	}
	h.kick()
	if ids := h.identities(member); first && ids != nil {
		ids.TrustChanged(ctx, member)
	}
	return pinned, nil
}

// cmdTrust re-pins a team member's identity to the one they publish now.
// The key is required: a homeserver can deliver an old `trust` again, or
// publish yet another key in between, and only the key the coordinator
// checked may be pinned.
func (h *Handlers) cmdTrust(c *cmdContext) (disclosure.Decision, error) {
	member, ok := disclosure.Person(""), len(c.args) == 2
	if ok {
		member, ok = h.personIn(c.msg.Room)(c.args[0])
	}
	if !ok {
		return disclosure.Decision{}, usage("the team member and the master key you checked with them: copy both from the team room's notice of the change (🔐), e.g. `%s trust @alice:example.org KEY`", c.prefix())
	}
	expect := strings.Trim(c.args[1], "`")
	ids := h.identities(member)
	if ids == nil {
		return disclosure.Decision{}, &disclosure.Refusal{Action: "trust", Reason: "this member's chat has no identities to trust."}
	}
	ident, err := h.store.IdentityOf(c, member)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return disclosure.Decision{}, err
	}
	current, err := ids.Identity(c, member)
	if err != nil {
		return disclosure.Decision{}, err
	}
	d, err := c.req.Policy.Trust(c.req, member, ident.MasterKey, current, expect)
	if err != nil {
		return d, err
	}
	d.Pin = &disclosure.Pin{Member: member, Key: current.Current}
	what := "trusted"
	if current.Account {
		what = "trusted-account"
	}
	d.Say = append(d.Say, disclosure.Message{To: disclosure.Audience{Kind: disclosure.Here}, Data: templates.Done{What: what, User: member.String(), Name: current.Current}})
	return d, nil
}

// ignorePlaintext records a message sent unencrypted into an encrypted
// room, and does nothing else with it: anyone who can inject events into
// the room (the homeserver) could have written it.
func (h *Handlers) ignorePlaintext(ctx context.Context, msg chat.Message, caseRef string) error {
	zerolog.Ctx(ctx).Warn().Msg("Ignoring an unencrypted message in an encrypted room")
	return h.once(ctx, msg.ID, func(ctx context.Context) error {
		return h.auditRefusal(ctx, store.AuditEntry{At: h.clock.Now(), Actor: msg.Sender, CaseID: caseRef, Action: "plaintext.ignored", Detail: "unencrypted message in an encrypted room: " + msg.Room, Allowed: false})
	})
}

// DevicesSeen is a channel's news of someone's devices (their device list
// changed). A reporter's new device is told in their open case's room for
// the team: reporters are trusted on first use, so a device added later
// (by them, or by a homeserver reading along) is at least seen.
func (h *Handlers) DevicesSeen(ctx context.Context, who disclosure.Person, devices []chat.Device) error {
	if h.IsTeam(who) || h.isSelf(who) {
		return nil
	}
	now := h.clock.Now()
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		known, err := h.store.KnownDevices(ctx, who)
		if err != nil {
			return err
		}
		var added []chat.Device
		for _, d := range devices {
			if !slices.Contains(known, d.ID) {
				added = append(added, d)
				if err := h.store.KnowDevice(ctx, who, d.ID, now); err != nil {
					return err
				}
			}
		}
		if len(known) == 0 || len(added) == 0 {
			return nil // the first look is what "first use" trusts
		}
		cs, err := h.store.OpenCaseOf(ctx, who)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		for _, d := range added {
			if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: who, CaseID: cs.ID.String(), Action: "reporter.device", Detail: "new device " + templates.Truncate(d.ID, 40), Allowed: true}); err != nil {
				return err
			}
			if err := h.enqueue(ctx, store.CaseLane(cs.ID), outbox.Target{CaseRoomOf: cs.ID.String()},
				templates.ReporterNewDevice{Reporter: who.String(), Device: templates.Truncate(d.ID, 40), Name: templates.Truncate(d.Name, 60)}, outbox.SendEffect{}, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		h.kick()
	}
	return err
}

// TeamKey returns the master key who's devices must be signed by to get
// room keys, and whether who is on the team.
func (h *Handlers) TeamKey(ctx context.Context, who disclosure.Person) (string, bool, error) {
	p := h.Policy()
	if !p.IsTeam(who) {
		return "", false, nil
	}
	ident, err := h.store.IdentityOf(ctx, who)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", true, err
	}
	return p.PinnedKey(who, ident.MasterKey), true, nil
}
