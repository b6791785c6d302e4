package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// TeamKeys says which identity a person's devices must be signed by to
// get room keys: team members' pinned one; nobody else's are checked
// (reporters are strangers, trusted on first use).
type TeamKeys interface {
	// TeamKey returns the master key who's devices must be signed by, and
	// whether who is on the team ("" with team: none is pinned yet, so
	// no device of theirs qualifies).
	TeamKey(ctx context.Context, who disclosure.Person) (key string, team bool, err error)
}

// keyGate is the crypto store as the key sharing sees it: a team member's
// device their pinned identity did not sign is listed as blacklisted, so
// mautrix withholds room keys from it (m.room_key.withheld) in every room.
// It decides when keys are shared, not when devices were last fetched, so
// a device the homeserver adds between two syncs gets nothing either.
//
// Of the bot's own account only this device and the devices the bot's own
// identity signed get keys: a device the homeserver (or anyone with the
// bot's password) adds to the account would otherwise read every case.
type keyGate struct {
	crypto.Store
	keys TeamKeys
	self id.UserID
	// device is the bot's current device; master the bot's own master key,
	// as checked at start ("" if none: no other device qualifies).
	device id.DeviceID
	master string
}

func (g *keyGate) GetDevices(ctx context.Context, user id.UserID) (map[id.DeviceID]*id.Device, error) {
	devices, err := g.Store.GetDevices(ctx, user)
	if err != nil || len(devices) == 0 {
		return devices, err
	}
	if user == g.self {
		return g.gate(ctx, devices, g.master, g.device)
	}
	key, team, err := g.keys.TeamKey(ctx, corePerson(user))
	if err != nil {
		return nil, fmt.Errorf("look up %s's pinned identity: %w", user, err)
	}
	if !team {
		return devices, nil
	}
	return g.gate(ctx, devices, key, "")
}

// gate lists the devices master did not sign (other than keep) as
// blacklisted.
func (g *keyGate) gate(ctx context.Context, devices map[id.DeviceID]*id.Device, master string, keep id.DeviceID) (map[id.DeviceID]*id.Device, error) {
	gated := make(map[id.DeviceID]*id.Device, len(devices))
	for did, d := range devices {
		signed := did == keep && keep != ""
		if !signed {
			var err error
			if signed, err = signedBy(ctx, g.Store, d, master); err != nil {
				return nil, err
			}
		}
		if !signed {
			copied := *d
			copied.Trust = id.TrustStateBlacklisted
			d = &copied
		}
		gated[did] = d
	}
	return gated, nil
}

// PutDevices and PutDevice store no blacklisting of the gate's: mautrix
// carries a device's trust over when it fetches the list again, and the
// gate decides afresh each time.
func (g *keyGate) PutDevices(ctx context.Context, user id.UserID, devices map[id.DeviceID]*id.Device) error {
	for did, d := range devices {
		devices[did] = unblacklisted(d)
	}
	return g.Store.PutDevices(ctx, user, devices)
}

func (g *keyGate) PutDevice(ctx context.Context, user id.UserID, d *id.Device) error {
	return g.Store.PutDevice(ctx, user, unblacklisted(d))
}

func unblacklisted(d *id.Device) *id.Device {
	if d == nil || d.Trust != id.TrustStateBlacklisted {
		return d
	}
	copied := *d
	copied.Trust = id.TrustStateUnset
	return &copied
}

// signedBy reports whether master is the device owner's published master
// key and signed the device through their self-signing key.
func signedBy(ctx context.Context, st crypto.Store, d *id.Device, master string) (bool, error) {
	if master == "" {
		return false, nil
	}
	keys, err := st.GetCrossSigningKeys(ctx, d.UserID)
	if err != nil {
		return false, fmt.Errorf("load %s's cross-signing keys: %w", d.UserID, err)
	}
	msk, ok := keys[id.XSUsageMaster]
	ssk, ok2 := keys[id.XSUsageSelfSigning]
	if !ok || !ok2 || msk.Key.String() != master {
		return false, nil
	}
	if ok, err := st.IsKeySignedBy(ctx, d.UserID, ssk.Key, d.UserID, msk.Key); err != nil || !ok {
		return false, err
	}
	return st.IsKeySignedBy(ctx, d.UserID, d.SigningKey, d.UserID, ssk.Key)
}

