// Package bot is secbot's Matrix side: login, end-to-end encryption, the
// sync loop and the effects that create rooms and send messages.
package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// Handler receives the events the bot syncs, decrypted. An error means the
// event was not handled (nothing was committed): the batch is synced again.
type Handler interface {
	HandleEvent(ctx context.Context, evt *event.Event) error
	// HandleUndecryptable is told about a message the bot could not decrypt.
	HandleUndecryptable(ctx context.Context, evt *event.Event)
}

// Config is what the bot needs to log in.
type Config struct {
	Homeserver  string
	UserID      id.UserID
	Password    string
	AccessToken string
	DeviceName  string
	PickleKey   []byte
	// RecoveryKey unlocks the bot's cross-signing identity ("" if none is
	// kept); SaveRecoveryKey keeps the key of a new one, before the
	// identity is published.
	RecoveryKey     string
	SaveRecoveryKey func(key string) error
}

// Bot is a logged-in Matrix client with encryption set up.
type Bot struct {
	Client  *mautrix.Client
	crypto  *cryptohelper.CryptoHelper
	store   *store.Store
	log     zerolog.Logger
	handler Handler
	// watcher is told about device changes (nil: nobody).
	watcher Watcher
	// synced is closed once the first sync's batch was handled.
	synced     chan struct{}
	syncedOnce sync.Once

	runCtx context.Context // the sync loop's, once it runs
	// syncingFromScratch is set while a sync without a position is
	// processed (see onDecryptError).
	syncingFromScratch atomic.Bool
	batchErr           atomic.Pointer[error]
	healthy            atomic.Bool
	lastSync           atomic.Int64 // unix milliseconds of the last successful sync

	// What handle learnt of the events of the batch being synced.
	outcomeMu    sync.Mutex
	failedEvents map[id.EventID]int  // failures so far
	doneEvents   map[id.EventID]bool // handled or parked
	// syncBackoff, if set, replaces backoff (tests).
	syncBackoff func(n int) time.Duration
	// team is what the bot knows of the team room's readiness.
	team teamRoomState
	// lines keep each room's messages in order while a key is late.
	lines lines
	// Kick, if set, wakes the outbox after the bot recorded an effect.
	Kick func()
	// firstAgain is set when this start's first sync repeats one an
	// earlier start began and did not finish.
	firstAgain bool
	// IsTeam, if set, says who is on the security team: only a team
	// member's late message holds up the later ones of its room.
	IsTeam func(disclosure.Person) bool
	// secret is the installation's (see caseRoomAlias), once read.
	secret atomic.Pointer[[]byte]
	// Clock, if set, times the sync loop's retries after a failure (the
	// process's clock, which the e2e tests can step; nil: real time).
	Clock clockwork.Clock
}

