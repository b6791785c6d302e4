// Package testbed sets up the whole of secbot's world on one machine: a
// Dendrite homeserver, a security team with its room, and secbot itself as
// a separate process (so tests can kill it like a crash would).
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testclock"
	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/internal/testenv/maddy"
	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
)

// Bed is a homeserver with a security team (alice the coordinator, bob the
// backup) and their team room.
type Bed struct {
	Server   *matrixtest.Server
	Dir      string
	Binary   string
	Alice    *matrixtest.User
	Bob      *matrixtest.User
	TeamRoom id.RoomID

	mu    sync.Mutex
	users int
}

// New starts Dendrite in dir/dendrite, builds secbot into dir and signs in
// the team.
func New(ctx context.Context, dir string) (*Bed, error) {
	srv, err := matrixtest.Start(ctx, filepath.Join(dir, "dendrite"))
	if err != nil {
		return nil, err
	}
	b := &Bed{Server: srv, Dir: dir}
	if b.Binary, err = Build(dir); err != nil {
		b.Close()
		return nil, err
	}
	if b.Alice, b.Bob, b.TeamRoom, err = b.team(ctx, "alice", "bob"); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// team signs in a coordinator and a backup under the given names, and
// creates their encrypted team room.
func (b *Bed) team(ctx context.Context, alice, bob string) (*matrixtest.User, *matrixtest.User, id.RoomID, error) {
	a, err := matrixtest.NewUser(ctx, b.Server, alice, b.Dir)
	if err != nil {
		return nil, nil, "", err
	}
	o, err := matrixtest.NewUser(ctx, b.Server, bob, b.Dir)
	if err != nil {
		a.Close()
		return nil, nil, "", err
	}
	fail := func(err error) (*matrixtest.User, *matrixtest.User, id.RoomID, error) {
		a.Close()
		o.Close()
		return nil, nil, "", err
	}
	// The team's devices are cross-signed, as Element sets them up: the
	// bot takes team commands only from such devices.
	for _, u := range []*matrixtest.User{a, o} {
		if _, err := u.CrossSign(ctx); err != nil {
			return fail(err)
		}
	}
	resp, err := a.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "Security team", Invite: []id.UserID{o.ID()},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		return fail(fmt.Errorf("create team room: %w", err))
	}
	if err := o.Join(ctx, resp.RoomID); err != nil {
		return fail(err)
	}
	return a, o, resp.RoomID, nil
}

// Team is a security team of one test's own: a coordinator and a backup
// signed in afresh, and their team room. A bot on it (BotOptions.Team)
// hears no other test's team commands, and its team's clients see no other
// bot's team room, so tests with a team each can run in parallel.
type Team struct {
	// Alice is the coordinator, Bob the backup, as on the bed's team.
	Alice, Bob *matrixtest.User
	Room       id.RoomID
}

// NewTeam signs in a team of its own (alice<n>, bob<n>) and creates its
// team room.
func (b *Bed) NewTeam(ctx context.Context) (*Team, error) {
	b.mu.Lock()
	b.users++
	n := b.users
	b.mu.Unlock()
	a, o, room, err := b.team(ctx, fmt.Sprintf("alice%d", n), fmt.Sprintf("bob%d", n))
	if err != nil {
		return nil, err
	}
	return &Team{Alice: a, Bob: o, Room: room}, nil
}

// Marker is the team's Settle marker: Alice's `!sec help` in its room.
func (t *Team) Marker() Marker { return Marker{From: t.Alice, Room: t.Room, Text: "!sec help"} }

// Close stops the team's clients.
func (t *Team) Close() {
	t.Alice.Close()
	t.Bob.Close()
}

// Build compiles secbot into dir and returns the binary's path. The
// crashpoints tag arms the crash points the crash tests name, the
// testclock tag lets Advance step the bot's clock; release builds leave
// both out.
func Build(dir string) (string, error) {
	out := filepath.Join(dir, "bin", "secbot")
	cmd := exec.Command("go", "build", "-tags=goolm,crashpoints,testclock", "-o", out, "github.com/enarx/secbot")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build secbot: %w\n%s", err, msg)
	}
	return out, nil
}

