package ghsa

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/enarx/secbot/internal/testenv/github"
)

const token = "ghp_test_token_123"

// nonce is a create effect's secret, in tests that make drafts directly.
const nonce = "0123456789abcdef0123456789abcdef"

func standIn(t *testing.T, public bool) (*ghsatest.Server, *Client) {
	t.Helper()
	old := retrySettle
	retrySettle = 0 // a test that needs the wait sets it
	t.Cleanup(func() { retrySettle = old })
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Public: public, Users: []string{"octocat", "reporter1"}, Token: token, ForkDelay: 300 * time.Millisecond}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("requests GitHub's description rejects:\n%s", strings.Join(v, "\n"))
		}
		srv.Close()
	})
	c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

var reported = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestEveryOperationPassesGitHubsDescription(t *testing.T) {
	srv, c := standIn(t, true)
	ctx := context.Background()
	adv, err := c.CreateDraft(ctx, "SR-2026-0001", reported, "enarx", nonce)
	if err != nil {
		t.Fatal(err)
	}
	if adv.State != "draft" || !strings.HasPrefix(adv.GHSAID, "GHSA-") || adv.HTMLURL == "" {
		t.Fatalf("created %+v", adv)
	}
	if err := c.AddCollaborator(ctx, adv.GHSAID, "octocat"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddCollaborator(ctx, adv.GHSAID, "reporter1"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveCollaborator(ctx, adv.GHSAID, "reporter1"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, adv.GHSAID)
	if err != nil || len(got.CollaboratingUsers) != 1 || got.CollaboratingUsers[0] != "octocat" {
		t.Fatalf("collaborators %v, %v", got, err)
	}
	affected, patched, severity := "< 1.2.3", "1.2.3", "high"
	summary, description := "Out-of-bounds write in the loader", "A crafted image overflows a buffer."
	if _, err := c.Update(ctx, adv.GHSAID, Update{
		Summary: &summary, Description: &description,
		Vulnerabilities: []Vulnerability{{Package: Package{Ecosystem: "other", Name: "enarx"}, VulnerableVersionRange: &affected, PatchedVersions: &patched}},
		Severity:        &severity, CWEIDs: []string{"CWE-787"}, Credits: []Credit{{Login: "octocat", Type: "finder"}},
	}); err != nil {
		t.Fatal(err)
	}
	full, _, err := c.CreateFork(ctx, adv.GHSAID)
	if err != nil || full == "" {
		t.Fatalf("fork %q, %v", full, err)
	}
	if ready, err := c.ForkReady(ctx, full); err != nil || ready {
		t.Errorf("the fork is ready at once (%v, %v); GitHub makes it asynchronously", ready, err)
	}
	time.Sleep(400 * time.Millisecond)
	if ready, err := c.ForkReady(ctx, full); err != nil || !ready {
		t.Errorf("the fork is not ready after its delay: %v", err)
	}
	if err := c.RequestCVE(ctx, adv.GHSAID); err != nil {
		t.Fatal(err)
	}
	pub, err := c.Publish(ctx, adv.GHSAID)
	if err != nil || pub.State != "published" {
		t.Fatalf("publish: %+v %v", pub, err)
	}
	stored := srv.Advisories()[0]
	if stored.CVEID == "" || stored.Severity != "high" || len(stored.CWEs) != 1 || len(stored.Credits) != 1 {
		t.Errorf("stored advisory %+v", stored)
	}
	// The stand-in flags an advisory published with its placeholder: the
	// world would read the case ID.
	placeholder, err := c.CreateDraft(ctx, "SR-2026-0002", reported, "enarx", nonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, placeholder.GHSAID); err != nil {
		t.Fatal(err)
	}
	if v := srv.TakeViolations(); len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), "names a case") {
		t.Errorf("a placeholder went public unflagged: %v", v)
	}
}

