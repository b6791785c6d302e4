package ghsa

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/scheduler"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Effects makes the outbox's GitHub effects. Each is safe to repeat: it
// checks what the store (and, after a crash, GitHub) already has.
type Effects struct {
	Client    *Client
	Store     *store.Store
	Templates *templates.Set
	Clock     clockwork.Clock
	// Policy is the policy in force: GitHub trouble goes to its team room.
	Policy *disclosure.InForce
	// Product names the placeholder package of a new advisory.
	Product string
}

// errNoAdvisory means the advisory is still to be created (retry shortly).
var errNoAdvisory = errors.New("the case has no advisory yet")

// errForkPending means GitHub is still making the fork (poll again).
var errForkPending = errors.New("the private fork is not ready yet")

// Executors returns the GitHub effect makers, by kind.
func (e *Effects) Executors() map[string]scheduler.Executor {
	return map[string]scheduler.Executor{
		store.KindAdvisoryCreate:       e.wrap(e.create),
		store.KindAdvisoryCollaborator: e.wrap(e.collaborator),
		store.KindAdvisoryFork:         e.wrap(e.fork),
		store.KindAdvisoryForkReady:    e.wrap(e.forkReady),
		store.KindAdvisoryCVE:          e.wrap(e.cve),
		store.KindAdvisoryPublish:      e.wrap(e.publish),
		store.KindAdvisoryUpdate:       e.wrap(e.update),
	}
}

type step func(ctx context.Context, eff store.Effect, p store.AdvisoryEffect, c *store.Case) error

// wrap decodes the effect, loads its case, runs it, then keeps the team
// informed of GitHub's health: told once when it starts failing, once when
// it is back. User errors are answered in the room and end the effect.
func (e *Effects) wrap(fn step) scheduler.Executor {
	return func(ctx context.Context, eff store.Effect) (any, error) {
		var p store.AdvisoryEffect
		if err := eff.Decode(&p); err != nil {
			return nil, err
		}
		caseID, err := disclosure.ParseCaseID(p.CaseID)
		if err != nil {
			return nil, err
		}
		c, err := e.Store.Case(ctx, caseID)
		if err != nil {
			return nil, err
		}
		err = fn(ctx, eff, p, c)
		if errors.Is(err, errNoAdvisory) {
			// The outbox's own backoff: the advisory may take GitHub hours.
			return nil, err
		}
		if errors.Is(err, errForkPending) {
			return nil, &scheduler.RetryAfterError{Err: err, After: Backoff(eff.Attempts)}
		}
		var ghErr *Error
		if errors.As(err, &ghErr) && ghErr.Kind == User {
			zerolog.Ctx(ctx).Warn().Int("status", ghErr.Status).Str("github_error", ghErr.Message).Msg("GitHub refused")
			return nil, e.Store.Tx(ctx, func(ctx context.Context) error {
				return e.say(ctx, p, templates.GitHubRefused{CaseID: p.CaseID, Message: ghErr.Message})
			})
		}
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("GitHub failing")
			if txErr := e.Store.Tx(ctx, func(ctx context.Context) error { return e.failing(ctx, err) }); txErr != nil {
				return nil, txErr
			}
			if retry, after := IsRetryable(err); retry && after > 0 {
				return nil, &scheduler.RetryAfterError{Err: err, After: after}
			}
			return nil, err
		}
		return nil, e.Store.Tx(ctx, e.recovered)
	}
}

const service = "github"

func (e *Effects) failing(ctx context.Context, cause error) error {
	first, err := e.Store.ServiceFailing(ctx, service, cause.Error(), e.Clock.Now())
	if err != nil || !first {
		return err
	}
	failing := templates.GitHubFailing{Repository: e.Client.Repository()}
	var ghErr *Error
	if errors.As(cause, &ghErr) && ghErr.Kind == Operator {
		failing.Reason = ghErr.Message
	}
	return e.tellTeam(ctx, failing)
}

