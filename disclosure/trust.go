package disclosure

import "fmt"

// Identity is what a chat channel knows about the device a team member
// wrote from: their cross-signing identity as the homeserver publishes it
// now, and whether that identity signed the device. A homeserver can add
// devices to an account but cannot sign them, so only a signed device
// speaks for the member.
type Identity struct {
	// Current is the member's master key as published now ("" if none).
	Current string
	// DeviceSigned is true when the sending device is cross-signed by
	// Current.
	DeviceSigned bool
	// Unencrypted marks a message sent in the clear: no device vouches
	// for it, and the homeserver could have written it.
	Unencrypted bool
	// Account marks a platform without device signing (Rocket.Chat):
	// Current is the account a username belongs to, so a change is
	// another account under the member's name, not a key reset.
	Account bool
}

// DeviceTrust is how far a request's device is known to be its sender's.
// The zero value trusts nothing.
type DeviceTrust int

// The device trust levels.
const (
	// DeviceUnverified: no identity, or the device is not signed by it.
	DeviceUnverified DeviceTrust = iota
	// IdentityChanged: the member's identity is not the pinned one; their
	// commands wait until the coordinator re-pins it.
	IdentityChanged
	// DeviceVerified: signed by the member's pinned identity.
	DeviceVerified
	// SentInTheClear: an unencrypted message, which no device vouches for.
	SentInTheClear
	// AccountChanged: on a platform that pins accounts, the member's
	// username belongs to another account than the pinned one.
	AccountChanged
)

// PinnedKey is the identity member's team commands must come from: the
// configured one in strict mode ([team] identities), else pinned (the one
// first seen, or re-pinned by the coordinator; "" before first sight).
func (p *Policy) PinnedKey(member Person, pinned string) string {
	if p.StrictIdentities() {
		return p.Identities[member]
	}
	return pinned
}

// StrictIdentities is true when identities come from the config only.
func (p *Policy) StrictIdentities() bool { return len(p.Identities) > 0 }

// FirstSight says whether member's identity is to be pinned now: it is
// seen for the first time, and the config does not name identities.
func (p *Policy) FirstSight(member Person, pinned string, id Identity) bool {
	return p.IsTeam(member) && !p.StrictIdentities() && pinned == "" && id.Current != ""
}

// TrustOf decides how far a team member's device is trusted, given the
// pinned identity (after any first-sight pin).
func (p *Policy) TrustOf(member Person, pinned string, id Identity) DeviceTrust {
	want := p.PinnedKey(member, pinned)
	switch {
	case id.Unencrypted:
		return SentInTheClear
	case want == "" || id.Current == "":
		return DeviceUnverified
	case id.Current != want && id.Account:
		return AccountChanged
	case id.Current != want:
		return IdentityChanged
	case id.DeviceSigned:
		return DeviceVerified
	}
	return DeviceUnverified
}

// IdentityNews says whether the team room is to be told that member's
// identity changed: their published key is not the pinned one, and the
// room has not been told about this key yet.
func (p *Policy) IdentityNews(member Person, pinned, announced string, id Identity) bool {
	want := p.PinnedKey(member, pinned)
	return p.IsTeam(member) && want != "" && id.Current != "" && id.Current != want && id.Current != announced
}

// untrustedDevice is the refusal of a team command from a device that
// does not speak for its member.
func (p *Policy) untrustedDevice(action string, by Person, trust DeviceTrust) *Refusal {
	if trust == SentInTheClear {
		return refusef(action, "this room is unencrypted, so no device vouches for this message and I cannot tell it is really yours (the homeserver could have written it). Team commands work in end-to-end encrypted rooms only.")
	}
	if trust == AccountChanged {
		if p.StrictIdentities() {
			return refusef(action, "your username belongs to another account than the one the configuration names for you, so I cannot tell this is really you. Until an operator updates `[team] identities`, your commands wait.")
		}
		return refusef(action, "your username belongs to another account than the one I knew as yours, so I cannot tell this is really you. Your commands wait until the coordinator checks it with you and runs `%s trust %s ACCOUNT-ID` with the account the team room was shown.", p.CommandPrefix, by)
	}
	if trust == IdentityChanged {
		if p.StrictIdentities() {
			return refusef(action, "your cross-signing identity is not the one the configuration names for you, so I cannot tell this is really you. Until an operator updates `[team] identities`, your commands wait.")
		}
		return refusef(action, "your cross-signing identity changed since I last saw it (a reset, or someone else's keys), so I cannot tell this is really you. Your commands wait until the coordinator checks it with you and runs `%s trust %s KEY` with the key the team room was shown.", p.CommandPrefix, by)
	}
	return refusef(action, "this device is not verified, so I cannot tell it is really yours. Verify it from a device you already trust (in Element: Settings → Sessions, select this session, Verify), or set up cross-signing, then try again.")
}

// Trust decides the coordinator's re-pinning of member's identity to the
// one published now. It answers only where only the team reads. expect,
// if given, is the key the coordinator checked with the member: a
// homeserver could publish yet another one in between.
func (p *Policy) Trust(req Request, member Person, pinned string, id Identity, expect string) (Decision, error) {
	const action = "trust"
	switch {
	case req.By != p.Coordinator:
		return Decision{}, refusef(action, "only the coordinator (%s) can confirm a team member's new identity.", p.Coordinator)
	case !p.IsTeam(member):
		return Decision{}, refusef(action, "%s is not on the security team; only team members' identities are pinned.", member)
	case p.StrictIdentities():
		return Decision{}, refusef(action, "identities come from the configuration (`[team] identities`); change it there and reload.")
	case id.Current == "":
		return Decision{}, refusef(action, "%s has no cross-signing identity on their account yet; they need to set up cross-signing first.", member)
	case id.Current == pinned:
		return Decision{}, refusef(action, "%s's identity is already the pinned one; nothing to do.", member)
	case expect != "" && expect != id.Current:
		return Decision{}, refusef(action, "%s's published identity is %s, not the %s you checked; nothing was pinned. Check it with them again.", member, id.Current, expect)
	}
	return Decision{Action: action, Detail: fmt.Sprintf("%s re-pinned to %s", member, id.Current)}, nil
}
