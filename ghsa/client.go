// Package ghsa is secbot's GitHub side, through go-github: it drafts and
// manages the security advisories (the private area where reporter and
// team work), runs the outbox's GitHub effects, and watches repositories
// for private reports that become cases.
package ghsa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
