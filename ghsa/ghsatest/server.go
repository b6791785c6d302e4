// Package ghsatest is a stand-in for GitHub's REST API, for secbot's tests
// and demo: it keeps repository security advisories in memory and checks
// every request against GitHub's official OpenAPI description (trimmed to
// the endpoints secbot uses, see scripts/openapi), answering what GitHub
// would reject with GitHub's own error shape.
package ghsatest

import (
	"context"
	_ "embed"
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
	Owner, Repo string
	// Public makes the repository public (CVE requests need that).
	Public bool
	// Users are the GitHub logins that exist.
	Users []string
	// Token is the bearer token every request must carry; InstallationToken
	// replaces it once a GitHub App asked for one.
	Token string
	// ForkDelay is how long a temporary private fork takes to appear.
	ForkDelay time.Duration
}

// Fault is an injected answer: a status (with headers and body), or a
// delay before the real answer.
type Fault struct {
	Status  int
	Headers map[string]string
	Body    string
	Delay   time.Duration
}

// Server is the running stand-in.
type Server struct {
	opts   Options
	router routers.Router
	srv    *httptest.Server

	mu         sync.Mutex
	advisories map[string]map[string]any
	order      []string
	forks      map[string]time.Time // full name → when it exists
	faults     []Fault
	violations []string
	requests   []string
	appTokens  map[string]bool
}

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
	s := &Server{opts: opts, router: router, advisories: map[string]map[string]any{}, forks: map[string]time.Time{}, appTokens: map[string]bool{}}
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
		if strings.HasPrefix(r, method+" "+prefix) {
			n++
		}
	}
	return n
}

// Advisory is a snapshot of a stored advisory.
type Advisory struct {
	GHSAID             string
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
		adv := Advisory{GHSAID: id, Summary: str(a["summary"]), Description: str(a["description"]), State: str(a["state"]), CVEID: str(a["cve_id"]), Severity: str(a["severity"])}
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
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		fault = &f
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Delay > 0 {
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

// validate checks the request against GitHub's description and the
// stand-in's token; it returns a status and message for a rejection.
func (s *Server) validate(r *http.Request, body []byte) (int, string) {
	auth := r.Header.Get("Authorization")
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer"), "token"))
	isAppJWT := strings.HasPrefix(r.URL.Path, "/app/")
	s.mu.Lock()
	okToken := token != "" && (token == s.opts.Token || s.appTokens[token])
	s.mu.Unlock()
	if !isAppJWT && !okToken {
		return http.StatusUnauthorized, "Bad credentials"
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

func (s *Server) repoPath() string { return "/repos/" + s.opts.Owner + "/" + s.opts.Repo }

func (s *Server) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	path := r.URL.Path
	base := s.repoPath() + "/security-advisories"
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/app/installations/"):
		token := fmt.Sprintf("ghs_stand_in_%d", rand.Int64())
		s.mu.Lock()
		s.appTokens[token] = true
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"token": token, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/users/"):
		login := strings.TrimPrefix(path, "/users/")
		if !s.userExists(login) {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		writeJSON(w, http.StatusOK, user(login))
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/repos/") && strings.Count(path, "/") == 3:
		s.getRepo(w, path)
	case path == base && r.Method == http.MethodPost:
		s.create(w, body)
	case path == base && r.Method == http.MethodGet:
		s.list(w, r)
	case strings.HasPrefix(path, base+"/"):
		rest := strings.Split(strings.TrimPrefix(path, base+"/"), "/")
		s.mu.Lock()
		adv, ok := s.advisories[rest[0]]
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "Not Found", nil)
			return
		}
		switch {
		case len(rest) == 1 && r.Method == http.MethodGet:
			s.mu.Lock()
			defer s.mu.Unlock()
			writeJSON(w, http.StatusOK, adv)
		case len(rest) == 1 && r.Method == http.MethodPatch:
			s.update(w, adv, body)
		case len(rest) == 2 && rest[1] == "cve":
			s.requestCVE(w, adv)
		case len(rest) == 2 && rest[1] == "forks":
			s.fork(w, adv)
		default:
			writeError(w, http.StatusNotFound, "Not Found", nil)
		}
	default:
		writeError(w, http.StatusNotFound, "Not Found", nil)
	}
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
	case full == s.opts.Owner+"/"+s.opts.Repo:
		writeJSON(w, http.StatusOK, s.repo(full, !s.opts.Public))
	case isFork && time.Now().After(ready):
		writeJSON(w, http.StatusOK, s.repo(full, true))
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
		"id": 1, "node_id": "R_" + name, "name": name, "full_name": full, "private": private, "visibility": visibility,
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

func (s *Server) create(w http.ResponseWriter, body []byte) {
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", nil)
		return
	}
	if !s.checkRules(w, req) {
		return
	}
	id := newGHSAID()
	now := time.Now().UTC().Format(time.RFC3339)
	adv := map[string]any{
		"ghsa_id": id, "cve_id": nil, "url": "https://api.github.com" + s.repoPath() + "/security-advisories/" + id,
		"html_url": "https://github.com/" + s.opts.Owner + "/" + s.opts.Repo + "/security/advisories/" + id,
		"summary":  req["summary"], "description": req["description"], "severity": req["severity"],
		"author": user("secbot"), "publisher": nil, "identifiers": []any{map[string]any{"type": "GHSA", "value": id}},
		"state": "draft", "created_at": now, "updated_at": now, "published_at": nil, "closed_at": nil, "withdrawn_at": nil,
		"submission": nil, "vulnerabilities": orEmpty(req["vulnerabilities"]), "cvss": nil, "cwes": []any{},
		"cwe_ids": orEmpty(req["cwe_ids"]), "credits": orEmpty(req["credits"]), "credits_detailed": []any{},
		"collaborating_users": []any{}, "collaborating_teams": []any{}, "private_fork": nil,
	}
	s.mu.Lock()
	s.advisories[id] = adv
	s.order = append(s.order, id)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, adv)
}

func orEmpty(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, id := range s.order {
		if a := s.advisories[id]; state == "" || a["state"] == state {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
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
			adv[k] = v
			if v == "published" {
				adv["published_at"] = time.Now().UTC().Format(time.RFC3339)
			}
		default:
			adv[k] = v
		}
	}
	adv["updated_at"] = time.Now().UTC().Format(time.RFC3339)
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

func (s *Server) fork(w http.ResponseWriter, adv map[string]any) {
	s.mu.Lock()
	id := adv["ghsa_id"].(string)
	full := s.opts.Owner + "/" + s.opts.Repo + "-" + strings.ToLower(id)
	if _, ok := s.forks[full]; !ok {
		s.forks[full] = time.Now().Add(s.opts.ForkDelay)
	}
	adv["private_fork"] = map[string]any{"full_name": full}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, s.repo(full, true))
}
