package testbed

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	// The bot's own SQLite driver (mattn/go-sqlite3, registered as "sqlite3").
	_ "go.mau.fi/util/dbutil/litestream"
	// PostgreSQL's, for a bot on [database] url.
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/store"
)

// SettleTimeout bounds one Settle. It is generous because effects cut off
// by a kill wait out their retry backoff first; an idle bot passes the
// barrier in a second or two.
const SettleTimeout = 2 * time.Minute

// Settle is the barrier a test passes before it asserts that something
// happened exactly once, or not at all. It replaces waiting a quiet period,
// which passes as well when work is merely still pending. When it returns:
//
//   - every event sent to the bot before the call has been handled: a team
//     member's marker (`!sec help` in the team room) is answered, twice in
//     a row. The bot handles sync batches one after another and commits
//     every handler of a batch before it fetches the next, and the first
//     marker's batch holds everything sent before it (the homeserver orders
//     its timeline stream); the second marker, sent once the first is
//     answered, can only come in a later batch, so its answer proves the
//     first marker's whole batch committed;
//   - the bot has made every effect it decided: its outbox has no pending
//     row, and no encrypted event (outside the team room, see Pending) is
//     noted and still waiting for its key (both read from its database,
//     opened read-only);
//   - each observer's client has caught up with the homeserver, so what it
//     counts includes every message the bot sent.
//
// It fails the test if any of that takes longer than SettleTimeout.
func (b *Bed) Settle(t testing.TB, ctx context.Context, bot *Bot, observers ...*matrixtest.User) {
	t.Helper()
	b.SettleWith(t, ctx, bot, b.TeamMarker(), observers...)
}

// A Marker is a message the bot answers with a reply to it: the proof, for
// Settle, that the bot has handled everything sent before it.
type Marker struct {
	From *matrixtest.User
	Room id.RoomID
	Text string
}

// TeamMarker is Alice asking for `!sec help` in the team room.
func (b *Bed) TeamMarker() Marker { return Marker{From: b.Alice, Room: b.TeamRoom, Text: "!sec help"} }

// SettleWith is Settle with another marker, e.g. a reporter's `help` in
// their DM with the bot.
func (b *Bed) SettleWith(t testing.TB, ctx context.Context, bot *Bot, marker Marker, observers ...*matrixtest.User) {
	t.Helper()
	start := time.Now()
	steps, err := b.settle(ctx, bot, marker, observers)
	if err != nil {
		t.Fatalf("settle %s: %v (after %s)", bot.UserID, err, steps)
	}
	t.Logf("settled %s in %s (%s)", bot.UserID, time.Since(start).Round(time.Millisecond), steps)
}

func (b *Bed) settle(ctx context.Context, bot *Bot, m Marker, observers []*matrixtest.User) (steps string, err error) {
	ctx, cancel := context.WithTimeout(ctx, SettleTimeout)
	defer cancel()
	last := time.Now()
	step := func(name string) {
		steps += fmt.Sprintf("%s %s; ", name, time.Since(last).Round(time.Millisecond))
		last = time.Now()
	}
	defer func() { steps = strings.TrimSuffix(steps, "; ") }()
	// The sender's client encrypts the marker for the room members it knows of.
	if err := m.From.WaitJoined(ctx, SettleTimeout, m.Room, bot.UserID); err != nil {
		return steps, err
	}
	step("joined")
	for i := range 2 {
		if err := m.send(ctx, bot); err != nil {
			return steps, err
		}
		step(fmt.Sprintf("marker %d", i+1))
	}
	teamRoom := b.TeamRoom
	if bot.team != nil {
		teamRoom = bot.team.Room
	}
	effects, awaiting, _ := bot.Pending(ctx, teamRoom)
	if err := bot.WaitIdle(ctx, teamRoom); err != nil {
		return steps, err
	}
	step(fmt.Sprintf("idle (from %d effects, %d awaiting keys)", effects, awaiting))
	seen := map[*matrixtest.User]bool{}
	for _, u := range observers {
		if seen[u] {
			continue
		}
		seen[u] = true
		if err := u.CatchUp(ctx, SettleTimeout); err != nil {
			return steps, err
		}
	}
	step("observers")
	return steps, nil
}

// send sends the marker and waits for the bot's answer to that very message.
func (m Marker) send(ctx context.Context, bot *Bot) error {
	marker, err := m.From.Say(ctx, m.Room, m.Text)
	if err != nil {
		return fmt.Errorf("send the marker: %w", err)
	}
	_, err = m.From.Wait(ctx, SettleTimeout, "the answer to the marker "+marker.String(), func(evt *event.Event) bool {
		return evt.Type == event.EventMessage && evt.RoomID == m.Room && evt.Sender == bot.UserID && repliesTo(evt) == marker
	})
	if err != nil {
		return fmt.Errorf("%s %q in %s: %w", m.From.ID(), m.Text, m.Room, err)
	}
	return nil
}

