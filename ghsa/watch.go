package ghsa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
)

// Watcher polls the watched repositories (or whole organizations) for
// their advisories: private vulnerability reports (state triage) and state
// changes. Each feed is asked conditionally (If-None-Match), so an
// unchanged answer is a 304 that costs no rate limit, and sorted by
// updated, newest first, so only pages with changes are read.
type Watcher struct {
	Client *Client
	// Repositories are watched one by one, unless their owner is one of
	// Organizations, which are watched whole with one feed each.
	Repositories, Organizations []string
	Every                       time.Duration
	Clock                       clockwork.Clock
	// In is the core's inbound side (chat.Dispatch): it gets each changed
	// page's advisories; an error leaves the feed as it was, so the next
	// poll reads the page again.
	In interface {
		GitHubAdvisories(ctx context.Context, seen []chat.GitHubAdvisory) error
	}
	// Health is told after each round: nil when every feed answered, else
	// the first error (the team is told once, and once on recovery).
	Health func(ctx context.Context, err error)

	feeds []*feed
}

// feed is one listing and how far the watcher read it.
type feed struct {
	owner, path string
	etag        string
	// high is the newest updated_at handled: later pages older than it
	// have nothing new.
	high time.Time
}

// perPage is GitHub's largest page.
const perPage = 100

// maxPages bounds the pages one feed reads in one poll (and a search for
// secbot's own draft): 5,000 advisories, more than a repository or an
// organization has, so that an answer whose pages never end costs a
// bounded number of requests.
const maxPages = 50

func (w *Watcher) init() {
	if w.feeds != nil {
		return
	}
	orgs := map[string]bool{}
	for _, o := range w.Organizations {
		orgs[strings.ToLower(o)] = true
		w.feeds = append(w.feeds, &feed{owner: o, path: "orgs/" + url.PathEscape(o) + "/security-advisories"})
	}
	for _, r := range w.Repositories {
		owner, name, _ := strings.Cut(r, "/")
		if !orgs[strings.ToLower(owner)] {
			w.feeds = append(w.feeds, &feed{owner: owner, path: "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/security-advisories"})
		}
	}
}

// Run polls every Every until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	for {
		w.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-w.Clock.After(w.Every):
		}
	}
}

// Poll makes one round over every feed. Within GitHub's limits, each
// installation's on its own: while one's primary limit is used up or a
// secondary limit asked it to wait, its feeds wait; the others go on.
func (w *Watcher) Poll(ctx context.Context) {
	w.init()
	var first error
	waited := false
	for _, f := range w.feeds {
		err := w.pollFeed(ctx, f)
		if errors.Is(err, errWaiting) {
			waited = true
			continue
		}
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("feed", f.path).Msg("Watching GitHub failed")
			if first == nil {
				first = err
			}
		}
	}
	if w.Health != nil && (first != nil || !waited) {
		// A feed still waiting for its limit is not working again yet.
		w.Health(ctx, first)
	}
}

// errWaiting is a feed not asked this round: its credential's rate limit
// is used up, or GitHub asked it to wait.
var errWaiting = errors.New("waiting for GitHub's rate limit")

// rawSeen is the part of an advisory the watcher reads: never the summary
// or description, which are the reporter's words.
type rawSeen struct {
	GHSAID     string          `json:"ghsa_id"`
	URL        string          `json:"url"`
	HTMLURL    string          `json:"html_url"`
	State      string          `json:"state"`
	CreatedAt  time.Time       `json:"-"`
	UpdatedAt  time.Time       `json:"-"`
	Created    string          `json:"created_at"`
	Updated    string          `json:"updated_at"`
	Author     *github.User    `json:"author"`
	Submission *struct{}       `json:"submission"`
	Credits    []rawCreditUser `json:"credits_detailed"`
}

type rawCreditUser struct {
	User  *github.User `json:"user"`
	Type  string       `json:"type"`
	State string       `json:"state"`
}

// repository is owner/name from the advisory's API URL.
func (r rawSeen) repository() string {
	parts := strings.Split(r.URL, "/repos/")
	if len(parts) != 2 {
		return ""
	}
	owner, rest, _ := strings.Cut(parts[1], "/")
	name, _, _ := strings.Cut(rest, "/")
	return owner + "/" + name
}

// reporter is the GitHub user who submitted a private report: its
// author, whom GitHub authenticated. Never a credit: the submitter writes
// the credits themselves, naming whomever they like.
func (r rawSeen) reporter() string { return r.Author.GetLogin() }

// creditWord is GitHub's word for a credit's type or state.
var creditWord = regexp.MustCompile(`^[a-z_]{1,32}$`)

// credits are the report's credits as the submitter gave them, to be
// shown as what they are: claims, each with its type and state.
func (r rawSeen) credits() []chat.GitHubCredit {
	var out []chat.GitHubCredit
	for _, c := range r.Credits {
		if c.User == nil || !creditWord.MatchString(c.Type) || c.State != "" && !creditWord.MatchString(c.State) {
			continue
		}
		out = append(out, chat.GitHubCredit{Login: c.User.GetLogin(), Type: c.Type, State: c.State})
	}
	return out
}