// NewUser registers a fresh user whose name starts with prefix.
func (b *Bed) NewUser(ctx context.Context, prefix string) (*matrixtest.User, error) {
	b.mu.Lock()
	b.users++
	name := fmt.Sprintf("%s%d", prefix, b.users)
	b.mu.Unlock()
	return matrixtest.NewUser(ctx, b.Server, name, b.Dir)
}

// Close stops the team's clients and the homeserver.
func (b *Bed) Close() {
	for _, u := range []*matrixtest.User{b.Alice, b.Bob} {
		if u != nil {
			u.Close()
		}
	}
	_ = b.Server.Stop()
}

// BotOptions tune one secbot instance.
type BotOptions struct {
	// SLA overrides [sla] keys, e.g. {"acknowledge": `"10s"`}.
	SLA map[string]string
	// Extra is appended to the config file.
	Extra string
	// AnnounceRooms are the [announce] rooms.
	AnnounceRooms []id.RoomID
	// GitHub, if set, is the stand-in the bot's advisories go to.
	GitHub *ghsatest.Server
	// GitHubRepositories and GitHubOrganizations, if set, replace the
	// deprecated owner/repo with [github] repositories and organizations;
	// PollEvery is [github] poll_every.
	GitHubRepositories, GitHubOrganizations []string
	PollEvery                               string
	// HTTPListen, if set, serves /metrics and /healthz there.
	HTTPListen string
	// LogLevel is the bot's -log-level (info if empty).
	LogLevel string
	// TeamRoom, if set, is the bot's team room instead of the bed's.
	TeamRoom id.RoomID
	// Members join alice and bob on the team.
	Members []id.UserID
	// Mail, if set, is the mail server of the bot's security mailbox,
	// MailAddress@mailtest.Domain (an account made with MailPassword).
	Mail *mailtest.Server
	// MaxAttachment is [email] max_attachment ("" for the default).
	MaxAttachment string
	// DNS, if set, is [email] dns_server: the resolver of DKIM keys and
	// DMARC records (a mailtest.DNS).
	DNS string
	// Team, if set, is the bot's team instead of the bed's: its room is
	// the team room, its Alice the coordinator and its Bob the backup
	// (TeamRoom and Members still apply on top).
	Team *Team
	// Postgres, if set, is the URL (password included) of the PostgreSQL
	// database the bot runs on instead of its SQLite file: the config gets
	// the URL without the password and a password_file. With
	// SECBOT_TEST_DB=postgres every bot gets a database of a shared
	// throwaway cluster.
	Postgres string
}

// MailAddress and MailPassword are the security mailbox's account on the
// test mail server.
const (
	MailAddress  = "security@" + mailtest.Domain
	MailPassword = "mail-password-for-secbot"
)

// GitHubToken is the token the GitHub stand-in expects.
const GitHubToken = "ghp_secbot_stand_in_token"

// NewGitHub starts a GitHub stand-in for owner/repo with the given users.
func NewGitHub(public bool, users ...string) (*ghsatest.Server, error) {
	return ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Public: public, Users: users, Token: GitHubToken, ForkDelay: 3 * time.Second}, "")
}

func tomlList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// NewGitHubWith starts a GitHub stand-in for enarx/enarx and more
// repositories (owner/name), with the given users.
func NewGitHubWith(repos []string, users ...string) (*ghsatest.Server, error) {
	return ghsatest.New(ghsatest.Options{Owner: "enarx", Repo: "enarx", Repositories: repos, Users: users, Token: GitHubToken, ForkDelay: 3 * time.Second}, "")
}