// publishedMaster is who's master key as the crypto store last fetched it.
func (b *Bot) publishedMaster(ctx context.Context, who id.UserID) (string, error) {
	keys, err := b.cryptoStore().GetCrossSigningKeys(ctx, who)
	if err != nil {
		return "", err
	}
	if msk, ok := keys[id.XSUsageMaster]; ok {
		return msk.Key.String(), nil
	}
	return "", nil
}

// cryptoStore is the crypto store under the key gate.
func (b *Bot) cryptoStore() crypto.Store {
	if g, ok := b.crypto.Machine().CryptoStore.(*keyGate); ok {
		return g.Store
	}
	return b.crypto.Machine().CryptoStore
}

// senderIdentity is what a decrypted event says of its sender's device:
// their published identity, and whether it signed the device the event's
// session came from. A session forwarded by another device, restored
// from a backup or from a device the bot does not know speaks for no one.
func (b *Bot) senderIdentity(ctx context.Context, evt *event.Event) (*disclosure.Identity, error) {
	current, err := b.publishedMaster(ctx, evt.Sender)
	if err != nil {
		return nil, err
	}
	ident := &disclosure.Identity{Current: current, Unencrypted: !evt.Mautrix.WasEncrypted}
	if !evt.Mautrix.WasEncrypted || evt.Mautrix.TrustSource == nil || evt.Mautrix.ForwardedKeys {
		return ident, nil
	}
	switch evt.Mautrix.TrustState {
	case id.TrustStateCrossSignedUntrusted, id.TrustStateCrossSignedTOFU, id.TrustStateCrossSignedVerified:
		// The session's device is signed through the current master key;
		// check it again against the very key reported.
		ident.DeviceSigned, err = signedBy(ctx, b.cryptoStore(), evt.Mautrix.TrustSource, current)
	}
	return ident, err
}

// Identity is who's identity as published now, fetched afresh.
func (b *Bot) Identity(ctx context.Context, who disclosure.Person) (disclosure.Identity, error) {
	if _, err := b.crypto.Machine().FetchKeys(ctx, []id.UserID{matrixUser(who)}, true); err != nil {
		return disclosure.Identity{}, fmt.Errorf("fetch %s's keys: %w", who, err)
	}
	current, err := b.publishedMaster(ctx, matrixUser(who))
	return disclosure.Identity{Current: current}, err
}

// TrustChanged starts new room sessions in the rooms shared with member,
// so the devices their newly pinned identity signed get keys from the
// next message on (a session already shared is not shared again).
func (b *Bot) TrustChanged(ctx context.Context, member disclosure.Person) {
	b.crypto.Machine().OnDevicesChanged(ctx, matrixUser(member))
}

// Watcher is told what changed of people's devices.
type Watcher interface {
	IdentitySeen(ctx context.Context, member disclosure.Person, ident disclosure.Identity) error
	DevicesSeen(ctx context.Context, who disclosure.Person, devices []chat.Device) error
	// OwnDeviceSeen is told of a device of the bot's own account that its
	// identity did not sign (each time it is seen: the watcher tells once).
	OwnDeviceSeen(ctx context.Context, self disclosure.Person, device, name string) error
	// EncryptionDowngraded is told that a room recorded encrypted lost its
	// encryption (algorithm is what its state says now; by who sent the
	// change, "" if unknown). The watcher tells once per room.
	EncryptionDowngraded(ctx context.Context, room, algorithm string, by disclosure.Person) error
	TeamKeys
}

// devicesChanged tells the watcher about the users whose device lists the
// homeserver said changed (mautrix fetched them already). A team member's
// sessions start afresh, since a device newly signed would otherwise wait
// for the next rotation.
func (b *Bot) devicesChanged(ctx context.Context, users []id.UserID) error {
	return b.devicesSeen(ctx, users, true)
}

