// Package ghsatest is a stand-in for GitHub's REST API, for secbot's tests
// and demo: it keeps repository security advisories in memory and checks
// every request against GitHub's official OpenAPI description (trimmed to
// the endpoints secbot uses, see scripts/openapi), answering what GitHub
// would reject with GitHub's own error shape.
package ghsatest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed testdata/github-openapi.json
var description []byte

// Options set up the stand-in's world.
type Options struct {
	// Owner/Repo is the first repository; Repositories (owner/name) are
	// more. An owner is an organization whose advisories can be listed.
	Owner, Repo  string
	Repositories []string
	// Public makes the repository public (CVE requests need that).
	Public bool
	// Users are the GitHub logins that exist.
	Users []string
	// Token is the bearer token every request must carry; InstallationToken
	// replaces it once a GitHub App asked for one.
	Token string
	// ForkDelay is how long a temporary private fork takes to appear.
	ForkDelay time.Duration
	// Now is the stand-in's clock for the times it records (time.Now if
	// nil), so a test with a fake clock can measure from created_at.
	Now func() time.Time
	// Installations are the GitHub App's installation IDs by owner.
	Installations map[string]int64
}

// Fault is an injected answer: a status (with headers and body), or a
// delay before the real answer.
type Fault struct {
	Status  int
	Headers map[string]string
	Body    string
	Delay   time.Duration
	// Completes makes a delayed request go through even if its client
	// gave up (a timeout, or died) during the delay, as GitHub goes on
	// with a request whose connection closed. Started, if set, is closed
	// when the request arrives, Done once it was carried out.
	Completes     bool
	Started, Done chan struct{}
	// For, if set ("POST /repos/o/r/security-advisories"), keeps the
	// fault for the first request of that method and path; others pass it.
	For string
}

// Server is the running stand-in.
type Server struct {
	opts   Options
	router routers.Router
	srv    *httptest.Server

	mu         sync.Mutex
	repos      map[string]bool // full names, lower case
	advisories map[string]map[string]any
	repoOf     map[string]string // GHSA ID → owner/name
	order      []string
	forks      map[string]time.Time // full name → when it exists
	faults     []Fault
	violations []string
	requests   []Request
	appTokens  map[string]*tokenScope // token → what it was issued for
	tokenAsks  []TokenRequest
	rateLeft   int
	rateReset  time.Time
}

// Request is one request the stand-in answered.
type Request struct {
	Method, Path, Query string
	Status              int
	// Token is the credential it carried (the App's tokens differ by owner).
	Token string
}

// TokenRequest is what a GitHub App asked of an installation token.
type TokenRequest struct {
	Installation int64
	Repositories []string
	Permissions  map[string]string
}

// tokenScope is what an installation token reaches: its owner's
// repositories (only those named, if any) with its permissions (all, if
// none were asked for).
type tokenScope struct {
	owner       string
	repos       []string
	permissions map[string]string
}

// TokenRequests lists what installation tokens were asked for, in order.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokenAsks)
}

// RateLimit is the primary rate limit the stand-in counts down, per hour.
const RateLimit = 5000

