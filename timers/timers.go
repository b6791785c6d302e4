package timers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Policy is what the timers act on: the policy in force, which a reload
// swaps whole for the handlers and the GitHub effects too.
type Policy = disclosure.Policy

// LateAfter is how far past its time a firing must be to be called late
// in its text (secbot was down when it fell due).
const LateAfter = 3 * time.Second

// Timers fires due reminders and escalation steps.
type Timers struct {
	store     *store.Store
	clock     clockwork.Clock
	templates *templates.Set
	log       zerolog.Logger
	kick      func()
	policy    *disclosure.InForce

	// retention is how long finished work is kept (0: forever); the tick
	// prunes what is older once an hour.
	retention time.Duration
	lastPrune time.Time
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
// already fired fires again); kick wakes the outbox.
func NewTimers(st *store.Store, clock clockwork.Clock, tmpl *templates.Set, policy *disclosure.InForce, log zerolog.Logger, kick func()) *Timers {
	if kick == nil {
		kick = func() {}
	}
	return &Timers{store: st, clock: clock, templates: tmpl, log: log, kick: kick, policy: policy}
}

// Policy returns the policy in force.
func (t *Timers) Policy() Policy { return *t.policy.Get() }

// Start schedules the tick on gocron every second (so a deadline fires
// within a second of falling due), running once at once to catch up on
// what fell due while secbot was down. It returns the running scheduler.
func (t *Timers) Start(ctx context.Context) (gocron.Scheduler, error) {
	s, err := gocron.NewScheduler(gocron.WithClock(t.clock), gocron.WithLogger(gocronLogger{t.log}))
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

// embargoReminders sends the due reminders of embargo ends (7 days, 1 day,
// the day) to the handler and the team room, each once.
func (t *Timers) embargoReminders(ctx context.Context) (int, error) {
	due, err := t.store.DueEmbargoReminders(ctx, t.clock.Now())
	if err != nil || len(due) == 0 {
		return 0, err
	}
	p := t.Policy()
	fired := 0
	for _, r := range due {
		err := t.store.Tx(ctx, func(ctx context.Context) error {
			ok, err := t.store.MarkEmbargoReminderSent(ctx, r)
			if err != nil || !ok {
				return err
			}
			c, err := t.store.Case(ctx, r.CaseID)
			if err != nil {
				return err
			}
			fired++
			loc := p.Calendar.Location
			if loc == nil {
				loc = time.UTC
			}
			now := t.clock.Now()
			if c.Stage.Finished() {
				return nil // published or closed: the embargo has nothing left to guard
			}
			data := templates.EmbargoReminder{CaseID: c.ID.String(), End: r.End.In(loc), Late: now.Sub(r.At) > LateAfter, AdvisoryURL: advisoryLink(c),
				Today: r.End.In(loc).Format("2006-01-02") == now.In(loc).Format("2006-01-02")}
			lane := store.TimersLane(c.ID)
			if c.Handler != "" {
				if err := t.dm(ctx, lane, c.Handler, data, now); err != nil {
					return err
				}
			}
			return t.send(ctx, lane, teamRoom(&p), data, now, nil)
		})
		if err != nil {
			return fired, err
		}
	}
	return fired, nil
}

// NewDeadline plans a fresh deadline counted from `from`.
func NewDeadline(caseID disclosure.CaseID, kind disclosure.DeadlineKind, from time.Time, p Policy) store.Deadline {
	d := store.Deadline{CaseID: caseID, Kind: kind, StartedAt: from, DueAt: p.SLA.Due(kind, from, p.Calendar)}
	if !p.SLA.RemindBefore.IsZero() {
		if at := p.SLA.RemindAt(d.DueAt, p.Calendar); at.After(from) && at.Before(d.DueAt) {
			d.RemindAt = at
		}
	}
	d.NextAt, _ = NextFiring(d, p)
	return d
}

// Firing says what a deadline does next.
type Firing int

// What a deadline can do next.
const (
	FireNothing Firing = iota
	FireReminder
	FireEscalation
)

// NextFiring returns when a deadline next fires and what it does then: the
// reminder if one is due and not sent, else the next escalation step.
func NextFiring(d store.Deadline, p Policy) (time.Time, Firing) {
	if d.Met() {
		return time.Time{}, FireNothing
	}
	if !d.Reminded && !d.RemindAt.IsZero() {
		return d.RemindAt, FireReminder
	}
	at, _, ok := p.Ladder.StepAt(d.DueAt, d.LadderStep, p.SLA.RepeatEvery, p.Calendar)
	if !ok {
		return time.Time{}, FireNothing
	}
	return at, FireEscalation
}

// fire makes one firing of d: it records the progress and the messages in
// one transaction, guarded so that a stale or repeated firing does nothing.
func (t *Timers) fire(ctx context.Context, d store.Deadline) (bool, error) {
	p := t.Policy()
	now := t.clock.Now()
	at, what := NextFiring(d, p)
	var fired bool
	err := t.store.Tx(ctx, func(ctx context.Context) error {
		c, err := t.store.Case(ctx, d.CaseID)
		if err != nil {
			return err
		}
		if c.Stage.Finished() {
			// The domain says this case's clocks are stopped (published,
			// rejected, closed): whatever the row says, nothing fires.
			_, err := t.store.AdvanceDeadline(ctx, d, d.Reminded, d.LadderStep, time.Time{}, "")
			return err
		}
		next := d
		switch what {
		case FireReminder:
			next.Reminded = true
		case FireEscalation:
			next.LadderStep++
		default:
			// Nothing left to do (the ladder is empty): stop the timer.
			_, err := t.store.AdvanceDeadline(ctx, d, d.Reminded, d.LadderStep, time.Time{}, "")
			return err
		}
		nextAt, _ := NextFiring(next, p)
		ok, err := t.store.AdvanceDeadline(ctx, d, next.Reminded, next.LadderStep, nextAt, "")
		if err != nil || !ok {
			return err // stale: met, moved or fired meanwhile
		}
		fired = true
		if what == FireReminder {
			return t.remind(ctx, c, d, at, now, p)
		}
		return t.escalate(ctx, c, d, at, now, p)
	})
	if err != nil {
		return false, fmt.Errorf("fire %s deadline of %s: %w", d.Kind, d.CaseID, err)
	}
	if fired {
		t.log.Info().Stringer("case_id", d.CaseID).Str("deadline", string(d.Kind)).Int("step", d.LadderStep).Bool("reminder", what == FireReminder).Msg("Deadline fired")
	}
	return fired, nil
}

func teamRoom(p *Policy) outbox.Target {
	if p.TeamRoom == "" {
		return outbox.Target{}
	}
	return outbox.Target{Room: p.TeamRoom}
}

func (t *Timers) remind(ctx context.Context, c *store.Case, d store.Deadline, at, now time.Time, p Policy) error {
	lane := store.TimersLane(c.ID)
	data := templates.Reminder{CaseID: c.ID.String(), Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt), MeantFor: p.Local(at), Late: now.Sub(at) > LateAfter, AdvisoryURL: advisoryLink(c)}
	if c.Handler != "" {
		return t.dm(ctx, lane, c.Handler, data, now)
	}
	return t.send(ctx, lane, teamRoom(&p), data, now, nil)
}

func (t *Timers) escalate(ctx context.Context, c *store.Case, d store.Deadline, at, now time.Time, p Policy) error {
	lane := store.TimersLane(c.ID)
	_, step, _ := p.Ladder.StepAt(d.DueAt, d.LadderStep, p.SLA.RepeatEvery, p.Calendar)
	repeat, late, byReporter := d.LadderStep >= len(p.Ladder), now.Sub(at) > LateAfter, d.EscalatedBy != ""
	role, who := p.Contact(step)
	var err error
	if step.Notify.Role == "team" || who == "" {
		err = t.send(ctx, lane, teamRoom(&p), templates.EscalationTeam{CaseID: c.ID.String(), Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt), MeantFor: p.Local(at),
			Late: late, Repeat: repeat, ByReporter: byReporter, AdvisoryURL: advisoryLink(c)}, now, p.Team)
	} else {
		err = t.dm(ctx, lane, who, templates.EscalationDM{CaseID: c.ID.String(), Promise: d.Kind.Label(), Role: role, Handler: c.Handler.String(),
			DueAt: p.Local(d.DueAt), MeantFor: p.Local(at), Late: late, Repeat: repeat, ByReporter: byReporter, AdvisoryURL: advisoryLink(c)}, now)
	}
	if err != nil {
		return err
	}
	if d.LadderStep == 0 && !byReporter && c.Channel != disclosure.ChannelGitHub {
		// The reporter need not chase anyone: say that secbot did.
		chased := templates.ReporterChased{Promise: d.Kind.Label(), DueAt: p.Local(d.DueAt)}
		if err := t.send(ctx, lane, outbox.Target{CaseRoomOf: c.ID.String()}, chased, now, nil); err != nil {
			return err
		}
		if c.Reporter.Channel() == disclosure.ChannelEmail {
			// An email reporter is not in the room: the note is mailed.
			if err := outbox.MailReporter(ctx, t.store, t.templates, c.ID, c.Reporter, chased, now, false); err != nil {
				return err
			}
		}
	}
	return t.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: c.ID.String(), Action: "escalation", Detail: fmt.Sprintf("%s step %d", d.Kind, d.LadderStep+1), Allowed: true})
}

