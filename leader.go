package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/crypto/sql_store_upgrade"
	"maunium.net/go/mautrix/sqlstatestore"

	"github.com/enarx/secbot/config"
	"github.com/enarx/secbot/metrics"
	"github.com/enarx/secbot/store"
)

// exitGrace is how long an instance that lost its office may take to stop
// its work before the process exits regardless; exitNow is that exit.
// Check (1s) + CheckTimeout (1s) + exitGrace stay well below the database's
// dead-peer detection (README: about 11s), so the lock is released only
// once the process is gone.
var (
	exitGrace = 3 * time.Second
	exitNow   = os.Exit
)

// office is an instance that became the active one: its store (migrated),
// its part in the election, its HTTP server (nil without [http] listen),
// and a context that ends when the office is lost.
type office struct {
	st     *store.Store
	lead   *store.Leader
	web    *webServer
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// becomeActive connects to the database and returns once this instance is
// the active one. Before anything touches the Matrix account, the crypto
// store, the migrations, timers, the outbox, mail or GitHub: on PostgreSQL
// it stands by (role=standby; /healthz answers with the role) while
// another instance holds the office; then it checks its lock every second
// (losing it ends office.ctx and, after exitGrace, the process), refuses
// a schema newer than this binary knows (store.ErrNewerSchema: it exits
// having written nothing), runs the migrations and takes office
// (role=active epoch=N). On SQLite it is the
// active one at once. It returns nil and no error if ctx ended while it
// stood by.
func becomeActive(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*office, error) {
	st, err := dialStore(ctx, cfg.Database, log)
	if err != nil {
		return nil, err
	}
	o := &office{st: st}
	o.ctx, o.cancel = context.WithCancelCause(ctx)
	host, _ := os.Hostname()
	o.lead = st.Elector(store.Election{
		Instance: fmt.Sprintf("%s/%d", host, os.Getpid()),
		Log:      log,
		OnLost: func(err error) {
			o.cancel(err)
			time.AfterFunc(exitGrace, func() {
				log.Error().Err(err).Dur("grace", exitGrace).Msg("Still running after losing the office: exiting now")
				exitNow(1)
			})
		},
	})
	if cfg.HTTP.Listen != "" {
		if o.web, err = listen(cfg.HTTP.Listen, metrics.StandbyHandler(o.lead)); err != nil {
			o.Close()
			return nil, err
		}
	}
	if err := o.lead.Campaign(ctx); err != nil {
		o.Close()
		if ctx.Err() != nil {
			return nil, nil // stopped while standing by
		}
		return nil, err
	}
	go func() { _ = o.lead.Watch(o.ctx) }()
	// An older binary than the one that migrated the database stops here,
	// having written nothing (it exits; its supervisor starts it again).
	if err := st.RefuseNewerSchema(o.ctx, mautrixSchemas); err != nil {
		o.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.Database.Where(), err)
	}
	if err := st.Upgrade(o.ctx); err != nil {
		o.Close()
		return nil, fmt.Errorf("migrate database %s: %w", cfg.Database.Where(), errors.Join(err, o.lead.Lost()))
	}
	if _, err := o.lead.TakeOffice(o.ctx, time.Now()); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// mautrixSchemas are the migrations this binary's mautrix has for the
// crypto and state stores it keeps beside secbot's tables.
var mautrixSchemas = map[string]int{
	sql_store_upgrade.VersionTableName: len(sql_store_upgrade.Table),
	sqlstatestore.VersionTableName:     len(sqlstatestore.UpgradeTable),
}

// dialStore connects to the database [database] names without migrating it.
func dialStore(ctx context.Context, db config.Database, log zerolog.Logger) (*store.Store, error) {
	if db.Postgres() {
		log.Info().Str("database", db.Where()).Msg("Using PostgreSQL")
		return store.DialPostgres(ctx, string(db.ConnString()), log)
	}
	return store.Dial(ctx, db.Path, log)
}

// serveHTTP puts the active instance's /metrics and /healthz in place of
// the standby's (nothing without [http] listen).
func (o *office) serveHTTP(h func(metrics.Office) http.Handler) {
	if o.web != nil {
		o.web.handler.Store(&handler{h(o.lead)})
	}
}

// result is serve's error: the lost office if that is what ended it.
func (o *office) result(err error) error {
	if err == nil {
		return o.lead.Lost()
	}
	return err
}

// Close stops the HTTP server, releases the lock and closes the store.
func (o *office) Close() {
	o.cancel(nil)
	if o.web != nil {
		o.web.stop()
	}
	_ = o.lead.Close()
	_ = o.st.Close()
}

type handler struct{ http.Handler }

// webServer serves /metrics and /healthz from the start (a standby's
// role) to the end, its handler swapped once the instance is active.
type webServer struct {
	srv     *http.Server
	handler atomic.Pointer[handler]
}

func listen(addr string, h http.Handler) (*webServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	w := &webServer{}
	w.handler.Store(&handler{h})
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.handler.Load().ServeHTTP(rw, r) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = w.srv.Serve(l) }()
	return w, nil
}

func (w *webServer) stop() {
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = w.srv.Shutdown(ctx)
}