// New starts the stand-in on 127.0.0.1 (a random port if addr is "").
func New(opts Options, addr string) (*Server, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(description)
	if err != nil {
		return nil, fmt.Errorf("load GitHub's description: %w", err)
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, router: router, advisories: map[string]map[string]any{}, repoOf: map[string]string{}, forks: map[string]time.Time{},
		appTokens: map[string]*tokenScope{}, repos: map[string]bool{}}
	for _, r := range append([]string{opts.Owner + "/" + opts.Repo}, opts.Repositories...) {
		s.repos[strings.ToLower(r)] = true
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	return s, nil
}

// URL is the API's base URL (with a trailing slash).
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close stops the stand-in.
func (s *Server) Close() { s.srv.Close() }

// Inject queues faults, answered in order to the next requests.
func (s *Server) Inject(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// Violations lists requests that GitHub's description rejects.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Requests counts the requests of a method whose path starts with prefix.
func (s *Server) Requests(method, prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// Log returns every request answered so far, in order.
func (s *Server) Log() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Responses counts the answers of a status (0: any) to requests of a
// method (""; any) whose path starts with prefix.
func (s *Server) Responses(method, prefix string, status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

// Report is a private vulnerability report, as a GitHub user files it
// with "Report a vulnerability".
type Report struct {
	// Repository is owner/name (the first repository if empty).
	Repository string
	// Reporter is the submitting user's login.
	Reporter string
	// Summary and Description are the reporter's words.
	Summary, Description string
	// CreatedAt is when it was filed (now if zero).
	CreatedAt time.Time
	// Credits are the credits the reporter gave (themselves as reporter,
	// accepted, if nil).
	Credits []Credit
}

// Credit is a credit on a report, as its submitter gave it.
type Credit struct{ Login, Type, State string }

// AddReport files a private vulnerability report: an advisory in state
// triage authored by the reporter. It returns its GHSA ID.
func (s *Server) AddReport(r Report) string {
	if r.Repository == "" {
		r.Repository = s.opts.Owner + "/" + s.opts.Repo
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.opts.Now()
	}
	adv := s.newAdvisory(r.Repository, map[string]any{"summary": r.Summary, "description": r.Description}, r.CreatedAt)
	adv["state"] = "triage"
	adv["author"] = user(r.Reporter)
	adv["submission"] = map[string]any{"accepted": false}
	if r.Credits == nil {
		r.Credits = []Credit{{Login: r.Reporter, Type: "reporter", State: "accepted"}}
	}
	credits := []any{}
	for _, c := range r.Credits {
		credits = append(credits, map[string]any{"user": user(c.Login), "type": c.Type, "state": c.State})
	}
	adv["credits_detailed"] = credits
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store(r.Repository, adv)
	return adv["ghsa_id"].(string)
}

// SetState changes an advisory's state as a maintainer would on
// github.com (accept a report: draft; close; publish).
func (s *Server) SetState(ghsaID, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	adv, ok := s.advisories[ghsaID]
	if !ok {
		panic("ghsatest: no advisory " + ghsaID)
	}
	s.setState(adv, state)
	adv["updated_at"] = s.timestamp()
}

func (s *Server) setState(adv map[string]any, state any) {
	adv["state"] = state
	now := s.timestamp()
	switch state {
	case "published":
		adv["published_at"] = now
	case "closed":
		adv["closed_at"] = now
	case "draft":
		if adv["submission"] != nil {
			adv["submission"] = map[string]any{"accepted": true}
		}
	}
}

func (s *Server) timestamp() string { return s.opts.Now().UTC().Format(time.RFC3339) }

// Advisory is a snapshot of a stored advisory.
type Advisory struct {
	GHSAID             string
	Repository         string
	Summary            string
	Description        string
	State              string
	CVEID              string
	Severity           string
	CollaboratingUsers []string
	Credits            []string
	CWEs               []string
	Vulnerabilities    []map[string]any
}

// Advisories returns the stored advisories, oldest first.
func (s *Server) Advisories() []Advisory {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Advisory, 0, len(s.order))
	for _, id := range s.order {
		a := s.advisories[id]
		adv := Advisory{GHSAID: id, Repository: s.repoOf[id], Summary: str(a["summary"]), Description: str(a["description"]), State: str(a["state"]), CVEID: str(a["cve_id"]), Severity: str(a["severity"])}
		for _, u := range a["collaborating_users"].([]any) {
			adv.CollaboratingUsers = append(adv.CollaboratingUsers, str(u.(map[string]any)["login"]))
		}
		for _, c := range a["credits"].([]any) {
			adv.Credits = append(adv.Credits, str(c.(map[string]any)["login"]))
		}
		for _, c := range a["cwe_ids"].([]any) {
			adv.CWEs = append(adv.CWEs, str(c))
		}
		for _, v := range a["vulnerabilities"].([]any) {
			adv.Vulnerabilities = append(adv.Vulnerabilities, v.(map[string]any))
		}
		out = append(out, adv)
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: rec.status, Token: bearerOf(r)})
		s.mu.Unlock()
	}()
	w = rec
	s.mu.Lock()
	var fault *Fault
	for i, f := range s.faults {
		if f.For == "" || f.For == r.Method+" "+r.URL.Path {
			s.faults = slices.Delete(s.faults, i, i+1)
			fault = &f
			break
		}
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Done != nil {
			defer close(fault.Done)
		}
		if fault.Started != nil {
			close(fault.Started)
		}
		if fault.Delay > 0 && fault.Completes {
			time.Sleep(fault.Delay)
		} else if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			for k, v := range fault.Headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(fault.Status)
			_, _ = io.WriteString(w, fault.Body)
			return
		}
	}
	if status, msg := s.validate(r, body); status != 0 {
		writeError(w, status, msg, nil)
		return
	}
	s.handle(w, r, body)
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func bearerOf(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer"), "token"))
}

// rate counts a request against the primary rate limit, as GitHub does
// for every answer but a 304, and sets its headers.
func (s *Server) rate(w http.ResponseWriter, notModified bool) {
	s.mu.Lock()
	now := s.opts.Now()
	if !now.Before(s.rateReset) {
		s.rateLeft, s.rateReset = RateLimit, now.Truncate(time.Hour).Add(time.Hour)
	}
	if !notModified && s.rateLeft > 0 {
		s.rateLeft--
	}
	left, reset := s.rateLeft, s.rateReset
	s.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", fmt.Sprint(RateLimit))
	w.Header().Set("X-RateLimit-Remaining", fmt.Sprint(left))
	w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset.Unix()))
	w.Header().Set("X-RateLimit-Resource", "core")
}