// New logs in (reusing the stored device when there is one) and sets up
// end-to-end encryption with the crypto store in the bot's database.
func New(ctx context.Context, cfg Config, st *store.Store, log zerolog.Logger) (*Bot, error) {
	if len(cfg.PickleKey) == 0 {
		return nil, errors.New("a pickle key is required to encrypt the E2EE keys at rest")
	}
	if err := st.SealAccountWith(cfg.PickleKey); err != nil {
		return nil, err
	}
	cli, err := mautrix.NewClient(cfg.Homeserver, "", "")
	if err != nil {
		return nil, fmt.Errorf("matrix client: %w", err)
	}
	cli.Log = log.With().Str("component", "mautrix").Logger()
	// Homeservers rate-limit bots too; mautrix retries 429s only when asked.
	cli.DefaultHTTPRetries = 4
	b := &Bot{Client: cli, store: st, log: log, synced: make(chan struct{})}
	if err := b.login(ctx, cfg); err != nil {
		return nil, err
	}
	// A kill in an earlier first set-up may have left keys uploaded but
	// not recorded as such: take them for what they are.
	if err := adoptUploadedKeys(ctx, cli, st.DB, cfg.PickleKey); err != nil {
		return nil, fmt.Errorf("set up encryption: %w", err)
	}
	uploading := armKeyUploadCrash(cli)
	helper, err := cryptohelper.NewCryptoHelper(cli, cfg.PickleKey, st.DB)
	if err != nil {
		return nil, fmt.Errorf("set up encryption: %w", err)
	}
	helper.DecryptErrorCallback = b.onDecryptError
	helper.CustomPostDecrypt = b.afterDecrypt
	// Registered before Init adds the decrypting handler, so it runs first.
	syncer, ok := cli.Syncer.(mautrix.ExtensibleSyncer)
	if !ok {
		return nil, errors.New("the client syncer cannot take handlers")
	}
	syncer.OnEventType(event.EventEncrypted, b.noteEncrypted)
	uploading.Store(true)
	if err := helper.Init(ctx); err != nil {
		return nil, fmt.Errorf("set up encryption: %w", err)
	}
	uploading.Store(false)
	// Without this, messages would go out unencrypted without any error.
	cli.Crypto = helper
	b.crypto = helper
	if err := b.keepEncryption(ctx); err != nil {
		return nil, fmt.Errorf("keep encrypted rooms encrypted: %w", err)
	}
	if err := b.crossSign(log.WithContext(ctx), cfg); err != nil {
		return nil, fmt.Errorf("cross-signing: %w", err)
	}
	return b, nil
}

// login reuses the stored device, or logs in with the configured access
// token or password and stores the device for next time.
func (b *Bot) login(ctx context.Context, cfg Config) error {
	cli := b.Client
	acct, err := b.store.Account(ctx)
	switch {
	case err == nil && acct.UserID == disclosure.Person(cfg.UserID):
		cli.UserID, cli.DeviceID, cli.AccessToken = id.UserID(acct.UserID), id.DeviceID(acct.DeviceID), acct.AccessToken
		if cfg.AccessToken != "" && cfg.AccessToken != acct.AccessToken {
			// An operator rotated the token: take the new one, if it is the same device.
			cli.AccessToken = cfg.AccessToken
		}
		who, err := cli.Whoami(ctx)
		if err == nil {
			if who.DeviceID.String() != acct.DeviceID {
				return fmt.Errorf("the access token belongs to device %s, but the stored encryption keys to %s", who.DeviceID, acct.DeviceID)
			}
			return b.store.SetAccount(ctx, store.Account{UserID: disclosure.Person(who.UserID), DeviceID: who.DeviceID.String(), AccessToken: cli.AccessToken})
		}
		if cfg.Password == "" {
			return fmt.Errorf("check stored login: %w", err)
		}
		// The stored token no longer works: log in again as the same device.
		b.log.Warn().Err(err).Msg("Stored access token rejected, logging in again with the same device")
		return b.passwordLogin(ctx, cfg, id.DeviceID(acct.DeviceID))
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	if cfg.AccessToken != "" {
		cli.UserID, cli.AccessToken = cfg.UserID, cfg.AccessToken
		who, err := cli.Whoami(ctx)
		if err != nil {
			return fmt.Errorf("check access token: %w", err)
		}
		if who.UserID != cfg.UserID {
			return fmt.Errorf("the access token belongs to %s, not %s", who.UserID, cfg.UserID)
		}
		cli.DeviceID = who.DeviceID
		return b.store.SetAccount(ctx, store.Account{UserID: disclosure.Person(who.UserID), DeviceID: who.DeviceID.String(), AccessToken: cfg.AccessToken})
	}
	return b.passwordLogin(ctx, cfg, "")
}

func (b *Bot) passwordLogin(ctx context.Context, cfg Config, device id.DeviceID) error {
	resp, err := b.Client.Login(ctx, &mautrix.ReqLogin{
		Type:                     mautrix.AuthTypePassword,
		Identifier:               mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: cfg.UserID.String()},
		Password:                 cfg.Password,
		DeviceID:                 device,
		InitialDeviceDisplayName: cfg.DeviceName,
		StoreCredentials:         true,
	})
	if err != nil {
		return fmt.Errorf("log in as %s: %w", cfg.UserID, err)
	}
	return b.store.SetAccount(ctx, store.Account{UserID: disclosure.Person(resp.UserID), DeviceID: resp.DeviceID.String(), AccessToken: resp.AccessToken})
}