func repliesTo(evt *event.Event) id.EventID {
	msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok || msg.RelatesTo == nil {
		return ""
	}
	return msg.RelatesTo.GetReplyTo()
}

// Pending reads from the bot's database (opened read-only, so it works
// whether the bot runs or not) how many effects are recorded and not yet
// made, and how many encrypted events outside the team room are noted and
// not yet handled (waiting for their keys).
//
// The team room is left out: the bot joins it with its history (visible to
// members) and notes the messages from before it joined, whose keys it was
// never sent; it waits for them for a while and then gives them up, by
// design (see handlers.HandleUndecryptable). On the shared test homeserver
// that history holds every earlier test's team-room messages.
func (p *Bot) Pending(ctx context.Context, teamRoom id.RoomID) (effects, awaiting int, err error) {
	db, err := p.OpenDB(true)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM outbox WHERE state = 'pending'),
		(SELECT COUNT(*) FROM awaiting_keys WHERE room_id <> $1)`, teamRoom.String()).Scan(&effects, &awaiting)
	return effects, awaiting, err
}

// WaitIdle waits until the bot has no pending effect and no encrypted
// event outside the team room noted and not yet handled.
func (p *Bot) WaitIdle(ctx context.Context, teamRoom id.RoomID) error {
	for {
		effects, awaiting, err := p.Pending(ctx, teamRoom)
		if err == nil && effects == 0 && awaiting == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the bot is not idle (%d effects pending, %d encrypted events awaiting their keys, %v): %w", effects, awaiting, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetSyncPosition overwrites the stopped bot's saved sync position: a
// test makes it skip past events, as a batch given up on would.
func (p *Bot) SetSyncPosition(ctx context.Context, token string) error {
	if p.Running() {
		return fmt.Errorf("the bot is running")
	}
	db, err := p.OpenDB(false)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE sync_position SET next_batch = $1 WHERE id = 1`, token)
	return err
}

// OpenDB opens the bot's database beside it: its SQLite file (read-only if
// asked, so it works whether the bot runs or not) or its PostgreSQL
// database. Queries use $1 placeholders, which both understand.
func (p *Bot) OpenDB(readOnly bool) (*sql.DB, error) {
	if p.DBURL != "" {
		return sql.Open("pgx", p.DBURL)
	}
	mode := ""
	if readOnly {
		mode = "mode=ro&"
	}
	return sql.Open("sqlite3", fmt.Sprintf("file:%s?%s_busy_timeout=5000", p.DBPath, mode))
}

// OpenStore opens the bot's store beside it (its SQLite file or its
// PostgreSQL database); the caller closes it.
func (p *Bot) OpenStore(ctx context.Context) (*store.Store, error) {
	if p.DBURL != "" {
		return store.OpenPostgres(ctx, p.DBURL, zerolog.Nop())
	}
	return store.Open(ctx, p.DBPath, zerolog.Nop())
}

// LoseDatabase empties the stopped bot's database as a lost disk would:
// its SQLite files are removed, or its PostgreSQL schema is dropped.
func (p *Bot) LoseDatabase(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("the bot is running")
	}
	if p.DBURL == "" {
		for _, f := range []string{p.DBPath, p.DBPath + "-wal", p.DBPath + "-shm"} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		return nil
	}
	db, err := p.OpenDB(false)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	return err
}

// MoveToPostgres moves the stopped bot from its SQLite file to the empty
// PostgreSQL database at dbURL (password included) with `secbot copy-db`,
// as an operator would, and points its config there (url and a
// password_file instead of path). It returns copy-db's output.
func (p *Bot) MoveToPostgres(ctx context.Context, dbURL string) (string, error) {
	if p.Running() {
		return "", fmt.Errorf("the bot is running")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	password, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	cmd := exec.CommandContext(ctx, p.binary, "copy-db", "-from", p.DBPath, "-to", u.String())
	cmd.Env = append(os.Environ(), "SECBOT_DATABASE_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("copy-db: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(p.Dir, "db-password"), []byte(password+"\n"), 0o600); err != nil {
		return string(out), err
	}
	data, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		return string(out), err
	}
	cfg := strings.Replace(string(data), `path = "secbot.db"`, fmt.Sprintf("url = %q\npassword_file = \"db-password\"", u.String()), 1)
	if cfg == string(data) {
		return string(out), fmt.Errorf("the config has no database path to replace")
	}
	if err := os.WriteFile(p.ConfigPath, []byte(cfg), 0o600); err != nil {
		return string(out), err
	}
	p.DBURL = dbURL
	return string(out), nil
}