// validate checks the request against GitHub's description and the
// stand-in's token; it returns a status and message for a rejection.
func (s *Server) validate(r *http.Request, body []byte) (int, string) {
	token := bearerOf(r)
	isAppJWT := strings.HasPrefix(r.URL.Path, "/app/") || strings.HasSuffix(r.URL.Path, "/installation")
	s.mu.Lock()
	_, isAppToken := s.appTokens[token]
	okToken := token != "" && (token == s.opts.Token || isAppToken)
	s.mu.Unlock()
	if !isAppJWT && !okToken {
		return http.StatusUnauthorized, "Bad credentials"
	}
	if scope := s.appTokenScope(token); scope != nil {
		parts := strings.Split(r.URL.Path, "/")
		// An installation's token reaches only its own account's
		// repositories, and of those only the ones it was asked for.
		if scope.owner != "" && len(parts) > 2 && (parts[1] == "repos" || parts[1] == "orgs") && !strings.EqualFold(parts[2], scope.owner) {
			return http.StatusNotFound, "Not Found"
		}
		if len(scope.repos) > 0 && len(parts) > 3 && parts[1] == "repos" && !slices.ContainsFunc(scope.repos, func(n string) bool { return strings.EqualFold(n, parts[3]) }) {
			return http.StatusNotFound, "Not Found"
		}
		if len(scope.permissions) > 0 && strings.Contains(r.URL.Path, "/security-advisories") {
			need := "write"
			if r.Method == http.MethodGet {
				need = "read"
			}
			if have := scope.permissions["repository_advisories"]; have != "write" && have != need {
				return http.StatusForbidden, "Resource not accessible by integration"
			}
		}
	}
	if isAppJWT && strings.Count(token, ".") != 2 {
		return http.StatusUnauthorized, "A JSON web token could not be decoded"
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "" && v != "2022-11-28" {
		s.violation(r, "unsupported X-GitHub-Api-Version "+v)
		return http.StatusBadRequest, "Unsupported API version"
	}
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		s.violation(r, "no such endpoint in GitHub's description")
		return http.StatusNotFound, "Not Found"
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(strings.NewReader(string(body)))
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: r2, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
	if err != nil {
		s.violation(r, err.Error())
		msg := oneLine(err.Error())
		if i := strings.Index(msg, " Schema: "); i > 0 {
			msg = msg[:i]
		}
		return http.StatusUnprocessableEntity, "Invalid request. " + msg
	}
	return 0, ""
}

func (s *Server) appTokenScope(token string) *tokenScope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appTokens[token]
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (s *Server) violation(r *http.Request, why string) {
	why = oneLine(why)
	if i := strings.Index(why, " Schema: "); i > 0 {
		why = why[:i] // the schema dump says nothing the message does not
	}
	s.mu.Lock()
	s.violations = append(s.violations, r.Method+" "+r.URL.Path+": "+why)
	s.mu.Unlock()
}

// TakeViolations returns the violations so far and forgets them (for tests
// that send invalid requests on purpose).
func (s *Server) TakeViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.violations
	s.violations = nil
	return v
}

