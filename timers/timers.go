package timers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
)

// Policy is what the timers act on: the policy in force, which a reload
// swaps whole for the handlers and the GitHub effects too.
type Policy = disclosure.Policy

// Applier applies the domain's decisions on what the timers found due, in
// the caller's transaction, as a command's decision is applied (the
// handlers). Each first claims what is due (false: it was already fired,
// met or moved, and nothing is applied).
type Applier interface {
	ApplyFiring(ctx context.Context, due store.Deadline, cs *store.Case, d disclosure.Decision, now time.Time) (bool, error)
	ApplyEmbargoReminder(ctx context.Context, due store.EmbargoReminder, cs *store.Case, d disclosure.Decision, now time.Time) (bool, error)
}

// Timers finds due reminders, escalation steps and embargo reminders, asks
// the domain what each does, and has the decision applied.
type Timers struct {
	store  *store.Store
	clock  clockwork.Clock
	apply  Applier
	log    zerolog.Logger
	kick   func()
	policy *disclosure.InForce

	// retention is how long finished work is kept (0: forever); the tick
	// prunes what is older once an hour.
	retention time.Duration
	lastPrune time.Time

	// Elector, if set, says whether this instance may tick (gocron's
	// distributed elector: the office of the active instance).
	Elector gocron.Elector
}

// PruneEvery is how often the tick prunes finished work.
const PruneEvery = time.Hour

// SetRetention sets how long finished outbox rows and the prunable
// handled-event IDs (chatter's) are kept; other handled IDs are kept for
// good. Call it before Start.
func (t *Timers) SetRetention(d time.Duration) { t.retention = d }

// prune drops finished work older than the retention, at most once per
// PruneEvery, so the file stops growing.
func (t *Timers) prune(ctx context.Context) error {
	now := t.clock.Now()
	if t.retention <= 0 || now.Sub(t.lastPrune) < PruneEvery {
		return nil
	}
	before := now.Add(-t.retention)
	if err := t.store.ForgetHandledBefore(ctx, before); err != nil {
		return err
	}
	n, err := t.store.PruneOutboxBefore(ctx, before)
	if err != nil {
		return err
	}
	t.lastPrune = now
	t.log.Info().Int64("outbox_rows", n).Time("before", before).Msg("Pruned finished work")
	return nil
}

// NewTimers returns the deadline timers, firing under the policy in force
// (a reload replaces it; ladder progress is in the database, so nothing
// already fired fires again); apply applies what the domain decides, kick
// wakes the outbox.
func NewTimers(st *store.Store, clock clockwork.Clock, policy *disclosure.InForce, apply Applier, log zerolog.Logger, kick func()) *Timers {
	if kick == nil {
		kick = func() {}
	}
	return &Timers{store: st, clock: clock, apply: apply, log: log, kick: kick, policy: policy}
}

// Policy returns the policy in force.
func (t *Timers) Policy() Policy { return *t.policy.Get() }

// Start schedules the tick on gocron every second (so a deadline fires
// within a second of falling due), running once at once to catch up on
// what fell due while secbot was down. It returns the running timers.
func (t *Timers) Start(ctx context.Context) (gocron.Scheduler, error) {
	options := []gocron.SchedulerOption{gocron.WithClock(t.clock), gocron.WithLogger(gocronLogger{t.log})}
	if t.Elector != nil {
		// A backstop to the office: a tick runs only while this instance
		// holds it (the store's fencing refuses what it would write anyway).
		options = append(options, gocron.WithDistributedElector(t.Elector))
	}
	s, err := gocron.NewScheduler(options...)
	if err != nil {
		return nil, err
	}
	_, err = s.NewJob(gocron.DurationJob(time.Second), gocron.NewTask(func() {
		if _, err := t.Tick(ctx); err != nil && ctx.Err() == nil {
			t.log.Error().Err(err).Msg("Deadline tick failed")
		}
	}), gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithStartAt(gocron.WithStartImmediately()), gocron.WithName("deadlines"))
	if err != nil {
		return nil, err
	}
	s.Start()
	return s, nil
}