// Bot is one secbot process with its own account, database and log.
type Bot struct {
	UserID     id.UserID
	Dir        string
	ConfigPath string
	DBPath     string
	// DBURL is the bot's PostgreSQL database (password included), "" when
	// it runs on the SQLite file DBPath.
	DBURL    string
	LogPath  string
	binary   string
	logLevel string
	// HTTPListen is where /metrics and /healthz answer ("" if not served).
	HTTPListen string

	// team is the bot's own team (nil: the bed's).
	team *Team

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

// NewBot registers a bot account, writes its config (secrets in files),
// invites it to the team room and returns it, not yet started.
func (b *Bed) NewBot(ctx context.Context, name string, opts BotOptions) (*Bot, error) {
	dir := filepath.Join(b.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	password := "password-" + name
	if err := b.Server.Register(ctx, name, password); err != nil {
		return nil, err
	}
	for file, secret := range map[string]string{"password": password, "pickle-key": "pickle-key-for-" + name + "-0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(secret+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	sla := map[string]string{}
	for k, v := range opts.SLA {
		sla[k] = v
	}
	var slaLines []string
	for k, v := range sla {
		slaLines = append(slaLines, k+" = "+v)
	}
	var announce []string
	for _, r := range opts.AnnounceRooms {
		announce = append(announce, fmt.Sprintf("%q", r))
	}
	github := ""
	if opts.GitHub != nil {
		if err := os.WriteFile(filepath.Join(dir, "github-token"), []byte(GitHubToken+"\n"), 0o600); err != nil {
			return nil, err
		}
		github = fmt.Sprintf("\n[github]\napi_url = %q\ntoken_file = \"github-token\"\n", opts.GitHub.URL())
		if len(opts.GitHubRepositories) == 0 {
			// The older tests' config: advisories only, no watching, so
			// their injected faults meet the requests they mean.
			github += "owner = \"enarx\"\nrepo = \"enarx\"\nwatch_reports = false\n"
		} else {
			github += "repositories = " + tomlList(opts.GitHubRepositories) + "\norganizations = " + tomlList(opts.GitHubOrganizations) + "\n"
		}
		if opts.PollEvery != "" {
			github += fmt.Sprintf("poll_every = %q\n", opts.PollEvery)
		}
	}
	email := ""
	if m := opts.Mail; m != nil {
		if err := os.WriteFile(filepath.Join(dir, "mail-password"), []byte(MailPassword+"\n"), 0o600); err != nil {
			return nil, err
		}
		imap, smtp, ca := "imap", "smtp", ""
		if m.TLS {
			imap, smtp, ca = "imaps", "smtps", m.CAFile
		}
		email = fmt.Sprintf("\n[email]\nimap_url = \"%s://%s\"\nsmtp_url = \"%s://%s\"\ntls_ca_file = %q\nusername = %q\npassword_file = \"mail-password\"\naddress = %q\n",
			imap, m.IMAP, smtp, m.Submission, ca, MailAddress, MailAddress)
		if opts.MaxAttachment != "" {
			email += fmt.Sprintf("max_attachment = %q\n", opts.MaxAttachment)
		}
		if opts.DNS != "" {
			email += fmt.Sprintf("dns_server = %q\n", opts.DNS)
		}
	}
	teamRoom, alice, bob := b.TeamRoom, b.Alice, b.Bob
	if opts.Team != nil {
		teamRoom, alice, bob = opts.Team.Room, opts.Team.Alice, opts.Team.Bob
	}
	if opts.TeamRoom != "" {
		teamRoom = opts.TeamRoom
	}
	database := `path = "secbot.db"`
	if opts.Postgres == "" && os.Getenv("SECBOT_TEST_DB") == "postgres" {
		// Every bot of the run on a database of its own in one cluster
		// (stopped when the test binary ends).
		c, err := pgtest.SharedCluster()
		if err != nil {
			return nil, err
		}
		name, err := c.CreateDatabase(ctx)
		if err != nil {
			return nil, err
		}
		opts.Postgres = c.URL(name)
	}
	if opts.Postgres != "" {
		u, err := url.Parse(opts.Postgres)
		if err != nil {
			return nil, fmt.Errorf("the PostgreSQL URL: %w", err)
		}
		password, _ := u.User.Password()
		u.User = url.User(u.User.Username())
		if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte(password+"\n"), 0o600); err != nil {
			return nil, err
		}
		database = fmt.Sprintf("url = %q\npassword_file = \"db-password\"", u.String())
	}
	cfg := fmt.Sprintf(`[matrix]
homeserver = %q
user_id = %q
password_file = "password"
pickle_key_file = "pickle-key"
recovery_key_file = "recovery-key"

[database]
%s

[team]
room = %q
members = [%q, %q%s]
coordinator = %q
backup = %q

[announce]
rooms = [%s]

[sla]
%s

[http]
listen = %q
%s%s%s`, b.Server.URL, matrixtest.UserID(name), database, teamRoom, alice.ID(), bob.ID(), extraMembers(opts.Members), alice.ID(), bob.ID(),
		strings.Join(announce, ", "), strings.Join(slaLines, "\n"), opts.HTTPListen, github, email, opts.Extra)
	bot := &Bot{team: opts.Team,
		UserID: id.UserID(matrixtest.UserID(name)), Dir: dir, binary: b.Binary, logLevel: opts.LogLevel, HTTPListen: opts.HTTPListen,
		ConfigPath: filepath.Join(dir, "secbot.toml"), DBPath: filepath.Join(dir, "secbot.db"), LogPath: filepath.Join(dir, "secbot.log"),
		DBURL: opts.Postgres,
	}
	if err := os.WriteFile(bot.ConfigPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if _, err := alice.Client.InviteUser(ctx, teamRoom, &mautrix.ReqInviteUser{UserID: bot.UserID}); err != nil {
		return nil, fmt.Errorf("invite bot to the team room: %w", err)
	}
	return bot, nil
}

func extraMembers(members []id.UserID) string {
	var out strings.Builder
	for _, m := range members {
		fmt.Fprintf(&out, ", %q", m)
	}
	return out.String()
}

// Start runs the bot; env adds variables (e.g. a crash point).
func (p *Bot) Start(env ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("bot already running")
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"run", "-config", p.ConfigPath}
	if p.logLevel != "" {
		args = append(args, "-log-level", p.logLevel)
	}
	cmd := exec.Command(p.binary, args...)
	cmd.Dir = p.Dir
	cmd.Env = append(append(os.Environ(), testclock.Env+"="+p.clockFile()), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	go func(done chan error) { done <- cmd.Wait(); _ = logFile.Close() }(p.done)
	return nil
}

// Running reports whether the process is alive.
func (p *Bot) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// RSS returns the process's resident memory, in bytes.
func (p *Bot) RSS() (int64, error) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return 0, errors.New("bot not running")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Wait waits for the process to exit by itself and returns its exit code.
func (p *Bot) Wait(timeout time.Duration) (int, error) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return 0, errors.New("bot not running")
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("bot still running after %s", timeout)
	}
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return cmd.ProcessState.ExitCode(), nil
}

// Kill stops the bot as a crash would (SIGKILL).
func (p *Bot) Kill() error { return p.signal(syscall.SIGKILL) }

// Stop asks the bot to shut down (SIGTERM) and waits for it.
func (p *Bot) Stop() error { return p.signal(syscall.SIGTERM) }

func (p *Bot) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGHUP {
		return nil // it keeps running
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("bot did not stop within 20 s of %s", sig)
	}
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return nil
}