// writeError answers in GitHub's error shape.
func writeError(w http.ResponseWriter, status int, message string, errs []map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	payload := map[string]any{"message": message, "documentation_url": "https://docs.github.com/rest/security-advisories/repository-advisories"}
	if errs != nil {
		payload["errors"] = errs
	}
	_ = json.NewEncoder(w).Encode(payload)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// advisoriesPath matches a repository's advisories and what follows.
var advisoriesPath = regexp.MustCompile(`^/repos/([^/]+)/([^/]+)/security-advisories(?:/([^/]+))?(?:/([^/]+))?$`)

func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	path := r.URL.Path
	if r.Method != http.MethodGet || !strings.HasSuffix(path, "/security-advisories") {
		s.rate(w, false) // a listing counts itself: a 304 is free
	}
	if m := advisoriesPath.FindStringSubmatch(path); m != nil {
		repo := m[1] + "/" + m[2]
		if !s.hasRepo(repo) {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		if m[3] == "" {
			switch r.Method {
			case http.MethodPost:
				s.create(w, repo, body)
			case http.MethodGet:
				s.list(w, r, func(id string) bool { return strings.EqualFold(s.repoOf[id], repo) })
			default:
				writeError(w, http.StatusNotFound, "Not Found", nil)
			}
			return
		}
		s.mu.Lock()
		adv, ok := s.advisories[m[3]]
		ok = ok && strings.EqualFold(s.repoOf[m[3]], repo)
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		switch {
		case m[4] == "" && r.Method == http.MethodGet:
			s.mu.Lock()
			defer s.mu.Unlock()
			writeJSON(w, http.StatusOK, adv)
		case m[4] == "" && r.Method == http.MethodPatch:
			s.update(w, adv, body)
		case m[4] == "cve":
			s.requestCVE(w, adv)
		case m[4] == "forks":
			s.fork(w, repo, adv)
		default:
			writeError(w, http.StatusNotFound, "Not Found", nil)
		}
		return
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/app/installations/"):
		var installation int64
		_, _ = fmt.Sscanf(strings.TrimPrefix(path, "/app/installations/"), "%d", &installation)
		owner := ""
		for o, id := range s.opts.Installations {
			if id == installation {
				owner = o
			}
		}
		var ask struct {
			Repositories []string          `json:"repositories"`
			Permissions  map[string]string `json:"permissions"`
		}
		_ = json.Unmarshal(body, &ask)
		token := fmt.Sprintf("ghs_stand_in_%d", rand.Int64())
		s.mu.Lock()
		s.appTokens[token] = &tokenScope{owner: owner, repos: ask.Repositories, permissions: ask.Permissions}
		s.tokenAsks = append(s.tokenAsks, TokenRequest{Installation: installation, Repositories: ask.Repositories, Permissions: ask.Permissions})
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	case r.Method == http.MethodGet && (strings.HasPrefix(path, "/orgs/") || strings.HasPrefix(path, "/users/")) && strings.HasSuffix(path, "/installation"):
		owner := strings.Split(path, "/")[2]
		id, ok := s.opts.Installations[owner]
		if !ok {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "account": user(owner), "app_id": 1, "target_type": "Organization"})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/orgs/") && strings.HasSuffix(path, "/security-advisories"):
		org := strings.Split(path, "/")[2]
		if !s.hasOrg(org) {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		s.list(w, r, func(id string) bool { return strings.EqualFold(strings.Split(s.repoOf[id], "/")[0], org) })
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/users/"):
		login := strings.TrimPrefix(path, "/users/")
		if !s.userExists(login) {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		writeJSON(w, http.StatusOK, user(login))
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/repos/") && strings.Count(path, "/") == 3:
		s.getRepo(w, path)
	default:
		writeError(w, http.StatusNotFound, "Not Found", nil)
	}
}

func (s *Server) hasRepo(full string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[strings.ToLower(full)]
}

func (s *Server) hasOrg(org string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r := range s.repos {
		if strings.HasPrefix(r, strings.ToLower(org)+"/") {
			return true
		}
	}
	return false
}

func (s *Server) userExists(login string) bool {
	return slices.ContainsFunc(s.opts.Users, func(u string) bool { return strings.EqualFold(u, login) })
}

func user(login string) map[string]any {
	return map[string]any{
		"login": login, "id": len(login) * 1000, "node_id": "U_" + login, "avatar_url": "https://avatars.example/" + login,
		"gravatar_id": "", "url": "https://api.github.com/users/" + login, "html_url": "https://github.com/" + login,
		"type": "User", "site_admin": false,
	}
}

func (s *Server) getRepo(w http.ResponseWriter, path string) {
	full := strings.TrimPrefix(path, "/repos/")
	s.mu.Lock()
	ready, isFork := s.forks[full]
	s.mu.Unlock()
	switch {
	case s.hasRepo(full):
		writeJSON(w, http.StatusOK, s.repo(full, !s.opts.Public))
	case isFork && time.Now().After(ready):
		fork := s.repo(full, true)
		fork["fork"] = true
		writeJSON(w, http.StatusOK, fork)
	default:
		writeError(w, http.StatusNotFound, "Not Found", nil)
	}
}

func (s *Server) repo(full string, private bool) map[string]any {
	owner, name, _ := strings.Cut(full, "/")
	visibility := "public"
	if private {
		visibility = "private"
	}
	return map[string]any{
		"id": 1, "node_id": "R_" + name, "name": name, "full_name": full, "private": private, "visibility": visibility, "fork": false, "archived": false,
		"owner": user(owner), "html_url": "https://github.com/" + full, "url": "https://api.github.com/repos/" + full,
	}
}

func newGHSAID() string {
	const alphabet = "23456789cfghjmpqrvwx"
	part := func() string {
		b := make([]byte, 4)
		for i := range b {
			b[i] = alphabet[rand.IntN(len(alphabet))]
		}
		return string(b)
	}
	return "GHSA-" + part() + "-" + part() + "-" + part()
}

func (s *Server) create(w http.ResponseWriter, repo string, body []byte) {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", nil)
		return
	}
	if !s.checkRules(w, req) {
		return
	}
	adv := s.newAdvisory(repo, req, s.opts.Now())
	s.mu.Lock()
	s.store(repo, adv)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, adv)
}