// Synced waits until the first sync was handled: the invites it brought
// (the team room's, after a first start) are answered, so what the other
// channels post there can be sent.
func (b *Bot) Synced(ctx context.Context) error {
	select {
	case <-b.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UserID is the bot's own Matrix ID.
func (b *Bot) UserID() id.UserID { return b.Client.UserID }

// DeviceID is the bot's device, the one users verify.
func (b *Bot) DeviceID() id.DeviceID { return b.Client.DeviceID }

// staleAfter is how old the last successful sync may be before the bot
// counts as degraded: a sync long-polls for 30 s at most, so anything
// older means the homeserver is not answering (or its answer is stuck).
const staleAfter = 45 * time.Second

// Healthy reports whether the bot is in touch with the homeserver: the
// last sync succeeded, and recently.
func (b *Bot) Healthy() bool {
	return b.healthy.Load() && time.Since(b.LastSync()) < staleAfter
}

// LastSync is when the last sync succeeded (zero before the first).
func (b *Bot) LastSync() time.Time {
	if ms := b.lastSync.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

func (b *Bot) onDecryptError(evt *event.Event, err error) {
	if b.runCtx != nil && b.runCtx.Err() != nil {
		// Stopping cut the wait for the key short: the event stays noted
		// and is tried again at the next start.
		return
	}
	if errors.Is(err, cryptohelper.NoSessionFound) && b.syncingFromScratch.Load() {
		// mautrix waits for a late key only in a sync that has a position:
		// in a sync from scratch (a first start cut short by a crash, then
		// started again) it gives up at once, though the key is often in
		// the very next batch. Wait for it as it would.
		go b.waitForKey(evt)
		return
	}
	b.undecryptable(evt, err)
}

// keyWait is how long a message's late key is waited for, as mautrix's
// cryptohelper waits in a sync with a position (3 s, then 22 s more).
const keyWait = 25 * time.Second

// waitForKey waits for the key of a message synced from scratch, asks the
// sender's devices for it, and handles the message once it came.
func (b *Bot) waitForKey(evt *event.Event) {
	ctx := b.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx = b.log.WithContext(ctx)
	content := evt.Content.AsEncrypted()
	//lint:ignore SA1019 RequestSession asks every device of the sender when the device is unknown
	go b.crypto.RequestSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, evt.Sender, content.DeviceID)
	if !b.crypto.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, keyWait) {
		if ctx.Err() != nil {
			return // stopping: the event stays noted for the next start
		}
		b.undecryptable(evt, cryptohelper.NoSessionFound)
		return
	}
	decrypted, err := b.crypto.Decrypt(ctx, evt)
	if err != nil {
		b.undecryptable(evt, err)
		return
	}
	decrypted.Mautrix.EventSource |= event.SourceDecrypted
	b.afterDecrypt(ctx, decrypted)
}

// undecryptable gives up on a message whose key did not come.
func (b *Bot) undecryptable(evt *event.Event, err error) {
	ctx := b.log.WithContext(context.Background())
	if b.settle(ctx, evt, nil, err, false) {
		return // given up on in its turn
	}
	if b.lines.forgotten(evt.ID) {
		return // given up on already
	}
	b.log.Warn().Err(err).Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Msg("Could not decrypt event")
	if b.handler != nil {
		b.handler.HandleUndecryptable(ctx, evt)
	}
	if err := b.store.DoneEncrypted(ctx, evt.ID.String()); err != nil {
		b.log.Warn().Err(err).Stringer("event_id", evt.ID).Msg("Could not forget an undecryptable event")
	}
}
