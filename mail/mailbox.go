package mail

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/rs/zerolog"
)

// Memory is what secbot keeps of the security mailbox beyond the server's
// UIDs and keywords (the store).
type Memory interface {
	MarkMailHandled(ctx context.Context, messageID, sender string, now time.Time) error
	MailHandled(ctx context.Context, messageID, sender string) (bool, error)
	MailboxUIDValidity(ctx context.Context, mailbox string) (uint32, bool, error)
	SetMailboxUIDValidity(ctx context.Context, mailbox string, uidValidity uint32, now time.Time) error
}

// mailboxState is what a watcher knows of the mailbox across its
// connections: the UIDs it handled under the UIDVALIDITY in force (so that
// a message whose keyword could not be set is not fetched on every look),
// and whether it said the server keeps no keywords.
type mailboxState struct {
	mu          sync.Mutex
	uidValidity uint32
	done        map[imap.UID]struct{}
	toldNoKeys  bool
	// senders are the verdicts on messages not handled yet, so that one
	// seen again (its handling failed, or waits) is not read again whole.
	senders map[imap.UID]Sender
}

// sender returns the verdict on a message's From, checked once.
func (w *Watcher) sender(ctx context.Context, cl *imapclient.Client, uid imap.UID, header []byte, env Envelope) Sender {
	s := &w.state
	s.mu.Lock()
	if s.uidValidity != env.Ref.UIDValidity {
		s.uidValidity, s.done, s.senders = env.Ref.UIDValidity, nil, nil
	}
	v, ok := s.senders[uid]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = w.checkSender(ctx, cl, uid, header, env)
	if ctx.Err() != nil {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uidValidity == env.Ref.UIDValidity {
		if s.senders == nil {
			s.senders = map[imap.UID]Sender{}
		}
		s.senders[uid] = v
	}
	return v
}

// notDone drops the UIDs handled already under uidValidity.
func (s *mailboxState) notDone(uidValidity uint32, uids []imap.UID) []imap.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uidValidity != uidValidity {
		s.uidValidity, s.done, s.senders = uidValidity, nil, nil
	}
	return slices.DeleteFunc(uids, func(u imap.UID) bool { _, ok := s.done[u]; return ok })
}

func (s *mailboxState) markDone(uidValidity uint32, uid imap.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uidValidity != uidValidity {
		s.uidValidity, s.done, s.senders = uidValidity, nil, nil
	}
	if s.done == nil {
		s.done = map[imap.UID]struct{}{}
	}
	s.done[uid] = struct{}{}
}

// keepsKeywords reports whether the selected mailbox keeps secbot's
// handled keyword: PERMANENTFLAGS names it, or \* for any new keyword. A
// server that names no permanent flags at all is taken at its word of RFC
// 3501 (without PERMANENTFLAGS, all flags are permanent; the IMAP library
// cannot tell it from an empty list): the keyword is set, and where it
// does not stick, the watcher and the store know the message still.
func keepsKeywords(sel *imap.SelectData) bool {
	return len(sel.PermanentFlags) == 0 || slices.Contains(sel.PermanentFlags, HandledKeyword) || slices.Contains(sel.PermanentFlags, imap.FlagWildcard)
}