func (s *Server) newAdvisory(repo string, req map[string]any, created time.Time) map[string]any {
	id := newGHSAID()
	at := created.UTC().Format(time.RFC3339)
	return map[string]any{
		"ghsa_id": id, "cve_id": nil, "url": "https://api.github.com/repos/" + repo + "/security-advisories/" + id,
		"html_url": "https://github.com/" + repo + "/security/advisories/" + id,
		"summary":  req["summary"], "description": req["description"], "severity": req["severity"],
		"author": user("secbot"), "publisher": nil, "identifiers": []any{map[string]any{"type": "GHSA", "value": id}},
		"state": "draft", "created_at": at, "updated_at": at, "published_at": nil, "closed_at": nil, "withdrawn_at": nil,
		"submission": nil, "vulnerabilities": orEmpty(req["vulnerabilities"]), "cvss": nil, "cwes": []any{},
		"cwe_ids": orEmpty(req["cwe_ids"]), "credits": orEmpty(req["credits"]), "credits_detailed": []any{},
		"collaborating_users": []any{}, "collaborating_teams": []any{}, "private_fork": nil,
	}
}

// store keeps a new advisory; the caller holds mu.
func (s *Server) store(repo string, adv map[string]any) {
	id := adv["ghsa_id"].(string)
	s.advisories[id] = adv
	s.repoOf[id] = repo
	s.order = append(s.order, id)
}

