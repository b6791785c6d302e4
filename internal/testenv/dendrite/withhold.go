package matrixtest

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// SayWithheld sends text encrypted with a megolm session of its own whose
// key no one is sent: a client whose room key is late. release sends the
// key to every device of a user; the user's next message starts a new
// session, shared as usual.
func (u *User) SayWithheld(ctx context.Context, room id.RoomID) (say func(text string) (id.EventID, error), release func(ctx context.Context, to id.UserID) error, err error) {
	mach := u.crypto.Machine()
	sess, err := crypto.NewOutboundGroupSession(room, &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}, nil)
	if err != nil {
		return nil, nil, err
	}
	// The key as of the first message (taken before it is encrypted: the
	// ratchet moves on with each message).
	key := sess.ShareContent()
	sess.Shared = true
	say = func(text string) (id.EventID, error) {
		if err := mach.CryptoStore.AddOutboundGroupSession(ctx, sess); err != nil {
			return "", err
		}
		evt, err := u.Say(ctx, room, text)
		if rerr := mach.CryptoStore.RemoveOutboundGroupSession(ctx, room); rerr != nil && err == nil {
			err = rerr
		}
		return evt, err
	}
	release = func(ctx context.Context, to id.UserID) error {
		devices := mach.LoadDevices(ctx, to)
		if len(devices) == 0 {
			return fmt.Errorf("no devices of %s", to)
		}
		for _, device := range devices {
			if err := mach.SendEncryptedToDevice(ctx, device, event.ToDeviceRoomKey, key); err != nil {
				return fmt.Errorf("send the withheld key to %s: %w", device.DeviceID, err)
			}
		}
		return nil
	}
	return say, release, nil
}

// NewSession makes the user's next message in room start a new megolm
// session, shared with every device the room's members have now: a session
// a client made earlier is not shared again with a device that joined
// later (mautrix invalidates on invites, not on joins).
func (u *User) NewSession(ctx context.Context, room id.RoomID) error {
	return u.crypto.Machine().CryptoStore.RemoveOutboundGroupSession(ctx, room)
}
