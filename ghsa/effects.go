package ghsa

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/backoff"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/outbox"
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
func (e *Effects) Executors() map[string]outbox.Executor {
	return map[string]outbox.Executor{
		outbox.KindAdvisoryCreate:       e.wrap(e.create),
		outbox.KindAdvisoryCollaborator: e.wrap(e.collaborator),
		outbox.KindAdvisoryFork:         e.wrap(e.fork),
		outbox.KindAdvisoryForkReady:    e.wrap(e.forkReady),
		outbox.KindAdvisoryCVE:          e.wrap(e.cve),
		outbox.KindAdvisoryPublish:      e.wrap(e.publish),
		outbox.KindAdvisoryUpdate:       e.wrap(e.update),
		outbox.KindAdvisoryState:        e.wrap(e.state),
		outbox.KindAdvisoryMove:         e.wrap(e.move),
	}
}

type step func(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error

// wrap decodes the effect, loads its case, runs it, then keeps the team
// informed of GitHub's health: told once when it starts failing, once when
// it is back. User errors are answered in the room and end the effect.
func (e *Effects) wrap(fn step) outbox.Executor {
	return func(ctx context.Context, eff store.Effect) (any, error) {
		var p outbox.AdvisoryEffect
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
		if errors.As(err, new(*outbox.RefusedError)) {
			return nil, err // decided again and refused: nothing was sent
		}
		if errors.Is(err, errNoAdvisory) {
			// The outbox's own backoff: the advisory may take GitHub hours.
			return nil, err
		}
		if errors.Is(err, errForkPending) {
			return nil, &outbox.RetryAfterError{Err: err, After: Backoff(eff.Attempts)}
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
				return nil, &outbox.RetryAfterError{Err: err, After: after}
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

// watchService is watching for private reports, told apart from the
// advisory work so each failure and recovery is told once.
const watchService = "github-watch"

// WatchHealth tells the team room once when watching for private reports
// starts failing (with what to fix, when it is the operator's), and once
// when it works again.
func (e *Effects) WatchHealth(ctx context.Context, cause error) {
	err := e.Store.Tx(ctx, func(ctx context.Context) error {
		if cause == nil {
			was, err := e.Store.ServiceRecovered(ctx, watchService)
			if err != nil || !was {
				return err
			}
			return e.tellTeam(ctx, templates.GitHubWatchRecovered{})
		}
		first, err := e.Store.ServiceFailing(ctx, watchService, cause.Error(), e.Clock.Now())
		if err != nil || !first {
			return err
		}
		var failing templates.GitHubWatchFailing
		var ghErr *Error
		if errors.As(cause, &ghErr) && (ghErr.Kind == Operator || ghErr.Kind == RateLimited) {
			failing.Reason = ghErr.Message
		}
		return e.tellTeam(ctx, failing)
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not record GitHub watching's health")
	}
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
	return outbox.Say(ctx, e.Store, e.Templates, store.GitHubStatusLane, outbox.SendEffect{To: outbox.Target{Room: room}}, data, e.Clock.Now(), false)
}

// say answers in the room the request came from, or the case room.
func (e *Effects) say(ctx context.Context, p outbox.AdvisoryEffect, data templates.Data) error {
	to := outbox.Target{Room: p.ReplyIn}
	if p.ReplyIn == "" {
		to = outbox.Target{CaseRoomOf: p.CaseID}
	}
	return outbox.Say(ctx, e.Store, e.Templates, p.CaseID, outbox.SendEffect{To: to, ReplyTo: p.ReplyTo}, data, e.Clock.Now(), false)
}

func (e *Effects) create(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID != "" {
		return nil
	}
	fresh, err := e.nonce(ctx, eff, &p)
	if err != nil {
		return err
	}
	var adv *Advisory
	if eff.Attempts > 1 && !fresh {
		// An earlier attempt may have got through before a crash: adopt
		// the draft it made, recognised by the effect's secret, never one
		// that merely carries the case ID. It may be going through still:
		// GitHub finishes a request whose client died, and a standby
		// retries within a second of the kill. Let it finish, then look.
		if err := backoff.Sleep(ctx, retrySettle); err != nil {
			return err
		}
		if adv, err = e.Client.FindOwnDraft(ctx, p.Nonce, nil); err != nil {
			return err
		}
		if adv != nil && !e.free(ctx, adv.GHSAID, c.ID) {
			adv = nil
		}
	}
	adopted := adv != nil
	if adv == nil {
		if adv, err = e.Client.CreateDraft(ctx, p.CaseID, c.CreatedAt, e.Product, p.Nonce); err != nil {
			return err
		}
		crashpoint.Hit("ghsa.created_not_recorded")
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		now := e.Clock.Now()
		if err := e.Store.SetAdvisory(ctx, c.ID, adv.GHSAID, adv.HTMLURL, e.Client.Repository(), now); err != nil {
			return err
		}
		if adopted {
			if err := e.adopted(ctx, p.CaseID, adv, e.Client.Repository(), now); err != nil {
				return err
			}
		}
		return e.say(ctx, outbox.AdvisoryEffect{CaseID: p.CaseID}, templates.AdvisoryCreated{CaseID: p.CaseID, GHSAID: adv.GHSAID, URL: adv.HTMLURL, Email: c.Reporter.Channel() == disclosure.ChannelEmail, Prefix: e.Policy.Get().CommandPrefix})
	})
}

// retrySettle is how long a retried draft waits for an earlier attempt,
// cut off by a crash or a timeout, to finish at GitHub before it looks for
// that attempt's draft.
var retrySettle = 2 * time.Second // a var so that tests need not wait

// nonce makes sure the effect has its secret before anything is sent to
// GitHub: an effect recorded without one (by an older version, or a
// command) gets one now, in its outbox row, so that a retry knows it. It
// reports whether the secret is new (no earlier attempt can have used it).
func (e *Effects) nonce(ctx context.Context, eff store.Effect, p *outbox.AdvisoryEffect) (bool, error) {
	if p.Nonce != "" {
		return false, nil
	}
	p.Nonce = outbox.NewNonce()
	if err := e.Store.Tx(ctx, func(ctx context.Context) error { return outbox.SetPayload(ctx, e.Store, eff.ID, p) }); err != nil {
		return false, fmt.Errorf("record the effect's secret: %w", err)
	}
	return true, nil
}

// free reports whether no other case has the advisory: one advisory
// belongs to one case (the store's unique index says so too).
func (e *Effects) free(ctx context.Context, ghsaID string, caseID disclosure.CaseID) bool {
	other, err := e.Store.CaseByAdvisory(ctx, ghsaID)
	return errors.Is(err, store.ErrNotFound) || err == nil && other.ID == caseID
}

// adopted audits that a retry took the draft an earlier attempt made, and
// names it in the team room.
func (e *Effects) adopted(ctx context.Context, caseID string, adv *Advisory, repository string, now time.Time) error {
	if err := e.Store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: caseID, Action: "advisory.adopted",
		Detail: adv.GHSAID + " in " + repository + ", made by an earlier attempt", Allowed: true}); err != nil {
		return err
	}
	return e.tellTeam(ctx, templates.AdvisoryAdopted{CaseID: caseID, GHSAID: adv.GHSAID, URL: adv.HTMLURL, Repository: repository})
}

// redecide asks the domain, right before GitHub is asked, whether the
// case as it is now still allows the effect: refused, the effect ends as
// refused, audited, and the team room is told why (a *RefusedError).
func (e *Effects) redecide(ctx context.Context, eff store.Effect, cs *store.Case, q disclosure.Queued) error {
	return outbox.Redecide(ctx, e.Store, e.Templates, eff, cs, q, e.Policy.Get(), e.Clock.Now())
}

func (e *Effects) collaborator(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if err := e.redecide(ctx, eff, c, disclosure.Queued{Kind: disclosure.QueuedCollaborator, Who: p.For, Login: p.Login, Remove: p.Remove}); err != nil {
		return err
	}
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	if p.Remove {
		if err := cl.RemoveCollaborator(ctx, c.GHSAID, p.Login); err != nil {
			return err
		}
		return e.Store.Tx(ctx, func(ctx context.Context) error {
			return e.say(ctx, p, templates.AdvisoryCollaboratorRemoved{Login: p.Login, CaseID: p.CaseID})
		})
	}
	if err := cl.AddCollaborator(ctx, c.GHSAID, p.Login); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryCollaboratorAdded{Login: p.Login, URL: c.GHSAURL, CaseID: p.CaseID})
	})
}