// Healthz returns the status of the bot's /healthz, 0 if it does not answer.
func (p *Bot) Healthz() int {
	resp, err := http.Get("http://" + p.HTTPListen + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Metric reads one unlabelled value from the bot's /metrics.
func (p *Bot) Metric(name string) (float64, error) {
	resp, err := http.Get("http://" + p.HTTPListen + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// WaitMetric waits until a metric of the bot's /metrics has the value want.
func (p *Bot) WaitMetric(ctx context.Context, name string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := p.Metric(name)
		if err == nil && v == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %v (%v) after %s, want %v", name, v, err, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitOutboxEmpty waits until every recorded side effect has been made.
func (p *Bot) WaitOutboxEmpty(ctx context.Context, timeout time.Duration) error {
	return p.WaitMetric(ctx, "secbot_outbox_pending", 0, timeout)
}

// Log returns what the bot has logged so far.
func (p *Bot) Log() string {
	data, _ := os.ReadFile(p.LogPath)
	return string(data)
}

// Reload rewrites the bot's config with edit and sends SIGHUP.
func (p *Bot) Reload(edit func(config string) string) error {
	data, err := os.ReadFile(p.ConfigPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.ConfigPath, []byte(edit(string(data))), 0o600); err != nil {
		return err
	}
	return p.signal(syscall.SIGHUP)
}
