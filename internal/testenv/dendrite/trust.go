package matrixtest

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// Password is the password NewUser gives localpart.
func Password(localpart string) string { return "password-" + localpart }

// CrossSign creates the user's cross-signing identity (a new one each
// call: a second call is an identity reset), signs this device with it,
// and returns the master key.
func (u *User) CrossSign(ctx context.Context) (id.Ed25519, error) {
	u.machine.Lock()
	defer u.machine.Unlock()
	mach := u.crypto.Machine()
	_, keys, err := mach.GenerateAndUploadCrossSigningKeysWithPassword(ctx, Password(u.ID().Localpart()), "")
	if err != nil {
		return "", fmt.Errorf("%s: publish cross-signing keys: %w", u.ID(), err)
	}
	if err := mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
		return "", fmt.Errorf("%s: sign own device: %w", u.ID(), err)
	}
	if err := mach.SignOwnMasterKey(ctx); err != nil {
		return "", fmt.Errorf("%s: sign own master key: %w", u.ID(), err)
	}
	return keys.MasterKey.PublicKey(), nil
}

// DeviceID is this client's device.
func (u *User) DeviceID() id.DeviceID { return u.Client.DeviceID }

// Devices is how this user's client trusts each device of user, as their
// published cross-signing keys say now, and user's master key.
func (u *User) Devices(ctx context.Context, user id.UserID) (map[id.DeviceID]id.TrustState, id.Ed25519, error) {
	mach := u.crypto.Machine()
	devices, err := mach.FetchKeys(ctx, []id.UserID{user}, true)
	if err != nil {
		return nil, "", err
	}
	out := map[id.DeviceID]id.TrustState{}
	for did, d := range devices[user] {
		if out[did], err = mach.ResolveTrustContext(ctx, d); err != nil {
			return nil, "", err
		}
	}
	keys, err := mach.GetCrossSigningPublicKeys(ctx, user)
	if err != nil || keys == nil {
		return out, "", err
	}
	return out, keys.MasterKey, nil
}

// SignDevice signs another device of the user's own account with the
// identity CrossSign made (as a homeserver that published an identity of
// its own for the account could).
func (u *User) SignDevice(ctx context.Context, device id.DeviceID) error {
	u.machine.Lock()
	defer u.machine.Unlock()
	mach := u.crypto.Machine()
	d, err := mach.GetOrFetchDevice(ctx, u.ID(), device)
	if err != nil {
		return fmt.Errorf("%s: fetch device %s: %w", u.ID(), device, err)
	}
	return mach.SignOwnDevice(ctx, d)
}
