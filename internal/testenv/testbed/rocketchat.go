package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// RocketChatOptions are a bot on Rocket.Chat only.
type RocketChatOptions struct {
	// Server is the Rocket.Chat server's URL (e.g. a stand-in the test
	// process serves, rctest.Server.URL).
	Server string
	// UserID and Token are the bot user's ID and personal access token.
	UserID, Token string
	// Team is the [team] section's keys (room, members, coordinator, …).
	Team string
	// SLA overrides [sla] keys, e.g. {"acknowledge": `"10s"`}.
	SLA map[string]string
	// Extra is appended to the config file.
	Extra string
	// LogLevel is the bot's -log-level (info if empty).
	LogLevel string
	// HTTPListen, if set, serves /metrics and /healthz there.
	HTTPListen string
}

// NewRocketChatBot writes the config of a bot that is on Rocket.Chat only
// (no [matrix], so it needs no homeserver), its token in a file, into
// dir/name and returns the bot, not yet started. binary is secbot as
// Build makes it (crash points armed by Start's env, its clock stepped by
// Advance). The bot's UserID is empty: it has no Matrix account.
func NewRocketChatBot(binary, dir, name string, opts RocketChatOptions) (*Bot, error) {
	if opts.Server == "" || opts.UserID == "" || opts.Token == "" {
		return nil, fmt.Errorf("a Rocket.Chat bot needs the server, its user ID and its token")
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "rocketchat-token"), []byte(opts.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	var sla []string
	for k, v := range opts.SLA {
		sla = append(sla, k+" = "+v)
	}
	sort.Strings(sla)
	cfg := fmt.Sprintf(`[rocketchat]
server = %q
user_id = %q
token_file = "rocketchat-token"

[database]
path = "secbot.db"

[team]
%s

[sla]
%s

[http]
listen = %q
%s`, opts.Server, opts.UserID, strings.TrimSpace(opts.Team), strings.Join(sla, "\n"), opts.HTTPListen, opts.Extra)
	bot := &Bot{Dir: dir, binary: binary, logLevel: opts.LogLevel, HTTPListen: opts.HTTPListen,
		ConfigPath: filepath.Join(dir, "secbot.toml"), DBPath: filepath.Join(dir, "secbot.db"), LogPath: filepath.Join(dir, "secbot.log")}
	if err := os.WriteFile(bot.ConfigPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return bot, nil
}

// NewRocketChatBot is NewRocketChatBot with the bed's secbot, in its
// directory.
func (b *Bed) NewRocketChatBot(name string, opts RocketChatOptions) (*Bot, error) {
	return NewRocketChatBot(b.Binary, b.Dir, name, opts)
}

// OutboxRow is one recorded side effect, as the bot's database holds it.
type OutboxRow struct {
	ID       int64
	Lane     string
	Kind     string
	State    string // pending, done, failed, refused, cancelled
	Attempts int
	Result   string // what a made effect kept (JSON), e.g. a sent message's ID
}

// Outbox reads every row of the bot's outbox, oldest first (the database
// opened read-only, so it works whether the bot runs or not).
func (p *Bot) Outbox(ctx context.Context) ([]OutboxRow, error) {
	db, err := p.OpenDB(true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, lane, kind, state, attempts, result FROM outbox ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.ID, &r.Lane, &r.Kind, &r.State, &r.Attempts, &r.Result); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
