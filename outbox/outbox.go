// Package outbox owns secbot's side effects: the writer that records them
// (Say, Enqueue), their neutral kinds and payloads, and the runner that
// makes them through the executors registered by kind.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Executor makes one kind of effect. It must be safe to run again after a
// crash: the effect's Attempts tells it whether an earlier try may have got
// through. An error wrapping a Permanent sentinel gives up on the effect.
type Executor func(ctx context.Context, e store.Effect) (result any, err error)

// RetryAfterError asks the outbox to wait a given time before the next try
// (a rate limit's Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RefusedError is an executor's word that the domain, deciding again when
// the effect was due, refused it: nothing was made, and it is not tried
// again. The effect ends as refused: neither made nor failed.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

// Refuse records, in one transaction, that an effect was refused when it
// was due: its audit line, the team room told why (data; nothing when the
// policy has no team room), and the effect ended as refused. It returns the
// *RefusedError for the executor to return.
func Refuse(ctx context.Context, st *store.Store, tmpl *templates.Set, e store.Effect, audit store.AuditEntry, teamRoom, lane string, data templates.Data, now time.Time) error {
	err := st.Tx(ctx, func(ctx context.Context) error {
		refused, err := st.RefuseEffect(ctx, e.ID, audit.Detail, now)
		if err != nil || !refused {
			return err // not pending any more: told already
		}
		if err := st.Audit(ctx, audit); err != nil {
			return err
		}
		if teamRoom == "" {
			return nil
		}
		return Say(ctx, st, tmpl, lane, SendEffect{To: Target{Room: teamRoom}}, data, now, false)
	})
	if err != nil {
		return err
	}
	return &RefusedError{Reason: audit.Detail}
}

// Redecide asks the domain, right before a queued effect of case cs is
// made, whether the case as it is now still allows it (nil: make it).
// Refused, the effect ends as refused, the refusal is audited and the team
// room told why (Refuse), and the *RefusedError is returned.
func Redecide(ctx context.Context, st *store.Store, tmpl *templates.Set, e store.Effect, cs *store.Case, q disclosure.Queued, p *disclosure.Policy, now time.Time) error {
	c, err := st.DomainCase(ctx, cs)
	if err != nil {
		return err
	}
	refusal := c.MayRun(q, p, now)
	if refusal == nil {
		return nil
	}
	return Refuse(ctx, st, tmpl, e,
		store.AuditEntry{At: now, Actor: "secbot", CaseID: cs.ID.String(), Action: refusal.Action, Detail: "refused when due: " + refusal.Reason, Allowed: false},
		p.TeamRoom, store.CaseLane(cs.ID), templates.QueuedRefused{CaseID: cs.ID.String(), What: q.Label(), Reason: refusal.Reason}, now)
}

// Outbox runs pending effects: in order within a lane, lanes in parallel.
type Outbox struct {
	store     *store.Store
	clock     clockwork.Clock
	log       zerolog.Logger
	executors map[string]Executor
	// permanent reports whether an error can never succeed on retry.
	permanent func(error) bool
	// notReady reports whether an effect waits for another one (short retry).
	notReady    func(error) bool
	kick        chan struct{}
	parallelism int

	mu       sync.Mutex
	inFlight map[string]bool
	// OnDone, if set, is told about each effect after it is made or given up.
	OnDone func(e store.Effect, err error)
	// LastAttempt, if set, says after how many attempts an effect of a kind
	// is parked as failed (0: never), so that its lane goes on.
	LastAttempt func(kind string) int
}

// New returns an outbox runner. permanent and notReady classify executor
// errors (either may be nil).
func New(st *store.Store, clock clockwork.Clock, log zerolog.Logger, permanent, notReady func(error) bool) *Outbox {
	if permanent == nil {
		permanent = func(error) bool { return false }
	}
	if notReady == nil {
		notReady = func(error) bool { return false }
	}
	return &Outbox{
		store: st, clock: clock, log: log,
		executors: map[string]Executor{}, permanent: permanent, notReady: notReady,
		kick: make(chan struct{}, 1), parallelism: 16, inFlight: map[string]bool{},
	}
}

// Register sets the executor of a kind of effect: the registry by which
// the runner finds who makes each kind.
func (o *Outbox) Register(kind string, ex Executor) { o.executors[kind] = ex }

// Kick wakes the runner: an effect was just recorded.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// idlePoll bounds how long the runner sleeps, as a safety net under Kick.
const idlePoll = 2 * time.Second

// Run executes due effects until ctx ends, then waits for those in flight.
func (o *Outbox) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, o.parallelism)
	var urgentRunning, routineRunning atomic.Int64
	for {
		due, err := o.store.DueEffects(ctx, o.clock.Now(), 4*o.parallelism)
		if err != nil && ctx.Err() == nil {
			o.log.Error().Err(err).Msg("Could not read the outbox")
		}
		// While urgent effects wait or run, routine ones keep to a quarter
		// of the slots, so that under a burst they leave the homeserver to
		// what a reporter is waiting on; otherwise they may use them all.
		routineCap := int64(o.parallelism)
		if urgentRunning.Load() > 0 || slices.ContainsFunc(due, func(e store.Effect) bool { return e.Urgent }) {
			routineCap = int64(max(o.parallelism/4, 1))
		}
		for _, e := range due {
			running := &routineRunning
			if e.Urgent {
				running = &urgentRunning
			} else if routineRunning.Load() >= routineCap {
				continue // a later pass
			}
			o.mu.Lock()
			busy := o.inFlight[e.Lane]
			if !busy {
				o.inFlight[e.Lane] = true
			}
			o.mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				o.release(e.Lane)
				return nil
			}
			running.Add(1)
			wg.Add(1)
			go func(e store.Effect) {
				defer wg.Done()
				defer func() { <-sem }()
				defer running.Add(-1)
				defer o.release(e.Lane)
				o.runOne(context.WithoutCancel(ctx), e)
				o.Kick()
			}(e)
		}
		wait := idlePoll
		if next, err := o.store.NextEffectAt(ctx); err == nil && !next.IsZero() {
			wait = min(wait, max(next.Sub(o.clock.Now()), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-o.kick:
		case <-o.clock.After(wait):
		}
	}
}

