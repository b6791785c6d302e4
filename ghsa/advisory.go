package ghsa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Advisory is what secbot needs of an advisory.
type Advisory struct {
	GHSAID             string   `json:"ghsa_id"`
	CVEID              string   `json:"cve_id"`
	HTMLURL            string   `json:"html_url"`
	Summary            string   `json:"summary"`
	Severity           string   `json:"severity"`
	State              string   `json:"state"`
	CollaboratingUsers []string `json:"-"`
	Vulnerabilities    []Vulnerability

	description string // to recognise secbot's own draft
	submitted   bool   // a private vulnerability report
	teams       int    // collaborating teams
}

type rawAdvisory struct {
	GHSAID             string          `json:"ghsa_id"`
	CVEID              *string         `json:"cve_id"`
	HTMLURL            string          `json:"html_url"`
	Summary            string          `json:"summary"`
	Severity           *string         `json:"severity"`
	State              string          `json:"state"`
	CollaboratingUsers []*github.User  `json:"collaborating_users"`
	CollaboratingTeams []any           `json:"collaborating_teams"`
	Vulnerabilities    []Vulnerability `json:"vulnerabilities"`
	Description        string          `json:"description"`
	Submission         *struct{}       `json:"submission"`
}

func (r *rawAdvisory) advisory() *Advisory {
	a := &Advisory{GHSAID: r.GHSAID, HTMLURL: r.HTMLURL, Summary: r.Summary, State: r.State, Vulnerabilities: r.Vulnerabilities,
		description: r.Description, submitted: r.Submission != nil, teams: len(r.CollaboratingTeams)}
	if r.CVEID != nil {
		a.CVEID = *r.CVEID
	}
	if r.Severity != nil {
		a.Severity = *r.Severity
	}
	for _, u := range r.CollaboratingUsers {
		a.CollaboratingUsers = append(a.CollaboratingUsers, u.GetLogin())
	}
	return a
}

// Package names an affected package.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name,omitempty"`
}

// Vulnerability is an affected package and its version ranges.
type Vulnerability struct {
	Package                Package `json:"package"`
	VulnerableVersionRange *string `json:"vulnerable_version_range"`
	PatchedVersions        *string `json:"patched_versions"`
}

