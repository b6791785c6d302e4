// Package ghsa drafts and manages a repository's security advisories on
// GitHub through go-github: the private area where reporter and team work.
package ghsa

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
	ghapp "github.com/google/go-github/v88/github" // the version ghinstallation's options use
	"github.com/jonboulle/clockwork"
)

// Config is how to reach the repositories.
type Config struct {
	APIURL string
	// Owner/Repo is the default repository (new chat cases' advisories).
	Owner, Repo string
	Token       string
	AppID       int64
	// InstallationID is the App's installation on Owner; other owners'
	// installations are looked up, one token per organization.
	InstallationID int64
	PrivateKey     []byte
	// Repositories (owner/name) and Organizations are what secbot works
	// on: an App's tokens ask for no more than these (an organization's
	// repositories, or only the named ones of any other owner).
	Repositories, Organizations []string
	HTTPClient                  *http.Client
	// Clock counts requests per hour (a real clock if nil).
	Clock clockwork.Clock
}

// Client manages advisories: the default repository's, or with In another
// one's. Its copies share one connection, rate-limit view and tokens.
type Client struct {
	gh          *github.Client
	inst        *installation
	owner, repo string
	shared      *shared
}

// installation is one credential and its rate limit: the token, or one
// App installation (GitHub counts each installation's requests on its own).
type installation struct {
	gh *github.Client // advisories: read and write
	// meta reads repositories' metadata (does one exist, is it private, is
	// a fork ready): in App mode a token of its own, as a fork is not one
	// of the repositories gh's token is limited to.
	meta *github.Client
	rate *RateStats
}

// shared is what every copy of a Client shares.
type shared struct {
	cfg       Config
	apiURL    *url.URL
	transport http.RoundTripper // below counting and authentication
	base      http.Client
	rates     *Rates

	mu      sync.Mutex
	byOwner map[string]*installation // App mode: one installation per owner
	app     *github.Client           // App mode: the App itself (JWT)
}

// New returns a client authenticated with a token or as a GitHub App.
func New(cfg Config) (*Client, error) {
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	apiURL := cfg.APIURL
	if apiURL == "" {
		apiURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("api_url: %w", err)
	}
	transport := base.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	sh := &shared{cfg: cfg, apiURL: u, transport: transport, base: *base, rates: &Rates{clock: cfg.Clock}, byOwner: map[string]*installation{}}
	switch {
	case cfg.AppID != 0:
		if _, err := ghinstallation.NewAppsTransport(transport, cfg.AppID, cfg.PrivateKey); err != nil {
			return nil, fmt.Errorf("GitHub App key: %w", err)
		}
	case cfg.Token != "":
	default:
		return nil, errors.New("GitHub needs a token or a GitHub App")
	}
	c := &Client{owner: cfg.Owner, repo: cfg.Repo, shared: sh}
	if cfg.AppID != 0 {
		inst, err := sh.installation(cfg.Owner, cfg.InstallationID)
		if err != nil {
			return nil, err
		}
		sh.byOwner[strings.ToLower(cfg.Owner)] = inst
		c.inst = inst
	} else {
		rate := sh.rates.add()
		gh := sh.client(bearer{token: cfg.Token, next: counting{next: transport, stats: rate}})
		c.inst = &installation{gh: gh, meta: gh, rate: rate}
	}
	c.gh = c.inst.gh
	return c, nil
}

func (sh *shared) client(rt http.RoundTripper) *github.Client {
	hc := sh.base
	hc.Transport = rt
	gh := github.NewClient(&hc)
	gh.BaseURL = sh.apiURL
	gh.UserAgent = "secbot"
	return gh
}

// installation makes the clients of an App installation on owner: their
// tokens ask only for what secbot needs.
func (sh *shared) installation(owner string, id int64) (*installation, error) {
	rate := sh.rates.add()
	rt := counting{next: sh.transport, stats: rate}
	token := func(opts *ghapp.InstallationTokenOptions) (*github.Client, error) {
		itr, err := ghinstallation.New(rt, sh.cfg.AppID, id, sh.cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("GitHub App key: %w", err)
		}
		itr.BaseURL = strings.TrimSuffix(sh.apiURL.String(), "/")
		itr.InstallationTokenOptions = opts
		return sh.client(itr), nil
	}
	gh, err := token(sh.scope(owner))
	if err != nil {
		return nil, err
	}
	meta, err := token(&ghapp.InstallationTokenOptions{Permissions: &ghapp.InstallationPermissions{Metadata: ghapp.Ptr("read")}})
	if err != nil {
		return nil, err
	}
	return &installation{gh: gh, meta: meta, rate: rate}, nil
}