// RunDue makes the effects due now, one pass, as the runner would, and
// returns how many it ran: for tests and tools that step the outbox.
func (o *Outbox) RunDue(ctx context.Context) (int, error) {
	due, err := o.store.DueEffects(ctx, o.clock.Now(), 4*o.parallelism)
	if err != nil {
		return 0, err
	}
	for _, e := range due {
		o.runOne(ctx, e)
	}
	return len(due), nil
}

func (o *Outbox) release(lane string) {
	o.mu.Lock()
	delete(o.inFlight, lane)
	o.mu.Unlock()
}

// runOne makes one effect and records the outcome; it reports whether the
// effect is finished (made or given up).
func (o *Outbox) runOne(ctx context.Context, e store.Effect) bool {
	e.Kind = Canonical(e.Kind) // a row queued under a kind's former name
	log := o.log.With().Int64("effect_id", e.ID).Str("kind", e.Kind).Str("lane", e.Lane).Logger()
	ctx = log.WithContext(ctx)
	ex, ok := o.executors[e.Kind]
	if !ok {
		// An executor may register later (a reload); keep the effect.
		log.Warn().Msg("No executor for effect kind yet")
		_ = o.store.RetryEffect(ctx, e.ID, "no executor", o.clock.Now().Add(time.Minute))
		return false
	}
	attempts, err := o.store.StartAttempt(ctx, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true // made meanwhile: this view of the outbox was older
	}
	if err != nil {
		log.Error().Err(err).Msg("Could not record attempt")
		return false
	}
	e.Attempts = attempts
	result, err := safeRun(ctx, ex, e)
	if err == nil {
		crashpoint.Hit("outbox.after." + e.Kind)
	}
	now := o.clock.Now()
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		// Ended already in the executor's transaction (Refuse); this marks
		// it for an executor that did not.
		if _, err := o.store.RefuseEffect(ctx, e.ID, refused.Reason, now); err != nil {
			log.Error().Err(err).Msg("Could not record refusal")
			return false
		}
		log.Info().Str("reason", refused.Reason).Msg("Effect refused when it was due")
		return true
	case err == nil:
		if err := o.complete(ctx, e.ID, result, now); err != nil {
			log.Error().Err(err).Msg("Effect made but not marked done; it will be retried")
			return false
		}
		log.Debug().Int("attempts", attempts).Msg("Effect made")
	case o.permanent(err) || o.lastAttempt(e.Kind, attempts):
		log.Error().Err(err).Int("attempts", attempts).Msg("Effect failed for good")
		if err := o.store.FailEffect(ctx, e.ID, err.Error(), now); err != nil {
			log.Error().Err(err).Msg("Could not record failure")
			return false
		}
	default:
		wait := Backoff(attempts)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > 0 {
			wait = ra.After
		} else if o.notReady(err) {
			wait = 200 * time.Millisecond
		}
		log.Warn().Err(err).Int("attempts", attempts).Dur("retry_in", wait).Msg("Effect failed; will retry")
		if err := o.store.RetryEffect(ctx, e.ID, err.Error(), now.Add(wait)); err != nil {
			log.Error().Err(err).Msg("Could not record retry")
		}
		return false
	}
	if o.OnDone != nil {
		o.OnDone(e, err)
	}
	return true
}

// complete marks an effect as made, keeping its result as JSON.
func (o *Outbox) complete(ctx context.Context, effectID int64, result any, now time.Time) error {
	var data json.RawMessage
	if result != nil {
		var err error
		if data, err = json.Marshal(result); err != nil {
			return fmt.Errorf("encode result of effect %d: %w", effectID, err)
		}
	}
	return o.store.CompleteEffect(ctx, effectID, data, now)
}

// lastAttempt reports whether an effect has had its last attempt.
func (o *Outbox) lastAttempt(kind string, attempts int) bool {
	if o.LastAttempt == nil {
		return false
	}
	n := o.LastAttempt(kind)
	return n > 0 && attempts >= n
}

func safeRun(ctx context.Context, ex Executor, e store.Effect) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("executor panicked: %v", r)
		}
	}()
	return ex(ctx, e)
}

// Backoff is the wait before retry n (1-based): exponential from one
// second, capped at ten minutes, with jitter so retries do not march in step.
func Backoff(n int) time.Duration {
	return backoff.Jitter(backoff.Exponential(n, time.Second, 10*time.Minute))
}

// CancelPending cancels a case's pending effects of the given kinds (in
// the case's own lane and its GitHub lane), rows queued under a kind's
// former name included, in the caller's transaction, and returns the
// kinds it cancelled, one per effect, by their names now. An effect
// already under way is not stopped by this: its executor decides again
// before it makes it.
func CancelPending(ctx context.Context, st *store.Store, caseID disclosure.CaseID, kinds []string, reason string, now time.Time) ([]string, error) {
	var names []string
	for _, k := range kinds {
		names = append(names, k)
		names = append(names, Former(k)...)
	}
	cancelled, err := st.CancelPendingEffects(ctx, caseID, names, reason, now)
	for i, k := range cancelled {
		cancelled[i] = Canonical(k)
	}
	return cancelled, err
}
