package handlers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/store"
)

// githubLogin is GitHub's rule for user names: alphanumerics and single
// hyphens, not at either end, at most 39 characters.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// ghsaID is GitHub's format of an advisory's ID: what lands in the team
// room and the database is only ever that.
var ghsaID = regexp.MustCompile(`^GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}$`)

// maxCredits is how many of a report's credits the team room is shown.
const maxCredits = 10

// creditsText is how the team reads a report's credits: the logins that
// are GitHub's format, with their type and state, at most maxCredits.
func creditsText(credits []chat.GitHubCredit) string {
	var parts []string
	for i, c := range credits {
		if i == maxCredits {
			parts = append(parts, fmt.Sprintf("and %d more on the advisory", len(credits)-i))
			break
		}
		if !githubLogin.MatchString(c.Login) {
			continue
		}
		what := c.Type
		if c.State != "" {
			what += ", " + c.State
		}
		parts = append(parts, c.Login+" ("+what+")")
	}
	return strings.Join(parts, "; ")
}

// gitHub is the actor of what happens on github.com, in the audit log.
const gitHub disclosure.Person = "github.com"

// HandleGitHubAdvisories opens a case for each private report (state
// triage) that no case has, and lets the domain decide on the state of the
// advisories of cases reported on GitHub. Each advisory commits on its
// own, so one that fails does not hold up the others; seen again, it
// changes nothing. The error is the first failure's.
func (h *Handlers) HandleGitHubAdvisories(ctx context.Context, seen []chat.GitHubAdvisory) error {
	var first error
	for _, a := range seen {
		if err := h.gitHubAdvisory(ctx, a); err != nil && first == nil {
			first = fmt.Errorf("advisory %s: %w", a.GHSAID, err)
		}
	}
	return first
}

func (h *Handlers) gitHubAdvisory(ctx context.Context, a chat.GitHubAdvisory) error {
	if !ghsaID.MatchString(a.GHSAID) {
		zerolog.Ctx(ctx).Warn().Msg("Ignoring an advisory whose ID is not GitHub's format")
		return nil
	}
	var opened *store.Case
	err := h.store.Tx(ctx, func(ctx context.Context) error {
		opened = nil // a retried transaction starts again
		cs, err := h.store.CaseByAdvisory(ctx, a.GHSAID)
		if errors.Is(err, store.ErrNotFound) {
			if a.State != "triage" || !githubLogin.MatchString(a.Reporter) {
				return nil // not a private report waiting for the team
			}
			opened, err = h.openFromGitHub(ctx, a)
			if err != nil {
				return err
			}
			crashpoint.Hit("github.report_before_commit")
			return nil
		}
		if err != nil {
			return err
		}
		if cs.GHSAID != a.GHSAID {
			return nil // the report of a case whose advisory moved on
		}
		c, err := h.domainCase(ctx, cs)
		if err != nil {
			return err
		}
		req := disclosure.Request{By: gitHub, Where: disclosure.Place{Kind: disclosure.Elsewhere}, Now: h.clock.Now(), Policy: h.Policy()}
		d := c.GitHubState(req, a.State)
		if d.Action == "" && !d.Changes() && len(d.Say) == 0 {
			return nil
		}
		return h.apply(ctx, chat.Message{Sender: gitHub}, cs, req, d)
	})
	if err == nil {
		h.kick()
		if opened != nil {
			zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Str("ghsa_id", a.GHSAID).Str("repository", a.Repository).Msg("Opened case for a GitHub private report")
		}
	}
	return err
}

// openFromGitHub opens the case of a private report: the reporter is the
// submitting GitHub user, who reads the advisory, and the clocks count
// from when they filed it.
func (h *Handlers) openFromGitHub(ctx context.Context, a chat.GitHubAdvisory) (*store.Case, error) {
	at := a.CreatedAt
	if now := h.clock.Now(); at.IsZero() || at.After(now) {
		at = now // a clock ahead of ours must not push the promises later
	}
	c, _, err := h.openCase(ctx, newCase{channel: disclosure.ChannelGitHub, reporter: disclosure.GitHubPerson(a.Reporter), at: at, report: &a,
		audit: "GitHub private report " + a.GHSAID + " in " + a.Repository})
	return c, err
}
