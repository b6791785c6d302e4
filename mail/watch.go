package mail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/internal/backoff"
)

// Handle decides what a new message does. It returns nil once the
// decision is committed (the message is then marked handled in the
// mailbox), or an error to see the message again on the next look.
type Handle func(ctx context.Context, env Envelope) error

// Watcher reads the security mailbox: every message not yet marked
// handled is given to Handle, oldest first. It waits for new mail with
// IDLE where the server offers it, else it looks every PollEvery, and
// reconnects with backoff when the connection fails.
type Watcher struct {
	cfg *Config
	log zerolog.Logger
	// Looked, if set, is told after each complete look through the
	// mailbox (for tests and metrics).
	Looked func()
	// Memory, if set, keeps what was handled by Message-ID and the
	// mailbox's UIDVALIDITY (the store): where the server loses keywords,
	// keeps none, or gives the mailbox a new UIDVALIDITY, a message
	// already handled is still known.
	Memory Memory

	// Auth, if set, verifies each new message's From (see SenderAuth);
	// without it no sender counts as verified.
	Auth *SenderAuth

	// state is what this watcher knows of the mailbox (see mailbox.go).
	state mailboxState
	// failStore, if set, makes marking a message handled fail (tests).
	failStore func(uid imap.UID) bool
	// laterAt is when the soonest message that was to be handled later
	// (a sender's limit) is due again; zero if none waits.
	laterAt time.Time
}

// NewWatcher returns a watcher of cfg's mailbox.
func NewWatcher(cfg *Config, log zerolog.Logger) *Watcher {
	return &Watcher{cfg: cfg, log: log}
}

// Run watches the mailbox until ctx ends.
func (w *Watcher) Run(ctx context.Context, handle Handle) error {
	failures := 0
	for ctx.Err() == nil {
		err := w.watch(ctx, handle, func() { failures = 0 })
		if ctx.Err() != nil {
			return nil
		}
		failures++
		wait := backoff.Jitter(backoff.Exponential(failures, time.Second, 5*time.Minute))
		w.log.Warn().Err(err).Dur("retry_in", wait).Msg("The mailbox connection failed; reconnecting")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// watch is one connection's life: look, wait for news, look again.
func (w *Watcher) watch(ctx context.Context, handle Handle, connected func()) error {
	news := make(chan struct{}, 1)
	signal := func() {
		select {
		case news <- struct{}{}:
		default:
		}
	}
	cl, err := w.cfg.dialIMAP(ctx, &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				signal()
			}
		},
	})
	if err != nil {
		return err
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
	defer stop()
	sel, err := cl.Select(w.cfg.Mailbox, nil).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", w.cfg.Mailbox, err)
	}
	connected()
	keywords := w.selected(ctx, sel)
	idle := (cl.Caps().Has(imap.CapIdle) || cl.Caps().Has(imap.CapIMAP4rev2)) && !w.cfg.noIdle
	w.log.Info().Str("mailbox", w.cfg.Mailbox).Uint32("uidvalidity", sel.UIDValidity).Bool("idle", idle).Msg("Watching the security mailbox")
	// lookAgain rounds remain after news of the mailbox.
	again := 0
	for {
		failed, err := w.look(ctx, cl, sel.UIDValidity, keywords, handle)
		if err != nil {
			return err
		}
		if w.Looked != nil {
			w.Looked()
		}
		wait := w.cfg.PollEvery
		if failed {
			// A message that could not be handled is tried again soon.
			wait = min(wait, retryFailed)
		}
		wait = w.laterWait(wait)
		if again > 0 {
			// A server may announce a message (EXISTS) a moment before a
			// search finds it (maddy does): look again shortly, a few times.
			wait = min(wait, lookAgain)
			again--
		}
		if !idle {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			// A server may hold back what changed until a command that
			// hands it over (maddy's SEARCH does not): without it, a
			// poll on one connection never sees new mail.
			if err := cl.Noop().Wait(); err != nil {
				return fmt.Errorf("noop: %w", err)
			}
			continue
		}
		// Some servers (maddy) hold back what changed between commands
		// until the next one, and IDLE does not count: a NOOP hands it
		// over, and news that came in means looking again at once.
		if err := cl.Noop().Wait(); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
		select {
		case <-news:
			again = lookAgainRounds
			continue
		default:
		}
		cmd, err := cl.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-news:
			again = lookAgainRounds
		case <-time.After(wait):
		case <-cl.Closed():
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("end idle: %w", err)
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// retryFailed is how soon a message whose handling failed is tried again;
// lookAgain how soon the mailbox is looked at again after news of it.
const (
	retryFailed     = 5 * time.Second
	lookAgain       = time.Second
	lookAgainRounds = 5
)

// look hands every message not marked handled to handle, oldest first,
// and marks those it committed; failed reports whether any was not.
func (w *Watcher) look(ctx context.Context, cl *imapclient.Client, uidValidity uint32, keywords bool, handle Handle) (failed bool, err error) {
	found, err := cl.UIDSearch(w.unhandledCriteria(keywords), nil).Wait()
	if err != nil {
		return false, fmt.Errorf("search the mailbox: %w", err)
	}
	uids := w.state.notDone(uidValidity, found.AllUIDs())
	if len(uids) == 0 {
		return false, nil
	}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: headerFields, Peek: true}
	msgs, err := cl.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{header}}).Collect()
	if err != nil {
		return false, fmt.Errorf("fetch headers: %w", err)
	}
	for _, m := range msgs {
		ref := Ref{UIDValidity: uidValidity, UID: uint32(m.UID)}
		env := parseEnvelope(ref, m.FindBodySection(header), w.cfg.Address)
		log := w.log.With().Uint32("uid", ref.UID).Logger()
		if w.handledBefore(ctx, env) {
			log.Info().Msg("A message handled before (known by its Message-ID) is not handled again")
			w.markHandled(ctx, cl, m.UID, ref, keywords)
			continue
		}
		env.Sender = w.sender(ctx, cl, m.UID, m.FindBodySection(header), env)
		if err := handle(log.WithContext(ctx), env); err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if w.later(log, err) {
				continue
			}
			// Seen again on the next look; the others go on.
			log.Error().Err(err).Msg("Could not handle a message of the security mailbox")
			failed = true
			continue
		}
		w.remember(ctx, env)
		w.markHandled(ctx, cl, m.UID, ref, keywords)
	}
	return failed, nil
}

// later reports whether err asks for the message to be handed over again
// later (a sender's limit delays it): it stays unmarked in the mailbox,
// and the next look after the time it names hands it over again.
func (w *Watcher) later(log zerolog.Logger, err error) bool {
	var le *chat.LaterError
	if !errors.As(err, &le) {
		return false
	}
	log.Debug().Time("until", le.Until).Msg("A message of the security mailbox waits for its sender's limit")
	if w.laterAt.IsZero() || le.Until.Before(w.laterAt) {
		w.laterAt = le.Until
	}
	return true
}

// laterWait shortens the wait before the next look to when the soonest
// delayed message is due (at least lookAgain from now).
func (w *Watcher) laterWait(wait time.Duration) time.Duration {
	if w.laterAt.IsZero() {
		return wait
	}
	due := max(time.Until(w.laterAt), lookAgain)
	w.laterAt = time.Time{}
	return min(wait, due)
}
