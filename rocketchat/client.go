// Package rocketchat is secbot's client for a Rocket.Chat server: the REST
// calls a bot makes as its own user (with a personal access token) and the
// realtime API that delivers the messages of every room the bot may read.
//
// It is small on purpose (no Rocket.Chat SDK is maintained well enough to
// depend on). The Client knows nothing of cases or policy; the Platform
// (platform.go, effects.go, inbound.go) is Rocket.Chat behind the core's
// chat port: it makes the chat effects and hands the core its messages.
// What the client guarantees:
//
//   - every request carries X-User-Id and X-Auth-Token; the token is never
//     part of an error, a log line or a URL;
//   - a message sent with a caller-chosen ID is posted at most once, however
//     often the call is retried (see SendMessage);
//   - 429 answers and the X-RateLimit-* headers are waited out for a bounded
//     time on an injected clock, and errors say whether a retry can help
//     (IsRetryable, IsPermanent);
//   - the realtime connection comes back after a drop, and after every
//     (re)connect a hook lets the caller catch up over REST (Realtime).
package rocketchat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"

	"github.com/enarx/secbot/internal/backoff"
)

// Options tune a Client; the zero value is usable.
type Options struct {
	// HTTPClient makes the REST calls; a client with a 30 s timeout by default.
	HTTPClient *http.Client
	// Clock times rate-limit waits and reconnect backoff; the real clock by default.
	Clock clockwork.Clock
	// MaxWait is the longest one call waits for a rate limit to lift
	// (default 1 minute). A longer wait fails at once with a retryable
	// *Error whose RetryAfter says how long.
	MaxWait time.Duration
	// MaxAttempts bounds the tries of one call that keeps getting 429
	// (default 4).
	MaxAttempts int
	// Log receives rate-limit waits and realtime reconnects; nothing by default.
	Log *zerolog.Logger
}

// Client talks to one Rocket.Chat server as one user. It is safe for
// concurrent use.
type Client struct {
	base        string // scheme://host[/path], no trailing slash
	userID      string
	token       string
	http        *http.Client
	clock       clockwork.Clock
	maxWait     time.Duration
	maxAttempts int
	log         zerolog.Logger

	mu        sync.Mutex
	notBefore map[string]time.Time // "POST chat.sendMessage" → when its spent limit resets
}

// New returns a client for the server at serverURL (as the [rocketchat]
// server setting has it, e.g. https://chat.example.org) acting as userID
// with the personal access token token.
func New(serverURL, userID, token string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("rocketchat: server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("rocketchat: server URL %q: want http(s)://host[/path]", u.Redacted())
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("rocketchat: server URL %q: the token would cross the network in the clear; use https:// (http:// only on a loopback address)", u.Redacted())
	}
	if userID == "" {
		return nil, errors.New("rocketchat: no user ID")
	}
	if token == "" {
		return nil, errors.New("rocketchat: no token")
	}
	c := &Client{
		base: u.String(), userID: userID, token: token,
		http: opts.HTTPClient, clock: opts.Clock, maxWait: opts.MaxWait, maxAttempts: opts.MaxAttempts,
		log: zerolog.Nop(), notBefore: map[string]time.Time{},
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	// Go forwards custom headers on a redirect, even to another host: a
	// redirect would hand X-Auth-Token to wherever it points. None is
	// followed; the 3xx is the answer (the server URL must be the final one).
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	if c.clock == nil {
		c.clock = clockwork.NewRealClock()
	}
	if c.maxWait <= 0 {
		c.maxWait = time.Minute
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 4
	}
	if opts.Log != nil {
		c.log = *opts.Log
	}
	return c, nil
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// UserID is the ID of the user the client acts as.
func (c *Client) UserID() string { return c.userID }

// Error is a call that did not succeed: an answer other than 200, or no
// answer at all (Status 0, Err the network error).
type Error struct {
	Method, Route string // "POST", "chat.sendMessage"
	Status        int    // the HTTP status; 0 if the server was not reached
	Type          string // the answer's errorType, if any ("error-not-allowed")
	Message       string // the answer's error text
	// RetryAfter is, on a 429, how long the server asked to wait.
	RetryAfter time.Duration
	Err        error // the network error, for Status 0
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rocketchat: %s %s: ", e.Method, e.Route)
	switch {
	case e.Status == 0:
		fmt.Fprintf(&b, "%v", e.Err)
	default:
		fmt.Fprintf(&b, "%d", e.Status)
		if e.Type != "" {
			fmt.Fprintf(&b, " %s", e.Type)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed later: the server
// was not reached, was rate limiting (429) or failed (5xx).
func (e *Error) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// IsRetryable reports whether err is a call that may succeed if repeated
// later (network, 429, 5xx). A cancelled context is not.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// IsPermanent reports whether err is an answer that repeating the call
// will not change: a 4xx other than 429 (refused, invalid, no such room,
// bad credentials).
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Retryable()
}

// failure is the body of an answer other than 200, as ApiClass writes it.
type failure struct {
	Error     any    `json:"error"` // a string, or an object from a few routes
	ErrorType string `json:"errorType"`
	Message   string `json:"message"`
}

// maxErrorText keeps a server's error text in an error short.
const maxErrorText = 500

func (c *Client) get(ctx context.Context, route string, q url.Values, out any) error {
	return c.call(ctx, http.MethodGet, route, q, nil, out)
}

func (c *Client) post(ctx context.Context, route string, body, out any) error {
	return c.call(ctx, http.MethodPost, route, nil, body, out)
}

// call makes one REST call, waiting out rate limits within MaxWait, and
// decodes a 200's body into out (if not nil).
func (c *Client) call(ctx context.Context, method, route string, q url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("rocketchat: %s %s: encode: %w", method, route, err)
		}
	}
	target := c.base + "/api/v1/" + route
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	key := method + " " + route
	for attempt := 1; ; attempt++ {
		if err := c.waitTurn(ctx, method, route); err != nil {
			return err
		}
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return fmt.Errorf("rocketchat: %s %s: %w", method, route, err)
		}
		req.Header.Set("X-User-Id", c.userID)
		req.Header.Set("X-Auth-Token", c.token)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Method: method, Route: route, Err: err}
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Method: method, Route: route, Err: fmt.Errorf("read answer: %w", err)}
		}
		c.noteLimits(key, resp.Header)

		if resp.StatusCode == http.StatusTooManyRequests {
			wait := c.retryAfter(resp.Header, attempt)
			e := c.failure(method, route, resp.StatusCode, raw)
			e.RetryAfter = wait
			if attempt >= c.maxAttempts || wait > c.maxWait {
				return e
			}
			c.log.Info().Str("route", route).Dur("wait", wait).Int("attempt", attempt).Msg("Rocket.Chat rate limit: waiting")
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return &Error{Method: method, Route: route, Status: resp.StatusCode,
				Message: "a redirect (to " + resp.Header.Get("Location") + "), not followed: set the server URL to where it points"}
		}
		if resp.StatusCode != http.StatusOK {
			return c.failure(method, route, resp.StatusCode, raw)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &Error{Method: method, Route: route, Status: resp.StatusCode, Message: "answer is not the expected JSON: " + err.Error()}
		}
		return nil
	}
}