func (w *Watcher) pollFeed(ctx context.Context, f *feed) error {
	inst, err := w.Client.forOwner(ctx, f.owner)
	if err != nil {
		return err
	}
	if until := inst.rate.Exhausted(); !until.IsZero() {
		zerolog.Ctx(ctx).Warn().Time("until", until).Str("owner", f.owner).Msg("GitHub's rate limit is used up; watching waits")
		return errWaiting
	}
	if inst.rate.held() {
		return errWaiting
	}
	next := f.path + "?sort=updated&direction=desc&per_page=" + fmt.Sprint(perPage)
	// Only page one is asked conditionally: newest change first, it changes
	// whenever anything does.
	ifNoneMatch, etag, pageOne := f.etag, "", true
	var seen []chat.GitHubAdvisory
	high := f.high
	var stopped error // why paging ended before the last page
	for pages := 0; next != ""; pages++ {
		if pages == maxPages {
			stopped = &Error{Kind: Operator, Message: fmt.Sprintf("GitHub's listing %s has more than %d pages: only the newest %d advisories were read", f.path, maxPages, maxPages*perPage)}
			break
		}
		page, link, tag, notModified, err := w.get(ctx, inst.gh, next, ifNoneMatch)
		if err != nil {
			var ghErr *Error
			if errors.As(err, &ghErr) && ghErr.Kind == RateLimited {
				// Back off this installation: GitHub asked it to slow down.
				inst.rate.hold(w.Clock.Now().Add(max(ghErr.RetryAfter, time.Minute)))
			}
			return err
		}
		if notModified {
			return nil // page one unchanged: nothing changed anywhere
		}
		if pageOne {
			etag, pageOne, ifNoneMatch = tag, false, ""
		}
		older := false
		for _, a := range page {
			if a.UpdatedAt.After(high) {
				high = a.UpdatedAt
			}
			if !f.high.IsZero() && a.UpdatedAt.Before(f.high) {
				older = true // this and what follows was handled before
				continue
			}
			s := chat.GitHubAdvisory{GHSAID: a.GHSAID, URL: a.HTMLURL, Repository: a.repository(), State: a.State, CreatedAt: a.CreatedAt}
			if a.Submission != nil {
				s.Reporter, s.Credits = a.reporter(), a.credits()
			}
			seen = append(seen, s)
		}
		next = ""
		if !older && link != "" {
			if next = w.Client.shared.apiPath(link); next == "" {
				// Never followed: the token would go with it.
				stopped = &Error{Kind: Operator, Message: fmt.Sprintf("GitHub's next page of %s is not under %s: not followed (check [github] api_url)", f.path, w.Client.shared.apiURL)}
			}
		}
	}
	if len(seen) > 0 {
		if err := w.In.GitHubAdvisories(ctx, seen); err != nil {
			return fmt.Errorf("handle advisories of %s: %w", f.path, err)
		}
	}
	f.etag, f.high = etag, high
	return stopped
}

// get reads one page, conditionally when etag is set.
func (w *Watcher) get(ctx context.Context, gh *github.Client, path, etag string) (page []rawSeen, next, tag string, notModified bool, err error) {
	req, err := gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return nil, "", "", false, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := gh.Client().Do(req.WithContext(ctx))
	if err != nil {
		return nil, "", "", false, classify(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, "", etag, true, nil
	}
	if err := github.CheckResponse(resp); err != nil {
		return nil, "", "", false, classify(err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", "", false, classify(err)
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", "", false, fmt.Errorf("GitHub's advisory list: %w", err)
	}
	for i := range page {
		page[i].CreatedAt, _ = time.Parse(time.RFC3339, page[i].Created)
		page[i].UpdatedAt, _ = time.Parse(time.RFC3339, page[i].Updated)
	}
	return page, nextLink(resp.Header.Get("Link")), resp.Header.Get("ETag"), false, nil
}

// nextLink is the rel="next" URL of a Link header, as given.
func nextLink(header string) string {
	for _, part := range strings.Split(header, ",") {
		target, rel, ok := strings.Cut(part, ";")
		if !ok || !slices.Contains(strings.Fields(strings.ReplaceAll(rel, ";", " ")), `rel="next"`) {
			continue
		}
		return strings.Trim(strings.TrimSpace(target), "<>")
	}
	return ""
}

// apiPath is link relative to the API's base URL, or "" when link is
// anywhere else (another scheme, host, port or path): requests carry the
// token, so they go to the configured API only.
func (sh *shared) apiPath(link string) string {
	u, err := url.Parse(link)
	if err != nil || u.User != nil || u.Fragment != "" {
		return ""
	}
	api := sh.apiURL
	if !strings.EqualFold(u.Scheme, api.Scheme) || !strings.EqualFold(u.Host, api.Host) || !strings.HasPrefix(u.EscapedPath(), api.EscapedPath()) {
		return ""
	}
	rel := strings.TrimPrefix(u.EscapedPath(), api.EscapedPath())
	if rel == "" || strings.HasPrefix(rel, "/") || slices.Contains(strings.Split(u.Path, "/"), "..") {
		return ""
	}
	if u.RawQuery != "" {
		rel += "?" + u.RawQuery
	}
	return rel
}