func (e *Effects) fork(ctx context.Context, _ store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	if c.ForkName != "" {
		return nil
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	name, url, err := cl.CreateFork(ctx, c.GHSAID)
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
		_, err := outbox.Enqueue(ctx, e.Store, store.GitHubPollLane(c.ID), outbox.KindAdvisoryForkReady, p, e.Clock.Now().Add(2*time.Second))
		return err
	})
}

// forkPolls bounds how long secbot waits for GitHub to make a fork.
const forkPolls = 12

func (e *Effects) forkReady(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	ready, err := cl.ForkReady(ctx, c.ForkName)
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

func (e *Effects) cve(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if err := e.redecide(ctx, eff, c, disclosure.Queued{Kind: disclosure.QueuedCVE}); err != nil {
		return err
	}
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	if err := cl.RequestCVE(ctx, c.GHSAID); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryCVERequested{CaseID: p.CaseID, GHSAID: c.GHSAID})
	})
}

func (e *Effects) publish(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	// Decided again at every attempt: an embargo proposed or agreed, or a
	// rejection, since the publish was queued stops it here.
	if err := e.redecide(ctx, eff, c, disclosure.Queued{Kind: disclosure.QueuedPublish, Force: p.Force}); err != nil {
		return err
	}
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	adv, err := cl.Publish(ctx, c.GHSAID)
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
		_, err := outbox.Enqueue(ctx, e.Store, p.CaseID, outbox.KindPublished, handlers.AnnounceEffect{CaseID: p.CaseID, ReplyIn: p.ReplyIn, ReplyTo: p.ReplyTo, Force: p.Force}, now)
		return err
	})
}