func (c *Client) failure(method, route string, status int, raw []byte) *Error {
	e := &Error{Method: method, Route: route, Status: status}
	var f failure
	if json.Unmarshal(raw, &f) == nil {
		e.Type = f.ErrorType
		switch v := f.Error.(type) {
		case string:
			e.Message = v
		case nil:
			e.Message = f.Message
		default:
			b, _ := json.Marshal(v)
			e.Message = string(b)
		}
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	if len(e.Message) > maxErrorText {
		e.Message = e.Message[:maxErrorText] + "…"
	}
	// A server never echoes the token, but a proxy's error page might:
	// it is not worth the risk of logging it.
	e.Message = strings.ReplaceAll(e.Message, c.token, "[token]")
	return e
}

// retryAfter is how long a 429 asks to wait: the later of Retry-After
// (seconds or an HTTP date) and X-RateLimit-Reset (epoch milliseconds, as
// Rocket.Chat's ApiClass sets it); without either, exponential backoff.
func (c *Client) retryAfter(h http.Header, attempt int) time.Duration {
	now := c.clock.Now()
	var wait time.Duration
	found := false
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			wait, found = time.Duration(secs)*time.Second, true
		} else if t, err := http.ParseTime(v); err == nil {
			wait, found = t.Sub(now), true
		}
	}
	if reset, ok := resetTime(h); ok {
		if d := reset.Sub(now); d > wait {
			wait = d
		}
		found = true
	}
	if !found {
		return backoff.Exponential(attempt, time.Second, c.maxWait)
	}
	return max(wait, 0)
}

func resetTime(h http.Header) (time.Time, bool) {
	v := strings.TrimSpace(h.Get("X-RateLimit-Reset"))
	if v == "" {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// noteLimits remembers a route whose limit is spent (X-RateLimit-Remaining
// 0), so that the next call to it waits for the reset instead of being
// refused.
func (c *Client) noteLimits(key string, h http.Header) {
	rem := strings.TrimSpace(h.Get("X-RateLimit-Remaining"))
	reset, ok := resetTime(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rem == "0" && ok {
		c.notBefore[key] = reset
	} else if rem != "" {
		delete(c.notBefore, key)
	}
}

// waitTurn waits until a spent limit of the route has reset, or fails with
// a retryable 429 error if that is longer than MaxWait.
func (c *Client) waitTurn(ctx context.Context, method, route string) error {
	key := method + " " + route
	c.mu.Lock()
	until, ok := c.notBefore[key]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	wait := until.Sub(c.clock.Now())
	if wait <= 0 {
		return nil
	}
	if wait > c.maxWait {
		return &Error{Method: method, Route: route, Status: http.StatusTooManyRequests,
			Message: "rate limit spent (X-RateLimit-Remaining: 0)", RetryAfter: wait}
	}
	c.log.Info().Str("route", route).Dur("wait", wait).Msg("Rocket.Chat rate limit spent: waiting for its reset")
	return c.sleep(ctx, wait)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
