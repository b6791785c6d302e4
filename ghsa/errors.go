package ghsa

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

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
