package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Standby returns a second secbot process of the bot p: the same account
// and Matrix device, the same secrets, the same PostgreSQL database and the
// same test clock (p's directory, whose files both read), as a second
// machine of one installation would run it. Its config is p's, but for
// [http] listen, which is listen (two processes on one machine cannot
// serve on one port; "" keeps p's config as it is, which works only if p
// serves nothing). It has its own log (name.log in p's directory). Start
// it like any bot: on PostgreSQL, whichever holds the office is active and
// the other stands by.
func (p *Bot) Standby(name, listen string) (*Bot, error) {
	if p.DBURL == "" {
		return nil, errors.New("a standby needs a bot on PostgreSQL (BotOptions.Postgres)")
	}
	data, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		return nil, err
	}
	cfg := string(data)
	if listen != "" {
		from := fmt.Sprintf("listen = %q", p.HTTPListen)
		if !strings.Contains(cfg, from) {
			return nil, fmt.Errorf("the config has no %s to replace", from)
		}
		cfg = strings.Replace(cfg, from, fmt.Sprintf("listen = %q", listen), 1)
	} else {
		listen = p.HTTPListen
	}
	s := &Bot{
		UserID: p.UserID, Dir: p.Dir, DBPath: p.DBPath, DBURL: p.DBURL,
		ConfigPath: filepath.Join(p.Dir, name+".toml"), LogPath: filepath.Join(p.Dir, name+".log"),
		binary: p.binary, logLevel: p.logLevel, HTTPListen: listen, team: p.team,
	}
	if err := os.WriteFile(s.ConfigPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

var roleIn = regexp.MustCompile(`\(role=(\w+) epoch=(\d+)\)`)

// Role is the instance's role as its /healthz tells it (active, standby,
// starting, stopping), "" if it does not answer or names none.
func (p *Bot) Role() string {
	if p.HTTPListen == "" {
		return ""
	}
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + p.HTTPListen + "/healthz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := roleIn.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// WaitRole waits until the instance's /healthz names role and returns how
// long that took.
func (p *Bot) WaitRole(ctx context.Context, role string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		got := p.Role()
		if got == role {
			return time.Since(start), nil
		}
		if !p.Running() {
			return time.Since(start), fmt.Errorf("%s exited before it was %s (last seen %q)", filepath.Base(p.LogPath), role, got)
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%s is %q after %s, want %s", filepath.Base(p.LogPath), got, timeout, role)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
