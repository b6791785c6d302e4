package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/signatures"
)

// crossSign makes the bot's device one its own cross-signing identity
// signed, so that a team member who verified the bot once trusts every
// device of it. On the first start it creates the identity and keeps its
// recovery key; later starts check the device is signed, and a new device
// (a lost database) is signed with the recovery key.
func (b *Bot) crossSign(ctx context.Context, cfg Config) error {
	log := zerolog.Ctx(ctx)
	mach := b.crypto.Machine()
	master, signed, err := b.ownDeviceSigned(ctx)
	if err != nil {
		return err
	}
	if master == "" {
		return b.createIdentity(ctx, cfg)
	}
	if signed {
		log.Info().Str("master_key", master).Msg("The bot's device is cross-signed by its identity")
		return nil
	}
	recovery := cfg.RecoveryKey
	if recovery == "" {
		return errors.New("the bot's account has a cross-signing identity but this device is not signed by it, and no recovery key is configured: set [matrix] recovery_key_file to a file holding the recovery key printed at the first start")
	}
	if err := mach.VerifyWithRecoveryKey(ctx, recovery); err != nil {
		return fmt.Errorf("sign this device with the recovery key (is it the right one?): %w", err)
	}
	log.Info().Str("master_key", master).Msg("Signed this device with the bot's identity, using the recovery key")
	return nil
}

// createIdentity creates the bot's cross-signing identity. The recovery
// key is stored before anything is published, so no identity exists that
// nobody can recover.
func (b *Bot) createIdentity(ctx context.Context, cfg Config) error {
	mach := b.crypto.Machine()
	key, err := mach.SSSS.GenerateAndUploadKey(ctx, "")
	if err != nil {
		return fmt.Errorf("create the secret storage key: %w", err)
	}
	if cfg.SaveRecoveryKey == nil {
		return errors.New("nowhere to keep the recovery key of a new identity")
	}
	if err := cfg.SaveRecoveryKey(key.RecoveryKey()); err != nil {
		return fmt.Errorf("keep the recovery key: %w", err)
	}
	if err := mach.SSSS.SetDefaultKeyID(ctx, key.ID); err != nil {
		return fmt.Errorf("make the secret storage key the default: %w", err)
	}
	keys, err := mach.GenerateCrossSigningKeys()
	if err != nil {
		return fmt.Errorf("create cross-signing keys: %w", err)
	}
	if err := mach.UploadCrossSigningKeysToSSSS(ctx, key, keys); err != nil {
		return fmt.Errorf("store the cross-signing keys in secret storage: %w", err)
	}
	var uia mautrix.UIACallback
	if cfg.Password != "" {
		uia = func(resp *mautrix.RespUserInteractive) any {
			return &mautrix.ReqUIAuthLogin{
				BaseAuthData: mautrix.BaseAuthData{Type: mautrix.AuthTypePassword, Session: resp.Session},
				User:         b.Client.UserID.String(), Password: cfg.Password,
			}
		}
	}
	if err := mach.PublishCrossSigningKeys(ctx, keys, uia); err != nil {
		return fmt.Errorf("publish the cross-signing keys (a homeserver that asks for the password needs password_file for this first start): %w", err)
	}
	if err := mach.SignOwnDevice(ctx, mach.OwnIdentity()); err != nil {
		return fmt.Errorf("sign the bot's device: %w", err)
	}
	if err := mach.SignOwnMasterKey(ctx); err != nil {
		return fmt.Errorf("sign the bot's master key: %w", err)
	}
	zerolog.Ctx(ctx).Info().Stringer("master_key", keys.MasterKey.PublicKey()).Msg("Created the bot's cross-signing identity and signed its device")
	return nil
}

// MasterKey is the bot's own cross-signing master key ("" if none).
func (b *Bot) MasterKey(ctx context.Context) string {
	key, _ := b.publishedMaster(ctx, b.Client.UserID)
	return key
}

// ownDeviceSigned asks the homeserver for the bot's published identity and
// checks the signatures itself: master key → self-signing key → this
// device. (mautrix counts its own device as verified whatever the server
// says.)
func (b *Bot) ownDeviceSigned(ctx context.Context) (master string, signed bool, err error) {
	self := b.Client.UserID
	resp, err := b.Client.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{self: {}}})
	if err != nil {
		return "", false, fmt.Errorf("fetch the bot's own keys: %w", err)
	}
	msk, ok := resp.MasterKeys[self]
	if !ok {
		return "", false, nil
	}
	mskKey := msk.FirstKey()
	ssk, ok := resp.SelfSigningKeys[self]
	if !ok {
		return mskKey.String(), false, nil
	}
	sskKey := ssk.FirstKey()
	if ok, _ := signatures.VerifySignatureJSON(ssk, self, mskKey.String(), mskKey); !ok {
		return mskKey.String(), false, nil
	}
	device, ok := resp.DeviceKeys[self][b.Client.DeviceID]
	if !ok {
		return mskKey.String(), false, nil
	}
	signed, _ = signatures.VerifySignatureJSON(device, self, sskKey.String(), sskKey)
	return mskKey.String(), signed, nil
}
