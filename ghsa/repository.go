package ghsa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"
)

// CreateFork asks GitHub for the advisory's temporary private fork. GitHub
// makes it asynchronously: poll ForkReady until it exists.
func (c *Client) CreateFork(ctx context.Context, ghsaID string) (fullName, htmlURL string, err error) {
	repo, _, err := c.gh.SecurityAdvisories.CreateTemporaryPrivateFork(ctx, c.owner, c.repo, ghsaID)
	if err != nil {
		var accepted *github.AcceptedError
		if !errors.As(err, &accepted) {
			return "", "", classify(fmt.Errorf("create private fork of %s: %w", ghsaID, err))
		}
	}
	return repo.GetFullName(), repo.GetHTMLURL(), nil
}

// ForkReady reports whether the fork exists yet.
func (c *Client) ForkReady(ctx context.Context, fullName string) (bool, error) {
	owner, name, _ := strings.Cut(fullName, "/")
	_, _, err := c.inst.meta.Repositories.Get(ctx, owner, name)
	if err == nil {
		return true, nil
	}
	var gerr *github.ErrorResponse
	if errors.As(err, &gerr) && gerr.Response != nil && gerr.Response.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, classify(fmt.Errorf("check private fork %s: %w", fullName, err))
}

// CheckTarget checks that the client's repository can take the case's
// advisory: it exists as named (not renamed or moved away: GitHub would
// answer for another one), is no fork (a temporary private fork lives in
// the organization too) and is not archived. A name that fails is an
// Error of kind User: the command's answer, nothing drafted.
func (c *Client) CheckTarget(ctx context.Context) error {
	repo, _, err := c.inst.meta.Repositories.Get(ctx, c.owner, c.repo)
	if err != nil {
		var gerr *github.ErrorResponse
		if errors.As(err, &gerr) && gerr.Response != nil && gerr.Response.StatusCode == http.StatusNotFound {
			return &Error{Kind: User, Status: http.StatusNotFound, Message: fmt.Sprintf("GitHub has no repository %s that secbot can reach; the advisory stays where it is", c.Repository())}
		}
		return classify(fmt.Errorf("look up %s: %w", c.Repository(), err))
	}
	switch {
	case !strings.EqualFold(repo.GetFullName(), c.Repository()):
		return &Error{Kind: User, Message: fmt.Sprintf("%s is now %s on GitHub; name the repository as it is", c.Repository(), repo.GetFullName())}
	case repo.GetFork():
		return &Error{Kind: User, Message: fmt.Sprintf("%s is a fork; an advisory belongs in the repository it is about", c.Repository())}
	case repo.GetArchived():
		return &Error{Kind: User, Message: fmt.Sprintf("%s is archived; its advisories cannot change", c.Repository())}
	}
	return nil
}