func (e *Effects) recovered(ctx context.Context) error {
	was, err := e.Store.ServiceRecovered(ctx, service)
	if err != nil || !was {
		return err
	}
	return e.tellTeam(ctx, templates.GitHubRecovered{Repository: e.Client.Repository()})
}

// tellTeam posts in the team room of the policy in force.
func (e *Effects) tellTeam(ctx context.Context, data templates.Data) error {
	return e.tellTeamAbout(ctx, data)
}

func (e *Effects) tellTeamAbout(ctx context.Context, data templates.Data) error {
	room := e.Policy.Get().TeamRoom
	if room == "" {
		return nil
	}
	return scheduler.Say(ctx, e.Store, e.Templates, store.GitHubStatusLane, store.SendEffect{To: store.Target{Room: room}}, data, e.Clock.Now(), false)
}

// say answers in the room the request came from, or the case room.
func (e *Effects) say(ctx context.Context, p store.AdvisoryEffect, data templates.Data) error {
	to := store.Target{Room: p.ReplyIn}
	if p.ReplyIn == "" {
		to = store.Target{CaseRoomOf: p.CaseID}
	}
	return scheduler.Say(ctx, e.Store, e.Templates, p.CaseID, store.SendEffect{To: to, ReplyTo: p.ReplyTo}, data, e.Clock.Now(), false)
}

func (e *Effects) create(ctx context.Context, eff store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID != "" {
		return nil
	}
	var adv *Advisory
	var err error
	if eff.Attempts > 1 {
		// An earlier attempt may have got through before a crash: adopt it.
		if adv, err = e.Client.FindDraftByCaseID(ctx, p.CaseID); err != nil {
			return err
		}
	}
	if adv == nil {
		if adv, err = e.Client.CreateDraft(ctx, p.CaseID, c.CreatedAt, e.Product); err != nil {
			return err
		}
		crashpoint.Hit("ghsa.created_not_recorded")
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		if err := e.Store.SetAdvisory(ctx, c.ID, adv.GHSAID, adv.HTMLURL, e.Clock.Now()); err != nil {
			return err
		}
		return e.say(ctx, store.AdvisoryEffect{CaseID: p.CaseID}, templates.AdvisoryCreated{CaseID: p.CaseID, GHSAID: adv.GHSAID, URL: adv.HTMLURL, Email: c.Reporter.Channel() == disclosure.Email, Prefix: e.Policy.Get().CommandPrefix})
	})
}

func (e *Effects) collaborator(ctx context.Context, _ store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	if p.Remove {
		if err := e.Client.RemoveCollaborator(ctx, c.GHSAID, p.Login); err != nil {
			return err
		}
		return e.Store.Tx(ctx, func(ctx context.Context) error {
			return e.say(ctx, p, templates.AdvisoryCollaboratorRemoved{Login: p.Login, CaseID: p.CaseID})
		})
	}
	if err := e.Client.AddCollaborator(ctx, c.GHSAID, p.Login); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryCollaboratorAdded{Login: p.Login, URL: c.GHSAURL, CaseID: p.CaseID})
	})
}

func (e *Effects) fork(ctx context.Context, _ store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	if c.ForkName != "" {
		return nil
	}
	name, url, err := e.Client.CreateFork(ctx, c.GHSAID)
	if err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		if err := e.Store.SetFork(ctx, c.ID, name, url, e.Clock.Now()); err != nil {
			return err
		}
		// GitHub makes the fork in the background: poll until it exists.
		// In a lane of its own: the poll can take minutes, and publishing
		// must not wait behind it.
		_, err := e.Store.Enqueue(ctx, store.GitHubPollLane(c.ID), store.KindAdvisoryForkReady, p, e.Clock.Now().Add(2*time.Second))
		return err
	})
}

// forkPolls bounds how long secbot waits for GitHub to make a fork.
const forkPolls = 12