// selected checks the mailbox just selected: a UIDVALIDITY unlike the one
// recorded is said and recorded (its messages have new UIDs: those handled
// before are known by Message-ID, and pending posts find theirs by it),
// and whether the server keeps keywords, which it returns.
func (w *Watcher) selected(ctx context.Context, sel *imap.SelectData) (keywords bool) {
	if w.Memory != nil {
		old, ok, err := w.Memory.MailboxUIDValidity(ctx, w.cfg.Mailbox)
		switch {
		case err != nil:
			w.log.Error().Err(err).Msg("Could not read the mailbox's recorded UIDVALIDITY")
		case ok && old != sel.UIDValidity:
			w.log.Warn().Uint32("was", old).Uint32("now", sel.UIDValidity).Str("mailbox", w.cfg.Mailbox).
				Msg("The mailbox's UIDVALIDITY changed: its messages have new UIDs. Those handled before are known by their Message-ID and are not handled again; pending posts find their message by Message-ID")
		}
		if err == nil && (!ok || old != sel.UIDValidity) {
			if err := w.Memory.SetMailboxUIDValidity(ctx, w.cfg.Mailbox, sel.UIDValidity, time.Now()); err != nil {
				w.log.Error().Err(err).Msg("Could not record the mailbox's UIDVALIDITY")
			}
		}
	}
	keywords = keepsKeywords(sel) && !w.cfg.noKeywords
	w.state.mu.Lock()
	tell := !keywords && !w.state.toldNoKeys
	w.state.toldNoKeys = w.state.toldNoKeys || !keywords
	w.state.mu.Unlock()
	if tell {
		ev := w.log.Warn().Strs("permanent_flags", flagNames(sel.PermanentFlags)).Str("mailbox", w.cfg.Mailbox)
		if w.Memory != nil {
			ev.Msg("The mail server does not keep the keyword " + string(HandledKeyword) + " in this mailbox: secbot recognises the messages it handled by their Message-ID in its database instead, and looks through the whole mailbox each time")
		} else {
			ev.Msg("The mail server does not keep the keyword " + string(HandledKeyword) + " in this mailbox: every message is looked at again on each pass")
		}
	}
	return keywords
}

func flagNames(flags []imap.Flag) []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}

// unhandledCriteria finds the messages not marked handled: all of them
// where the server keeps no keywords.
func (w *Watcher) unhandledCriteria(keywords bool) *imap.SearchCriteria {
	if !keywords {
		return &imap.SearchCriteria{}
	}
	return &imap.SearchCriteria{NotFlag: []imap.Flag{HandledKeyword}}
}

// handledBefore reports whether a message was handled before under any
// UID (the same Message-ID from the same sender).
func (w *Watcher) handledBefore(ctx context.Context, env Envelope) bool {
	if w.Memory == nil || env.MessageID == "" {
		return false
	}
	seen, err := w.Memory.MailHandled(ctx, env.MessageID, env.From)
	if err != nil {
		// Handled again, then: the handlers know it by its UID still.
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not look up whether a message was handled before")
		return false
	}
	return seen
}

// remember records a handled message's Message-ID.
func (w *Watcher) remember(ctx context.Context, env Envelope) {
	if w.Memory == nil || env.MessageID == "" {
		return
	}
	if err := w.Memory.MarkMailHandled(ctx, env.MessageID, env.From, time.Now()); err != nil {
		w.log.Error().Err(err).Uint32("uid", env.Ref.UID).Msg("Could not record a handled message's Message-ID")
	}
}

// markHandled sets the handled keyword on a message where the server
// keeps keywords. A refusal is logged and the watch goes on: the message
// is not handed over again (this watcher knows its UID, the store its
// Message-ID).
func (w *Watcher) markHandled(ctx context.Context, cl *imapclient.Client, uid imap.UID, ref Ref, keywords bool) {
	w.state.mu.Lock()
	delete(w.state.senders, uid)
	w.state.mu.Unlock()
	if !keywords {
		w.state.markDone(ref.UIDValidity, uid)
		return
	}
	var err error
	if w.failStore != nil && w.failStore(uid) {
		err = errStoreRefused
	} else {
		err = cl.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{HandledKeyword}}, nil).Close()
	}
	if err != nil {
		w.state.markDone(ref.UIDValidity, uid)
	}
	if err != nil && ctx.Err() == nil {
		w.log.Warn().Err(err).Uint32("uid", ref.UID).Msg("Could not mark a message handled in the mailbox; it is not handled again")
	}
}

var errStoreRefused = imapStoreError("STORE refused")

type imapStoreError string

func (e imapStoreError) Error() string { return string(e) }