// advisoryLink is the advisory of a case reported on GitHub, where its
// reporter is: every reminder points the team there.
func advisoryLink(c *store.Case) string {
	if c.Channel == disclosure.ChannelGitHub {
		return c.GHSAURL
	}
	return ""
}

// dm records a direct message to user: the direct chat is opened first if
// there is none yet.
func (t *Timers) dm(ctx context.Context, lane string, user disclosure.Person, data templates.Data, now time.Time) error {
	if user == "" {
		return nil
	}
	if _, err := outbox.Enqueue(ctx, t.store, lane, outbox.KindOpenDM, outbox.OpenDMEffect{User: user}, now); err != nil {
		return err
	}
	return t.send(ctx, lane, outbox.Target{DMWith: user}, data, now, []disclosure.Person{user})
}

func (t *Timers) send(ctx context.Context, lane string, to outbox.Target, data templates.Data, now time.Time, mentions []disclosure.Person) error {
	if to == (outbox.Target{}) {
		return nil // no team room configured
	}
	return outbox.Say(ctx, t.store, t.templates, lane, outbox.SendEffect{To: to, Mentions: mentions}, data, now, false)
}

type gocronLogger struct{ log zerolog.Logger }

func (l gocronLogger) Debug(msg string, args ...any) { l.log.Debug().Fields(args).Msg(msg) }
func (l gocronLogger) Info(msg string, args ...any)  { l.log.Info().Fields(args).Msg(msg) }
func (l gocronLogger) Warn(msg string, args ...any)  { l.log.Warn().Fields(args).Msg(msg) }
func (l gocronLogger) Error(msg string, args ...any) { l.log.Error().Fields(args).Msg(msg) }

// TimersLane is the outbox lane of a case's reminders and escalations.
func TimersLane(caseID disclosure.CaseID) string { return store.TimersLane(caseID) }