func (e *Effects) update(ctx context.Context, _ store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	var u Update
	if p.Affected != "" || p.Patched != "" {
		// The package is the advisory's repository, wherever it moved.
		v := Vulnerability{Package: Package{Ecosystem: "other", Name: cl.product(e.Product)}}
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
	if _, err := cl.Update(ctx, c.GHSAID, u); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryUpdated{CaseID: p.CaseID, GHSAID: c.GHSAID})
	})
}

// product is the placeholder package of the client's repository: the
// configured product for the default repository, else the repository's
// name.
func (c *Client) product(product string) string {
	if c.owner == c.shared.cfg.Owner && c.repo == c.shared.cfg.Repo {
		return product
	}
	return c.repo
}

// clientFor is the client of the repository the case's advisory is in.
func (e *Effects) clientFor(ctx context.Context, c *store.Case) (*Client, error) {
	if c.GHSARepo == "" || strings.EqualFold(c.GHSARepo, e.Client.Repository()) {
		return e.Client, nil
	}
	return e.Client.In(ctx, c.GHSARepo)
}

// state changes the advisory's state: a claimed private report is
// accepted (draft), a rejected one closed. Repeating it is harmless.
func (e *Effects) state(ctx context.Context, _ store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" {
		return errNoAdvisory
	}
	cl, err := e.clientFor(ctx, c)
	if err != nil {
		return err
	}
	adv, err := cl.Update(ctx, c.GHSAID, Update{State: &p.State})
	if err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, p, templates.AdvisoryStateChanged{CaseID: p.CaseID, GHSAID: adv.GHSAID, URL: c.GHSAURL, State: adv.State})
	})
}

