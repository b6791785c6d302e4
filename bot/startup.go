package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/crashpoint"
)

// adoptUploadedKeys mends what a kill in the very first crypto set-up
// leaves behind. mautrix saves a new Olm account, uploads its keys, and
// only then marks the account as shared: killed in between, every later
// start fails with "olm account is not marked as shared, but there are
// keys on the server". The keys on the server are then our own upload
// (the account was saved with them before the request): if the device's
// keys there are exactly this account's, the account is marked as shared
// and its one-time keys as published, as mautrix would have done. Keys
// that are not ours are left alone, and mautrix refuses to start.
func adoptUploadedKeys(ctx context.Context, cli *mautrix.Client, db *dbutil.Database, pickleKey []byte) error {
	cs := crypto.NewSQLCryptoStore(db, dbutil.NoopLogger, "", cli.DeviceID, pickleKey)
	if err := cs.DB.Upgrade(ctx); err != nil {
		return fmt.Errorf("upgrade the crypto store: %w", err)
	}
	device, err := cs.FindDeviceID(ctx)
	if err != nil || device == "" || device != cli.DeviceID {
		return err // a fresh store (or another device's: mautrix says so)
	}
	account, err := cs.GetAccount(ctx)
	if err != nil || account == nil || account.Shared {
		return err
	}
	resp, err := cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: map[id.UserID]mautrix.DeviceIDList{cli.UserID: {cli.DeviceID}}})
	if err != nil {
		return fmt.Errorf("query the device's own keys: %w", err)
	}
	onServer, ok := resp.DeviceKeys[cli.UserID][cli.DeviceID]
	if !ok || len(onServer.Keys) == 0 {
		return nil // nothing uploaded yet: mautrix shares them now
	}
	signing, identity := account.Keys()
	if onServer.Keys.GetEd25519(cli.DeviceID) != signing || onServer.Keys.GetCurve25519(cli.DeviceID) != identity {
		return nil
	}
	account.Internal.MarkKeysAsPublished()
	account.Shared = true
	if err := cs.PutAccount(ctx, account); err != nil {
		return fmt.Errorf("mark the uploaded keys as shared: %w", err)
	}
	return nil
}

// crashAfterKeyUpload is, in a crash-point build, the HTTP transport that
// stops the process right after the homeserver took the device's first
// key upload, before mautrix records it: the crash test's point.
type crashAfterKeyUpload struct {
	next   http.RoundTripper
	armed  *atomic.Bool
	point  string
	suffix string
}

func (c crashAfterKeyUpload) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, c.suffix) && c.armed.Load() {
		crashpoint.Hit(c.point)
	}
	return resp, err
}

// armKeyUploadCrash installs crashAfterKeyUpload (crash-point builds only)
// and returns the switch that limits it to the crypto set-up.
func armKeyUploadCrash(cli *mautrix.Client) *atomic.Bool {
	armed := &atomic.Bool{}
	if !crashpoint.Enabled || cli.Client == nil {
		return armed
	}
	next := cli.Client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cli.Client.Transport = crashAfterKeyUpload{next: next, armed: armed, point: "crypto.keys_uploaded", suffix: "/keys/upload"}
	return armed
}