// Credit names a person credited on the advisory.
type Credit struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// createRequest is the body of POST …/security-advisories. GitHub requires
// summary, description and vulnerabilities; a new advisory is a draft, so
// there is no state; severity and cvss_vector_string are exclusive.
type createRequest struct {
	Summary         string          `json:"summary"`
	Description     string          `json:"description"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
}

// Update is the body of PATCH …/security-advisories/{ghsa_id}: only the
// fields set are sent.
type Update struct {
	Summary            *string         `json:"summary,omitempty"`
	Description        *string         `json:"description,omitempty"`
	Vulnerabilities    []Vulnerability `json:"vulnerabilities,omitempty"`
	CWEIDs             []string        `json:"cwe_ids,omitempty"`
	Credits            []Credit        `json:"credits,omitempty"`
	Severity           *string         `json:"severity,omitempty"`
	CVSSVectorString   *string         `json:"cvss_vector_string,omitempty"`
	State              *string         `json:"state,omitempty"`
	CollaboratingUsers []string        `json:"collaborating_users,omitempty"`
}

// SummaryFor is the neutral summary of a case's advisory.
func SummaryFor(caseID string) string { return "Security report " + caseID }

// CreateDraft drafts the case's advisory: a neutral summary and
// description (no details: there are none yet) and a placeholder package
// until the team records what is affected. The description carries the
// create effect's secret nonce, by which a retry finds this draft again
// (FindOwnDraft); the team's public description replaces it.
func (c *Client) CreateDraft(ctx context.Context, caseID string, reportedAt time.Time, product, nonce string) (*Advisory, error) {
	body := createRequest{
		Summary:         SummaryFor(caseID),
		Description:     DescriptionFor(caseID, reportedAt) + Mark(nonce),
		Vulnerabilities: []Vulnerability{{Package: Package{Ecosystem: "other", Name: product}}},
	}
	adv, err := c.create(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("create advisory for %s: %w", caseID, err)
	}
	return adv, nil
}

// DescriptionFor is the neutral description of a case's advisory.
func DescriptionFor(caseID string, reportedAt time.Time) string {
	return fmt.Sprintf("Security report %s, received %s. Details are shared in the private discussion of this advisory.", caseID, reportedAt.UTC().Format("2006-01-02"))
}

func (c *Client) create(ctx context.Context, body createRequest) (*Advisory, error) {
	var raw rawAdvisory
	if err := c.do(ctx, http.MethodPost, c.path(""), body, &raw); err != nil {
		return nil, err
	}
	return raw.advisory(), nil
}

// Get returns an advisory.
func (c *Client) Get(ctx context.Context, ghsaID string) (*Advisory, error) {
	var raw rawAdvisory
	if err := c.do(ctx, http.MethodGet, c.path(ghsaID), nil, &raw); err != nil {
		return nil, fmt.Errorf("get advisory %s: %w", ghsaID, err)
	}
	return raw.advisory(), nil
}

// Update changes an advisory.
func (c *Client) Update(ctx context.Context, ghsaID string, u Update) (*Advisory, error) {
	var raw rawAdvisory
	if err := c.do(ctx, http.MethodPatch, c.path(ghsaID), u, &raw); err != nil {
		return nil, fmt.Errorf("update advisory %s: %w", ghsaID, err)
	}
	return raw.advisory(), nil
}

// AddCollaborator invites a GitHub user into the advisory's private
// discussion. An unknown login is an Error of kind User.
func (c *Client) AddCollaborator(ctx context.Context, ghsaID, login string) error {
	return c.changeCollaborators(ctx, ghsaID, login, true)
}

// RemoveCollaborator takes a GitHub user out of the advisory.
func (c *Client) RemoveCollaborator(ctx context.Context, ghsaID, login string) error {
	return c.changeCollaborators(ctx, ghsaID, login, false)
}

func (c *Client) changeCollaborators(ctx context.Context, ghsaID, login string, add bool) error {
	if add {
		if _, _, err := c.gh.Users.Get(ctx, login); err != nil {
			var gerr *github.ErrorResponse
			if errors.As(err, &gerr) && gerr.Response != nil && gerr.Response.StatusCode == http.StatusNotFound {
				return &Error{Kind: User, Status: http.StatusNotFound, Message: fmt.Sprintf("GitHub has no user named %q", login)}
			}
			return classify(fmt.Errorf("look up GitHub user: %w", err))
		}
	}
	adv, err := c.Get(ctx, ghsaID)
	if err != nil {
		return err
	}
	users := slices.DeleteFunc(slices.Clone(adv.CollaboratingUsers), func(u string) bool { return strings.EqualFold(u, login) })
	if add {
		users = append(users, login)
	} else if len(users) == len(adv.CollaboratingUsers) {
		return nil // not a collaborator
	}
	if users == nil {
		users = []string{}
	}
	body := map[string]any{"collaborating_users": users}
	if err := c.do(ctx, http.MethodPatch, c.path(ghsaID), body, nil); err != nil {
		return fmt.Errorf("update collaborators of %s: %w", ghsaID, err)
	}
	return nil
}

// ErrCVENeedsPublicRepo is returned when GitHub cannot take a CVE request.
var ErrCVENeedsPublicRepo = &Error{Kind: User, Status: http.StatusUnprocessableEntity, Message: "GitHub only takes CVE requests for public repositories; this one is private. Request a CVE from another CNA (e.g. MITRE) and record it on the advisory."}

// RequestCVE asks GitHub (a CNA) to assign a CVE to the advisory.
func (c *Client) RequestCVE(ctx context.Context, ghsaID string) error {
	repo, _, err := c.gh.Repositories.Get(ctx, c.owner, c.repo)
	if err != nil {
		return classify(fmt.Errorf("look up %s: %w", c.Repository(), err))
	}
	if repo.GetPrivate() {
		return ErrCVENeedsPublicRepo
	}
	_, err = c.gh.SecurityAdvisories.RequestCVE(ctx, c.owner, c.repo, ghsaID)
	var accepted *github.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		return classify(fmt.Errorf("request CVE for %s: %w", ghsaID, err))
	}
	return nil
}

// Publish publishes the advisory.
func (c *Client) Publish(ctx context.Context, ghsaID string) (*Advisory, error) {
	state := "published"
	return c.Update(ctx, ghsaID, Update{State: &state})
}