// move drafts the case's advisory in p.Repository with its collaborators
// and public text, records it, then closes the old one (p.FromGHSA in
// p.From). Each step is safe to repeat: a retry adopts the draft an earlier
// attempt made (by the effect's secret), and skips to the collaborators
// and closing once the new one is recorded.
func (e *Effects) move(ctx context.Context, eff store.Effect, p outbox.AdvisoryEffect, c *store.Case) error {
	if c.GHSAID == "" || p.FromGHSA == "" {
		return errNoAdvisory
	}
	from, err := e.Client.In(ctx, p.From)
	if err != nil {
		return err
	}
	to, err := e.Client.In(ctx, p.Repository)
	if err != nil {
		return err
	}
	old, err := from.Get(ctx, p.FromGHSA)
	if err != nil {
		return err
	}
	// Who the new draft is shared with: the old one's collaborators and
	// the reporter, nobody else.
	users := slices.Clone(old.CollaboratingUsers)
	if c.ReporterGitHub != "" && !slices.ContainsFunc(users, func(u string) bool { return strings.EqualFold(u, c.ReporterGitHub) }) {
		users = append(users, c.ReporterGitHub)
	}
	summary, description := SummaryFor(p.CaseID), DescriptionFor(p.CaseID, c.CreatedAt)
	if c.PublicSummary != "" {
		summary = c.PublicSummary
	}
	if c.PublicDescription != "" {
		description = c.PublicDescription
	}
	if c.GHSAID == p.FromGHSA {
		fresh, err := e.nonce(ctx, eff, &p)
		if err != nil {
			return err
		}
		var adv *Advisory
		if eff.Attempts > 1 && !fresh {
			// Nobody is added before the draft is recorded: one with
			// collaborators is not the one this effect made. An earlier
			// attempt's draft may still be in the making (see create).
			if err := backoff.Sleep(ctx, retrySettle); err != nil {
				return err
			}
			if adv, err = to.FindOwnDraft(ctx, p.Nonce, nil); err != nil {
				return err
			}
			if adv != nil && !e.free(ctx, adv.GHSAID, c.ID) {
				adv = nil
			}
		}
		adopted := adv != nil
		if adv == nil {
			// Only into a repository that is really there as named.
			if err := to.CheckTarget(ctx); err != nil {
				return err
			}
			vulns := old.Vulnerabilities
			if len(vulns) == 0 {
				vulns = []Vulnerability{{Package: Package{Ecosystem: "other", Name: to.product(e.Product)}}}
			}
			// Marked with the effect's secret until recorded; the mark is
			// taken out below, before anyone is added.
			if adv, err = to.create(ctx, createRequest{Summary: summary, Description: description + Mark(p.Nonce), Vulnerabilities: vulns}); err != nil {
				return fmt.Errorf("move advisory of %s: %w", p.CaseID, err)
			}
			crashpoint.Hit("ghsa.moved_not_recorded")
		}
		err = e.Store.Tx(ctx, func(ctx context.Context) error {
			now := e.Clock.Now()
			if err := e.Store.SetAdvisory(ctx, c.ID, adv.GHSAID, adv.HTMLURL, p.Repository, now); err != nil {
				return err
			}
			if adopted {
				if err := e.adopted(ctx, p.CaseID, adv, p.Repository, now); err != nil {
					return err
				}
			}
			return e.Store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: p.CaseID, Action: "repo.moved", Detail: p.FromGHSA + " in " + p.From + " → " + adv.GHSAID + " in " + p.Repository, Allowed: true})
		})
		if err != nil {
			return err
		}
		c.GHSAID, c.GHSAURL = adv.GHSAID, adv.HTMLURL
	}
	// Recorded: the text without the mark, and the collaborators (safe to
	// repeat).
	u := Update{Description: &description}
	if len(users) > 0 {
		u.CollaboratingUsers = users
	}
	if _, err := to.Update(ctx, c.GHSAID, u); err != nil {
		return err
	}
	closed := "closed"
	if _, err := from.Update(ctx, p.FromGHSA, Update{State: &closed}); err != nil {
		return err
	}
	return e.Store.Tx(ctx, func(ctx context.Context) error {
		return e.say(ctx, outbox.AdvisoryEffect{CaseID: p.CaseID}, templates.AdvisoryMoved{CaseID: p.CaseID, GHSAID: c.GHSAID, URL: c.GHSAURL, From: p.From, To: p.Repository, OldGHSAID: p.FromGHSA})
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
	var p outbox.AdvisoryEffect
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