// devicesSeen tells the watcher about users' devices as mautrix last
// fetched them; rotate starts team members' room sessions afresh (on a
// change the homeserver reported, not on every start).
func (b *Bot) devicesSeen(ctx context.Context, users []id.UserID, rotate bool) error {
	if b.watcher == nil {
		return nil
	}
	for _, u := range users {
		if u == b.Client.UserID {
			if err := b.ownDevicesSeen(ctx); err != nil {
				return err
			}
			continue
		}
		_, team, err := b.watcher.TeamKey(ctx, corePerson(u))
		if err != nil {
			return err
		}
		if team {
			current, err := b.publishedMaster(ctx, u)
			if err != nil {
				return err
			}
			if err := b.watcher.IdentitySeen(ctx, corePerson(u), disclosure.Identity{Current: current}); err != nil {
				return err
			}
			if rotate {
				b.crypto.Machine().OnDevicesChanged(ctx, u)
			}
			continue
		}
		devices, err := b.cryptoStore().GetDevices(ctx, u)
		if err != nil {
			return err
		}
		var seen []chat.Device
		for did, d := range devices {
			seen = append(seen, chat.Device{ID: did.String(), Name: d.Name})
		}
		if err := b.watcher.DevicesSeen(ctx, corePerson(u), seen); err != nil {
			return err
		}
	}
	return nil
}

// ownDevicesSeen tells the watcher about each device of the bot's own
// account that is neither this one nor signed by the bot's identity: it
// gets no room keys, and the team should know someone logged in as the
// bot.
func (b *Bot) ownDevicesSeen(ctx context.Context) error {
	g, ok := b.crypto.Machine().CryptoStore.(*keyGate)
	if !ok {
		return nil
	}
	devices, err := g.Store.GetDevices(ctx, b.Client.UserID)
	if err != nil {
		return err
	}
	for did, d := range devices {
		if did == b.Client.DeviceID {
			continue
		}
		signed, err := signedBy(ctx, g.Store, d, g.master)
		if err != nil {
			return err
		}
		if signed {
			continue
		}
		zerolog.Ctx(ctx).Warn().Stringer("device_id", did).Msg("A device the bot's identity did not sign is logged in to the bot's account; it gets no room keys")
		if err := b.watcher.OwnDeviceSeen(ctx, corePerson(b.UserID()), did.String(), d.Name); err != nil {
			return err
		}
	}
	return nil
}

// ownMaster is the bot's own master key that its other devices must be
// signed by to get room keys: the published one, if it signed this device
// and is the one pinned when it was first seen (a homeserver can publish
// an identity of its own for the bot and sign the bot's device with it,
// but not the one the bot made). "" if not: then only this device gets
// keys.
func (b *Bot) ownMaster(ctx context.Context) (string, error) {
	log := zerolog.Ctx(ctx)
	master, signed, err := b.ownDeviceSigned(ctx)
	if err != nil || !signed || master == "" {
		log.Warn().Err(err).Msg("Could not check the bot's own identity; of its account only this device gets room keys")
		return "", nil
	}
	pinned, err := b.store.BotIdentity(ctx)
	if err != nil {
		return "", err
	}
	switch pinned {
	case "":
		return master, b.store.PinBotIdentity(ctx, master, time.Now())
	case master:
		return master, nil
	}
	log.Error().Str("master_key", master).Str("pinned_master_key", pinned).Msg("The bot's published identity is not the one it first had; of its account only this device gets room keys")
	return "", nil
}

// WatchTeam gates room keys by the team's pinned identities (and the
// bot's own devices by its identity) and tells w about device changes. At
// start it looks at every member and at the bot's own account once, so an
// identity changed or a device added while the bot was down is noticed.
func (b *Bot) WatchTeam(ctx context.Context, w Watcher, team []disclosure.Person) error {
	mach := b.crypto.Machine()
	if _, already := mach.CryptoStore.(*keyGate); !already {
		master, err := b.ownMaster(ctx)
		if err != nil {
			return err
		}
		mach.CryptoStore = &keyGate{Store: mach.CryptoStore, keys: w, self: b.Client.UserID, device: b.Client.DeviceID, master: master}
	}
	b.watcher = w
	users := make([]id.UserID, 0, len(team)+1)
	for _, m := range team {
		if chat.PlatformOf(string(m)) == disclosure.Matrix {
			users = append(users, matrixUser(m))
		}
	}
	users = append(users, b.Client.UserID)
	if _, err := mach.FetchKeys(ctx, users, true); err != nil {
		var httpErr mautrix.HTTPError
		if errors.As(err, &httpErr) {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not fetch the team's keys; their identities are checked as they write")
			return nil
		}
		return err
	}
	// mautrix itself starts new sessions where a member's device list
	// changed while the bot was down; the rest stay as they are.
	return b.devicesSeen(ctx, users, false)
}