func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// list answers a listing of the advisories that match: filtered by state,
// sorted (created, updated or published; desc by default), a page of
// per_page after the cursor, with GitHub's Link header and an ETag that a
// conditional request with If-None-Match turns into a 304.
func (s *Server) list(w http.ResponseWriter, r *http.Request, match func(id string) bool) {
	q := r.URL.Query()
	state := q.Get("state")
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "created"
	}
	perPage := 30
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 && n <= 100 {
		perPage = n
	}
	s.mu.Lock()
	var ids []string
	for i := len(s.order) - 1; i >= 0; i-- {
		id := s.order[i]
		if a := s.advisories[id]; match(id) && (state == "" || a["state"] == state) {
			ids = append(ids, id)
		}
	}
	// Newest first, stably: the order of creation breaks ties.
	slices.SortStableFunc(ids, func(a, b string) int {
		return strings.Compare(str(s.advisories[b][sortBy+"_at"]), str(s.advisories[a][sortBy+"_at"]))
	})
	if q.Get("direction") == "asc" {
		slices.Reverse(ids)
	}
	if after := q.Get("after"); after != "" {
		i := slices.Index(ids, after)
		if i < 0 {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "Invalid cursor", nil)
			return
		}
		ids = ids[i+1:]
	}
	next := ""
	if len(ids) > perPage {
		ids = ids[:perPage]
		next = ids[len(ids)-1]
	}
	out := []any{}
	for _, id := range ids {
		out = append(out, s.advisories[id])
	}
	body, _ := json.Marshal(out)
	s.mu.Unlock()
	notModified := false
	if next != "" {
		u := *r.URL
		nq := u.Query()
		nq.Set("after", next)
		u.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, u.RequestURI()))
	}
	sum := sha256.Sum256(append(body, next...))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	notModified = r.Header.Get("If-None-Match") == etag
	s.rate(w, notModified)
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// checkRules applies what GitHub enforces beyond the schema; it answers
// and returns false when the request breaks one.
func (s *Server) checkRules(w http.ResponseWriter, req map[string]any) bool {
	if req["severity"] != nil && req["cvss_vector_string"] != nil {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []map[string]any{{"resource": "RepositoryAdvisory", "code": "invalid", "message": "severity and cvss_vector_string cannot both be set"}})
		return false
	}
	if msg := s.checkCollaborators(req); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", []map[string]any{{"resource": "RepositoryAdvisory", "field": "collaborating_users", "code": "invalid", "message": msg}})
		return false
	}
	return true
}

func (s *Server) checkCollaborators(req map[string]any) string {
	users, _ := req["collaborating_users"].([]any)
	for _, u := range users {
		if login, _ := u.(string); !s.userExists(login) {
			return fmt.Sprintf("Could not resolve to a User with the login of '%s'.", login)
		}
	}
	return ""
}

func (s *Server) update(w http.ResponseWriter, adv map[string]any, body []byte) {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", nil)
		return
	}
	if !s.checkRules(w, req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(req)) {
		v := req[k]
		switch k {
		case "collaborating_users":
			users := []any{}
			for _, u := range v.([]any) {
				users = append(users, user(u.(string)))
			}
			adv[k] = users
		case "credits":
			adv[k] = v
		case "state":
			s.setState(adv, v)
		default:
			adv[k] = v
		}
	}
	adv["updated_at"] = s.timestamp()
	if adv["state"] == "published" {
		// Not GitHub's rule but secbot's: the world must never read a case
		// ID (or how many reports came in that year) in an advisory.
		for _, field := range []string{"summary", "description"} {
			if text, _ := adv[field].(string); caseIDPattern.MatchString(text) {
				s.violations = append(s.violations, fmt.Sprintf("published advisory %v: its %s names a case: %q", adv["ghsa_id"], field, text))
			}
		}
	}
	writeJSON(w, http.StatusOK, adv)
}

var caseIDPattern = regexp.MustCompile(`(?i)SR-\d{4}-\d{4,}`)

func (s *Server) requestCVE(w http.ResponseWriter, adv map[string]any) {
	if !s.opts.Public {
		writeError(w, http.StatusUnprocessableEntity, "CVE requests are only available for public repositories.", nil)
		return
	}
	s.mu.Lock()
	if adv["cve_id"] == nil {
		adv["cve_id"] = fmt.Sprintf("CVE-%d-%05d", time.Now().Year(), rand.IntN(99999))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (s *Server) fork(w http.ResponseWriter, repo string, adv map[string]any) {
	s.mu.Lock()
	id := adv["ghsa_id"].(string)
	full := repo + "-" + strings.ToLower(id)
	if _, ok := s.forks[full]; !ok {
		s.forks[full] = time.Now().Add(s.opts.ForkDelay)
	}
	adv["private_fork"] = map[string]any{"full_name": full}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, s.repo(full, true))
}