// scope is what an installation token on owner asks for: the repository
// advisories permission (and metadata, which GitHub always grants), on a
// watched organization's repositories, or else only on the configured
// repositories of owner; never the installation's full scope.
func (sh *shared) scope(owner string) *ghapp.InstallationTokenOptions {
	opts := &ghapp.InstallationTokenOptions{Permissions: &ghapp.InstallationPermissions{
		RepositoryAdvisories: ghapp.Ptr("write"), Metadata: ghapp.Ptr("read"),
	}}
	if slices.ContainsFunc(sh.cfg.Organizations, func(o string) bool { return strings.EqualFold(o, owner) }) {
		return opts // any repository there may be the case's (`repo`)
	}
	var names []string
	add := func(full string) {
		o, name, ok := strings.Cut(full, "/")
		if ok && strings.EqualFold(o, owner) && !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
			names = append(names, name)
		}
	}
	add(sh.cfg.Owner + "/" + sh.cfg.Repo)
	for _, r := range sh.cfg.Repositories {
		add(r)
	}
	opts.Repositories = names
	return opts
}

// forOwner returns the credential for an owner's repositories: in App
// mode, its own installation (looked up once), so each organization has
// its own token and rate limit.
func (c *Client) forOwner(ctx context.Context, owner string) (*installation, error) {
	sh := c.shared
	if sh.cfg.AppID == 0 {
		return c.inst, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if inst, ok := sh.byOwner[strings.ToLower(owner)]; ok {
		return inst, nil
	}
	if sh.app == nil {
		atr, err := ghinstallation.NewAppsTransport(counting{next: sh.transport, stats: sh.rates.add()}, sh.cfg.AppID, sh.cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("GitHub App key: %w", err)
		}
		atr.BaseURL = strings.TrimSuffix(sh.apiURL.String(), "/")
		sh.app = sh.client(atr)
	}
	app := sh.app
	var found struct {
		ID int64 `json:"id"`
	}
	for _, kind := range []string{"orgs", "users"} {
		req, err := app.NewRequest(http.MethodGet, kind+"/"+url.PathEscape(owner)+"/installation", nil)
		if err != nil {
			return nil, err
		}
		if _, err = app.Do(ctx, req, &found); err == nil {
			break
		}
		var gerr *github.ErrorResponse
		if !errors.As(err, &gerr) || gerr.Response == nil || gerr.Response.StatusCode != http.StatusNotFound {
			return nil, classify(fmt.Errorf("look up the GitHub App's installation on %s: %w", owner, err))
		}
	}
	if found.ID == 0 {
		return nil, &Error{Kind: Operator, Status: http.StatusNotFound, Message: "the GitHub App is not installed on " + owner}
	}
	inst, err := sh.installation(owner, found.ID)
	if err != nil {
		return nil, err
	}
	sh.byOwner[strings.ToLower(owner)] = inst
	return inst, nil
}

// In returns the client for another repository (owner/name), sharing this
// one's connection and tokens.
func (c *Client) In(ctx context.Context, repository string) (*Client, error) {
	owner, name, ok := strings.Cut(repository, "/")
	if !ok {
		return nil, fmt.Errorf("repository %q is not owner/name", repository)
	}
	inst, err := c.forOwner(ctx, owner)
	if err != nil {
		return nil, err
	}
	return &Client{gh: inst.gh, inst: inst, owner: owner, repo: name, shared: c.shared}, nil
}

// Rate is what GitHub said of secbot's rate limits (one per credential),
// and how many requests were made in the last hour.
func (c *Client) Rate() *Rates { return c.shared.rates }

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Repository is owner/repo.
func (c *Client) Repository() string { return c.owner + "/" + c.repo }

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

// Mark is what a draft secbot makes carries in its description: the
// effect's secret nonce, in a comment GitHub does not render. It is never
// derived from anything another GitHub user can know.
func Mark(nonce string) string { return "\n\n<!-- secbot draft " + nonce + " -->" }

func (c *Client) create(ctx context.Context, body createRequest) (*Advisory, error) {
	var raw rawAdvisory
	if err := c.do(ctx, http.MethodPost, c.path(""), body, &raw); err != nil {
		return nil, err
	}
	return raw.advisory(), nil
}

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

func (c *Client) path(ghsaID string) string {
	p := fmt.Sprintf("repos/%s/%s/security-advisories", url.PathEscape(c.owner), url.PathEscape(c.repo))
	if ghsaID != "" {
		p += "/" + url.PathEscape(ghsaID)
	}
	return p
}

// do makes a request with go-github's own NewRequest and Do: v60 has no
// methods to get, create or update a repository security advisory.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.gh.NewRequest(method, path, body)
	if err != nil {
		return err
	}
	_, err = c.gh.Do(ctx, req, out)
	return classify(err)
}