func (e *Effects) forkReady(ctx context.Context, eff store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	ready, err := e.Client.ForkReady(ctx, c.ForkName)
	if err != nil {
		return err
	}
	if !ready {
		if eff.Attempts >= forkPolls {
			return &Error{Kind: User, Message: fmt.Sprintf("GitHub has not finished the private fork %s yet; check the advisory page", c.ForkName)}
		}
		return errForkPending
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryForkReady{CaseID: p.CaseID, URL: c.ForkURL})
	})
}

func (e *Effects) cve(ctx context.Context, _ store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	if err := e.Client.RequestCVE(ctx, c.GHSAID); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryCVERequested{CaseID: p.CaseID, GHSAID: c.GHSAID})
	})
}

func (e *Effects) publish(ctx context.Context, _ store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	adv, err := e.Client.Publish(ctx, c.GHSAID)
	if err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		now := e.Clock.Now()
		if err := e.Store.SetFact(ctx, c.ID, disclosure.FactCVE, adv.CVEID, now); err != nil {
			return err
		}
		if adv.Severity != "" && c.Severity == "" {
			if err := e.Store.SetFact(ctx, c.ID, disclosure.FactSeverity, adv.Severity, now); err != nil {
				return err
			}
		}
		if err := e.say(ctx, p, templates.AdvisoryPublished{CaseID: p.CaseID, GHSAID: adv.GHSAID, URL: adv.HTMLURL}); err != nil {
			return err
		}
		// Published: the domain decides what follows (the stage, the clocks,
		// the announcement).
		_, err := e.Store.Enqueue(ctx, p.CaseID, store.KindPublished, store.AnnounceEffect{CaseID: p.CaseID, ReplyIn: p.ReplyIn, ReplyTo: p.ReplyTo}, now)
		return err
	})
}

func (e *Effects) update(ctx context.Context, _ store.Effect, p store.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	var u Update
	if p.Affected != "" || p.Patched != "" {
		v := Vulnerability{Package: Package{Ecosystem: "other", Name: e.Product}}
		if p.Affected != "" {
			v.VulnerableVersionRange = &p.Affected
		}
		if p.Patched != "" {
			v.PatchedVersions = &p.Patched
		}
		u.Vulnerabilities = []Vulnerability{v}
	}
	if p.Severity != "" {
		u.Severity = &p.Severity
	}
	u.CWEIDs = p.CWEs
	if p.Credit != "" {
		u.Credits = []Credit{{Login: p.Credit, Type: "finder"}}
	}
	if p.Summary != "" {
		u.Summary = &p.Summary
	}
	if p.Description != "" {
		u.Description = &p.Description
	}
	if _, err := e.Client.Update(ctx, c.GHSAID, u); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryUpdated{CaseID: p.CaseID, GHSAID: c.GHSAID})
	})
}

// Backoff is the wait after attempt n: two seconds doubled n times, capped
// at a minute (GitHub makes forks in seconds to minutes).
func Backoff(n int) time.Duration {
	return backoff.Exponential(n+1, 2*time.Second, time.Minute)
}

// LastAttempt is how many times a GitHub effect is tried before it is
// parked as failed (about 15 hours at the outbox's backoff, an hour and a
// half of fork polling), so that its lane goes on.
const LastAttempt = 100

// Parked tells the team room that GitHub work for a case was given up after
// its last attempt, and how to try again.
func (e *Effects) Parked(ctx context.Context, eff store.Effect, cause error) error {
	var p store.AdvisoryEffect
	if err := eff.Decode(&p); err != nil || p.CaseID == "" {
		return err
	}
	reason := "GitHub kept failing"
	var ghErr *Error
	if errors.As(cause, &ghErr) {
		reason = ghErr.Message
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.tellTeamAbout(ctx, templates.GitHubParked{CaseID: p.CaseID, What: eff.Kind, Attempts: eff.Attempts, Reason: reason})
	})
}