func TestTheStandInRejectsWhatGitHubRejects(t *testing.T) {
	srv, c := standIn(t, true)
	ctx := context.Background()
	for name, body := range map[string]any{
		"a create without vulnerabilities": map[string]any{"summary": "s", "description": "d"},
		"a create with a state":            map[string]any{"summary": "s", "description": "d", "vulnerabilities": []any{}, "state": "published"},
		"both severity and a CVSS vector":  map[string]any{"summary": "s", "description": "d", "vulnerabilities": []any{}, "severity": "high", "cvss_vector_string": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
	} {
		err := c.do(ctx, http.MethodPost, c.path(""), body, nil)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity || e.Kind != User {
			t.Errorf("%s: got %v, want a 422 user error", name, err)
		}
	}
	if len(srv.Advisories()) != 0 {
		t.Error("a rejected request created an advisory")
	}
	if v := srv.TakeViolations(); len(v) != 2 {
		t.Errorf("the stand-in flagged %d schema violations, want 2 (the exclusive fields are GitHub's own rule): %v", len(v), v)
	}
}

func TestUserErrorsAreInPlainWords(t *testing.T) {
	_, c := standIn(t, false)
	ctx := context.Background()
	adv, err := c.CreateDraft(ctx, "SR-2026-0002", reported, "enarx", nonce)
	if err != nil {
		t.Fatal(err)
	}
	err = c.AddCollaborator(ctx, adv.GHSAID, "no-such-user")
	var e *Error
	if !errors.As(err, &e) || e.Kind != User || e.Message != `GitHub has no user named "no-such-user"` {
		t.Errorf("unknown user: %v", err)
	}
	if err := c.RequestCVE(ctx, adv.GHSAID); !errors.Is(err, ErrCVENeedsPublicRepo) {
		t.Errorf("CVE on a private repository: %v", err)
	}
	if _, err := c.Get(ctx, "GHSA-xxxx-xxxx-xxxx"); !errors.As(err, &e) || e.Kind != Operator || e.Status != 404 {
		t.Errorf("unknown advisory: %v", err)
	}
}

func TestFaultsAreClassified(t *testing.T) {
	srv, c := standIn(t, true)
	ctx := context.Background()
	fresh := func() *Client {
		// go-github remembers rate limits and refuses requests until they
		// reset: each case gets a client of its own.
		c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		fault ghsatest.Fault
		kind  Kind
		after time.Duration
	}{
		{"a 500", ghsatest.Fault{Status: 500, Body: `{"message":"Server Error"}`}, Retryable, 0},
		{"a 502", ghsatest.Fault{Status: 502, Body: "bad gateway"}, Retryable, 0},
		{"a secondary rate limit", ghsatest.Fault{Status: 403, Headers: map[string]string{"Retry-After": "7"}, Body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`}, RateLimited, 7 * time.Second},
		{"a 429", ghsatest.Fault{Status: 429, Headers: map[string]string{"Retry-After": "3"}, Body: `{"message":"slow down"}`}, RateLimited, 3 * time.Second},
	} {
		srv.Inject(tc.fault)
		_, err := fresh().CreateDraft(ctx, "SR-2026-0003", reported, "enarx", nonce)
		var e *Error
		if !errors.As(err, &e) || e.Kind != tc.kind {
			t.Errorf("%s: %v, want kind %d", tc.name, err, tc.kind)
			continue
		}
		if tc.after > 0 && (e.RetryAfter < tc.after-time.Second || e.RetryAfter > tc.after) {
			t.Errorf("%s: retry after %s, want %s", tc.name, e.RetryAfter, tc.after)
		}
		if retry, _ := IsRetryable(err); !retry {
			t.Errorf("%s: not retryable", tc.name)
		}
	}
	srv.Inject(ghsatest.Fault{Delay: 2 * time.Second})
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.CreateDraft(short, "SR-2026-0003", reported, "enarx", nonce); err == nil {
		t.Error("a timeout went unnoticed")
	} else if retry, _ := IsRetryable(err); !retry {
		t.Errorf("a timeout is not retryable: %v", err)
	}
	// After the faults, the retry succeeds and finds no earlier draft to adopt.
	if found, err := c.FindOwnDraft(ctx, nonce, nil); err != nil || found != nil {
		t.Fatalf("found %+v, %v before any succeeded", found, err)
	}
	adv, err := c.CreateDraft(ctx, "SR-2026-0003", reported, "enarx", nonce)
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.FindOwnDraft(ctx, nonce, nil)
	if err != nil || found == nil || found.GHSAID != adv.GHSAID {
		t.Fatalf("FindOwnDraft = %+v, %v; want %s", found, err, adv.GHSAID)
	}
}

func TestGitHubAppAuthentication(t *testing.T) {
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Users: []string{"octocat"}, Token: "unused"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", AppID: 42, InstallationID: 7, PrivateKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDraft(context.Background(), "SR-2026-0009", reported, "enarx", nonce); err != nil {
		t.Fatalf("as a GitHub App: %v (violations: %v)", err, srv.Violations())
	}
	if srv.Requests("POST", "/app/installations/7/access_tokens") != 1 {
		t.Error("no installation token was requested")
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A GitHub App's installation token asks for the repository advisories
// permission only, and of an owner that is not a watched organization only
// for its watched repositories; a fork (which is none of them) is still
// seen, with a token that reads metadata only.
func TestAnAppTokenAsksOnlyForWhatSecbotNeeds(t *testing.T) {
	srv, err := ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Repositories: []string{"enarx/other", "enarx/unwatched", "profian/steward"},
		Users: []string{"octocat"}, Token: "unused", Installations: map[string]int64{"enarx": 7, "profian": 8}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := New(Config{APIURL: srv.URL(), Owner: "enarx", Repo: "enarx", AppID: 42, InstallationID: 7, PrivateKey: testKey(t),
		Repositories: []string{"enarx/enarx", "enarx/other", "profian/steward"}, Organizations: []string{"profian"}})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := c.CreateDraft(ctx, "SR-2026-0009", reported, "enarx", nonce)
	if err != nil {
		t.Fatal(err)
	}
	steward, err := c.In(ctx, "profian/steward")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := steward.CreateDraft(ctx, "SR-2026-0010", reported, "steward", nonce); err != nil {
		t.Fatal(err)
	}
	asks := srv.TokenRequests()
	if len(asks) != 2 {
		t.Fatalf("token requests %+v, want one per installation", asks)
	}
	want := map[string]string{"repository_advisories": "write", "metadata": "read"}
	for _, a := range asks {
		if len(a.Permissions) != len(want) || a.Permissions["repository_advisories"] != "write" || a.Permissions["metadata"] != "read" {
			t.Errorf("installation %d's token asks for %v, want %v", a.Installation, a.Permissions, want)
		}
	}
	if got := asks[0].Repositories; asks[0].Installation != 7 || !slices.Equal(got, []string{"enarx", "other"}) {
		t.Errorf("installation %d's token asks for repositories %v, want the watched enarx and other", asks[0].Installation, got)
	}
	if asks[1].Installation != 8 || asks[1].Repositories != nil {
		t.Errorf("installation %d's token asks for %v, want the watched organization's repositories", asks[1].Installation, asks[1].Repositories)
	}
	unwatched, err := c.In(ctx, "enarx/unwatched")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unwatched.CreateDraft(ctx, "SR-2026-0011", reported, "x", nonce); err == nil {
		t.Error("the token reaches a repository that is not watched")
	}
	fork, _, err := c.CreateFork(ctx, adv.GHSAID)
	if err != nil {
		t.Fatal(err)
	}
	if ready, err := c.ForkReady(ctx, fork); err != nil || !ready {
		t.Errorf("fork ready: %v, %v", ready, err)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}