// Kind classifies GitHub errors by what to do about them.
type Kind int

// What an error means for the caller.
const (
	Retryable   Kind = iota // network trouble, timeouts, 5xx: try again with backoff
	RateLimited             // wait RetryAfter, then try again
	User                    // a person's mistake: tell them, don't retry
	// Operator errors are the operator's to fix (credentials, permissions, the
	// repository): tell the team, keep retrying, mark nothing done.
	Operator
)

// Error is a classified GitHub error with a message fit for people.
type Error struct {
	Kind       Kind
	Status     int
	Message    string
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err may succeed later, and after how long
// at the least (zero: the caller's own backoff).
func IsRetryable(err error) (bool, time.Duration) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind != User, e.RetryAfter
	}
	return err != nil, 0
}

// classify turns go-github's errors into Errors.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	var rate *github.RateLimitError
	if errors.As(err, &rate) {
		return &Error{Kind: RateLimited, Status: http.StatusForbidden, Message: "GitHub's rate limit is exhausted", RetryAfter: time.Until(rate.Rate.Reset.Time), Err: err}
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		return &Error{Kind: RateLimited, Status: http.StatusForbidden, Message: "GitHub's secondary rate limit was hit", RetryAfter: abuse.GetRetryAfter(), Err: err}
	}
	var gerr *github.ErrorResponse
	if errors.As(err, &gerr) && gerr.Response != nil {
		status := gerr.Response.StatusCode
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusForbidden && gerr.Response.Header.Get("Retry-After") != "":
			// A secondary limit, however its message is worded.
			return &Error{Kind: RateLimited, Status: status, Message: "GitHub is rate-limiting secbot", RetryAfter: retryAfter(gerr.Response), Err: err}
		case status >= 500:
			return &Error{Kind: Retryable, Status: status, Message: "GitHub is failing", Err: err}
		case status == http.StatusUnauthorized:
			return &Error{Kind: Operator, Status: status, Message: "GitHub refused the token: it is wrong or expired (check the token or the GitHub App)", Err: err}
		case status == http.StatusForbidden:
			return &Error{Kind: Operator, Status: status, Message: "GitHub refused the token: it needs the repository's security advisories permission (read and write)", Err: err}
		case status == http.StatusNotFound:
			return &Error{Kind: Operator, Status: status, Message: "GitHub found no such repository or advisory: check [github] and that private vulnerability reporting is enabled", Err: err}
		default:
			msg := gerr.Message
			for _, e := range gerr.Errors {
				if e.Message != "" {
					msg += " " + e.Message
				}
			}
			return &Error{Kind: User, Status: status, Message: "GitHub refused: " + strings.TrimSpace(msg), Err: err}
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: Retryable, Message: "GitHub could not be reached", Err: err}
	}
	return &Error{Kind: Retryable, Message: "GitHub request failed", Err: err}
}

func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		return time.Duration(s) * time.Second
	}
	if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		return time.Until(time.Unix(reset, 0))
	}
	return 0
}
