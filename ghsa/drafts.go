package ghsa

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Mark is what a draft secbot makes carries in its description: the
// effect's secret nonce, in a comment GitHub does not render. It is never
// derived from anything another GitHub user can know.
func Mark(nonce string) string { return "\n\n<!-- secbot draft " + nonce + " -->" }

// FindOwnDraft returns the draft an earlier attempt of an effect made,
// or nil: a draft whose description carries the effect's nonce (Mark), and
// that is still only secbot's: no private report's submission, no team,
// and no collaborators but those in allowed (what the effect itself adds).
// Anything else is someone else's advisory, never adopted.
func (c *Client) FindOwnDraft(ctx context.Context, nonce string, allowed []string) (*Advisory, error) {
	if len(nonce) < 16 {
		return nil, nil // no secret, nothing to recognise our own by
	}
	mark := Mark(nonce)
	opt := &github.ListRepositorySecurityAdvisoriesOptions{State: "draft", ListCursorOptions: github.ListCursorOptions{PerPage: 100}}
	for range maxPages {
		list, resp, err := c.gh.SecurityAdvisories.ListRepositorySecurityAdvisories(ctx, c.owner, c.repo, opt)
		if err != nil {
			return nil, classify(fmt.Errorf("list draft advisories: %w", err))
		}
		for _, a := range list {
			if !strings.Contains(a.GetDescription(), mark) {
				continue
			}
			adv, err := c.Get(ctx, a.GetGHSAID())
			if err != nil {
				return nil, err
			}
			if adv.ours(mark, allowed) {
				return adv, nil
			}
		}
		if resp.After == "" {
			return nil, nil
		}
		opt.ListCursorOptions.After = resp.After
	}
	return nil, nil
}

// ours reports whether an advisory is a draft secbot made with this mark
// and that nobody else joined.
func (a *Advisory) ours(mark string, allowed []string) bool {
	if a.State != "draft" || a.submitted || a.teams > 0 || !strings.Contains(a.description, mark) {
		return false
	}
	for _, u := range a.CollaboratingUsers {
		if !slices.ContainsFunc(allowed, func(v string) bool { return strings.EqualFold(u, v) }) {
			return false
		}
	}
	return true
}