// Tick fires everything due now, earliest first, and returns how many
// firings it made. A deadline that fell due several times over while secbot
// was down fires each step once, in order.
func (t *Timers) Tick(ctx context.Context) (int, error) {
	fired := 0
	for {
		due, err := t.store.DueDeadlines(ctx, t.clock.Now(), 256)
		if err != nil {
			return fired, err
		}
		if len(due) == 0 {
			break
		}
		for _, d := range due {
			ok, err := t.fire(ctx, *d)
			if err != nil {
				return fired, err
			}
			if ok {
				fired++
			}
		}
	}
	n, err := t.embargoReminders(ctx)
	fired += n
	if fired > 0 {
		t.kick()
	}
	if err != nil {
		return fired, err
	}
	return fired, t.prune(ctx)
}

// embargoReminders makes the due reminders of embargo ends (7 days, 1 day,
// the day), each once: the domain says who is told.
func (t *Timers) embargoReminders(ctx context.Context) (int, error) {
	due, err := t.store.DueEmbargoReminders(ctx, t.clock.Now())
	if err != nil || len(due) == 0 {
		return 0, err
	}
	p := t.policy.Get()
	fired := 0
	for _, r := range due {
		made := false
		err := t.store.Tx(ctx, func(ctx context.Context) error {
			cs, c, err := t.domainCase(ctx, r.CaseID)
			if err != nil {
				return err
			}
			now := t.clock.Now()
			// Set on every attempt: a retried transaction starts again.
			made, err = t.apply.ApplyEmbargoReminder(ctx, r, cs, c.RemindEmbargo(r.At, r.End, p, now), now)
			return err
		})
		if err != nil {
			return fired, err
		}
		if made {
			fired++
		}
	}
	return fired, nil
}

func (t *Timers) domainCase(ctx context.Context, id disclosure.CaseID) (*store.Case, *disclosure.Case, error) {
	cs, err := t.store.Case(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c, err := t.store.DomainCase(ctx, cs)
	return cs, c, err
}

// domainDeadline is a due deadline as the domain decides its firing.
func domainDeadline(d store.Deadline) disclosure.Deadline {
	dd := d.Domain()
	dd.EscalatedBy = d.EscalatedBy
	return dd
}

// fire makes one firing of d: the domain decides it on the case as it is,
// and the decision is applied in one transaction, guarded so that a stale
// or repeated firing does nothing.
func (t *Timers) fire(ctx context.Context, d store.Deadline) (bool, error) {
	p := t.policy.Get()
	now := t.clock.Now()
	var fired bool
	var what disclosure.Firing
	err := t.store.Tx(ctx, func(ctx context.Context) error {
		cs, c, err := t.domainCase(ctx, d.CaseID)
		if err != nil {
			return err
		}
		var dec disclosure.Decision
		what, dec = c.Fire(domainDeadline(d), p, now)
		ok, err := t.apply.ApplyFiring(ctx, d, cs, dec, now)
		fired = ok && what != disclosure.FireNothing
		return err
	})
	if err != nil {
		return false, fmt.Errorf("fire %s deadline of %s: %w", d.Kind, d.CaseID, err)
	}
	if fired {
		t.log.Info().Stringer("case_id", d.CaseID).Str("deadline", string(d.Kind)).Int("step", d.LadderStep).Bool("reminder", what == disclosure.FireReminder).Msg("Deadline fired")
	}
	return fired, nil
}

type gocronLogger struct{ log zerolog.Logger }

func (l gocronLogger) Debug(msg string, args ...any) { l.log.Debug().Fields(args).Msg(msg) }
func (l gocronLogger) Info(msg string, args ...any)  { l.log.Info().Fields(args).Msg(msg) }
func (l gocronLogger) Warn(msg string, args ...any)  { l.log.Warn().Fields(args).Msg(msg) }
func (l gocronLogger) Error(msg string, args ...any) { l.log.Error().Fields(args).Msg(msg) }

// TimersLane is the outbox lane of a case's reminders and escalations.
func TimersLane(caseID disclosure.CaseID) string { return store.TimersLane(caseID) }
