// Command secbot is the security team's Matrix bot: it runs a project's
// vulnerability disclosure policy, from a reporter's first message to the
// public announcement.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/bot"
	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/config"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/ghsa"
	"github.com/enarx/secbot/handlers"
	"github.com/enarx/secbot/internal/logfilter"
	"github.com/enarx/secbot/internal/testclock"
	"github.com/enarx/secbot/mail"
	"github.com/enarx/secbot/metrics"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/rocketchat"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
	"github.com/enarx/secbot/timers"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("secbot "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "secbot.toml", "the configuration file")
	logFormat := fs.String("log-format", "json", "log format: json or console")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error (debug logs request metadata, never message text)")
	switch cmd {
	case "copy-db":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return copyDB(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "secbot", version)
		return 0
	case "run", "check-config":
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "secbot: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "secbot: the configuration %s is not valid:\n%v\n", *configPath, err)
		return 1
	}
	if _, err := templates.Load(cfg.Templates.Dir); err != nil {
		fmt.Fprintf(stderr, "secbot: the templates are not valid:\n%v\n", err)
		return 1
	}
	if cmd == "check-config" {
		fmt.Fprintf(stdout, "%s is valid.\n%s\n", *configPath, cfg.Summary())
		for _, d := range cfg.Deprecations {
			fmt.Fprintf(stdout, "deprecated: %s\n", d)
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		return 0
	}
	var out io.Writer = stderr
	if *logFormat == "console" {
		out = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.RFC3339}
	}
	// Request bodies (mautrix logs them at debug) may quote what people
	// wrote: they never reach the log.
	out = logfilter.Writer{Out: out, Drop: logfilter.Bodies}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil || level < zerolog.DebugLevel {
		fmt.Fprintf(stderr, "secbot: -log-level must be debug, info, warn or error\n")
		return 2
	}
	// Milliseconds: enough to follow one request through sync, store and outbox.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	log := zerolog.New(out).Level(level).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(log.WithContext(ctx), *configPath, cfg, log); err != nil {
		log.Error().Err(err).Msg("secbot stopped with an error")
		return 1
	}
	log.Info().Msg("secbot stopped")
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  secbot [run] -config FILE        run the bot (the default)
  secbot check-config -config FILE check the configuration and templates, then exit
  secbot copy-db -from FILE -to URL copy a stopped bot's SQLite file into an empty
                                   PostgreSQL database (password in the URL or
                                   SECBOT_DATABASE_PASSWORD)
  secbot version                   print the version
`)
}

// openStore opens the database [database] names: the SQLite file, or the
// PostgreSQL database (its password from password_file or the
// environment). Every table is there, mautrix's crypto and state stores
// included (they share the store's *dbutil.Database).
func openStore(ctx context.Context, db config.Database, log zerolog.Logger) (*store.Store, error) {
	if db.Postgres() {
		log.Info().Str("database", db.Where()).Msg("Using PostgreSQL")
		return store.OpenPostgres(ctx, string(db.ConnString()), log)
	}
	return store.Open(ctx, db.Path, log)
}

// newClock is serve's clock: testclock.New, which is the real clock except
// in the e2e tests' build; the package's tests hand serve a stepped one.
var newClock = testclock.New

// serve wires the parts together and runs them until ctx ends: Matrix sync
// → handlers → store (decision + effects) → outbox → Matrix.
func serve(ctx context.Context, configPath string, cfg *config.Config, log zerolog.Logger) error {
	// On PostgreSQL, first wait to be the active instance (leader.go).
	off, err := becomeActive(ctx, cfg, log)
	if err != nil || off == nil {
		return err // nil: stopped while standing by
	}
	defer off.Close()
	ctx, st := off.ctx, off.st
	tmpl, err := templates.Load(cfg.Templates.Dir)
	if err != nil {
		return err
	}
	clock := newClock() // the real clock, except in the e2e tests' build
	// The chat platforms secbot is on, each one registration here; a chat
	// effect is made by the platform of the room or person it names.
	var on []chat.Platform
	var b *bot.Bot
	if cfg.Matrix.Enabled() {
		if b, err = startMatrix(ctx, cfg, st, log); err != nil {
			return err
		}
		on = append(on, b.Platform())
	}
	var rc *rocketchat.Platform
	if cfg.RocketChat.Enabled() {
		if rc, err = startRocketChat(ctx, cfg, st, clock, log); err != nil {
			return err
		}
		on = append(on, rc)
	}
	runner := outbox.New(st, clock, log.With().Str("component", "outbox").Logger(),
		func(err error) bool { return errors.Is(err, chat.ErrPermanent) || errors.Is(err, mail.ErrRefused) },
		func(err error) bool { return errors.Is(err, chat.ErrNotReady) })
	platforms := chat.NewPlatforms(on...)
	router := chat.Router{Platforms: platforms, CaseRoom: func(ctx context.Context, caseID disclosure.CaseID) (string, error) {
		c, err := st.Case(ctx, caseID)
		if err != nil {
			return "", err
		}
		return c.CaseRoom, nil
	}}
	chatEffects := router.Executors()
	for kind, ex := range chatEffects {
		runner.Register(kind, ex)
	}
	github := cfg.GitHub.Enabled()
	// The one policy in force: handlers, timers and GitHub effects all read
	// it, and a reload swaps it whole.
	start, err := resolvedPolicy(ctx, cfg, github, rc)
	if err != nil {
		return err
	}
	policy := disclosure.NewInForce(start)
	if b != nil {
		b.Kick, b.Clock = runner.Kick, clock
		// A post the team room refuses (the bot not in it yet) waits, retried.
		b.FollowTeamRoom(func() string { return policy.Get().TeamRoom })
		b.IsTeam = func(who disclosure.Person) bool { return policy.Get().IsTeam(who) }
	}
	var gh *ghsa.Client
	var effects *ghsa.Effects
	if github {
		owner, name, _ := strings.Cut(cfg.GitHub.DefaultRepository(), "/")
		gh, err = ghsa.New(ghsa.Config{
			APIURL: cfg.GitHub.APIURL, Owner: owner, Repo: name, Token: string(cfg.GitHub.Token),
			AppID: cfg.GitHub.AppID, InstallationID: cfg.GitHub.InstallationID, PrivateKey: []byte(cfg.GitHub.PrivateKey), Clock: clock,
			Repositories: cfg.GitHub.Repos, Organizations: cfg.GitHub.Organizations,
		})
		if err != nil {
			return fmt.Errorf("github: %w", err)
		}
		effects = &ghsa.Effects{Client: gh, Store: st, Templates: tmpl, Clock: clock, Policy: policy, Product: name}
		for kind, ex := range effects.Executors() {
			runner.Register(kind, ex)
		}
		// GitHub work that keeps failing is parked, and the team told, so
		// the case's other GitHub work goes on.
		runner.LastAttempt = func(kind string) int {
			if strings.HasPrefix(kind, "github.") {
				return ghsa.LastAttempt
			}
			return 0
		}
		log.Info().Strs("repositories", cfg.GitHub.Repos).Strs("organizations", cfg.GitHub.Organizations).Str("auth", cfg.GitHub.AuthMode()).Msg("GitHub advisories enabled")
	}
	for _, d := range cfg.Deprecations {
		log.Warn().Msg("Deprecated config: " + d)
	}
	for _, w := range cfg.Warnings {
		log.Warn().Msg("Config: " + w)
	}
	h := handlers.New(policy, st, platforms, tmpl, clock, runner.Kick)
	// Every channel hands its events to the core through this one door.
	in := chat.Dispatch{In: h, Log: log, CommandOf: h.CommandOf}
	tm := timers.NewTimers(st, clock, policy, h, log.With().Str("component", "timers").Logger(), runner.Kick)
	tm.Elector = off.lead
	tm.SetRetention(cfg.Database.RetentionSpan.Fixed)
	h.SetCommandMaxAge(cfg.Matrix.CommandMaxAgeValue)
	// An invitation to a case room is decided again before it is sent.
	runner.Register(outbox.KindInvite, h.GateInvite(chatEffects[outbox.KindInvite]))
	// A post for a case room the room refuses as unusable reaches its
	// reporter in their direct chat instead.
	runner.Register(outbox.KindSend, h.RerouteUnusable(chatEffects[outbox.KindSend]))
	runner.Register(outbox.KindAnnounce, h.Announce)
	runner.Register(outbox.KindPublished, h.Published)
	var mailbox *mail.Channel
	var mailEffects *mail.Effects
	if cfg.Email.Enabled() {
		mc := &mail.Config{
			IMAP: cfg.Email.IMAP, SMTP: cfg.Email.SMTP, RootCAs: cfg.Email.RootCAs,
			Username: cfg.Email.Username, Password: string(cfg.Email.Password), Address: cfg.Email.Address,
			Mailbox: cfg.Email.Mailbox, MaxAttachment: cfg.Email.MaxAttachmentBytes, PollEvery: cfg.Email.PollEveryValue,
		}
		mailEffects = &mail.Effects{Config: mc, Templates: tmpl, Poster: poster{router: router}, Prefix: func() string { return policy.Get().CommandPrefix },
			Store: st, TeamRoom: func() string { return policy.Get().TeamRoom }}
		for kind, ex := range mailEffects.Executors() {
			runner.Register(kind, ex)
		}
		h.SetMailbox(cfg.Email.Mailbox)
		watcher := mail.NewWatcher(mc, log.With().Str("component", "mail").Logger())
		watcher.Memory = st
		watcher.Auth = &mail.SenderAuth{TrustAuthservID: cfg.Email.TrustAuthservID}
		if cfg.Email.DNSServer != "" {
			watcher.Auth.Resolver = mail.ResolverAt(cfg.Email.DNSServer)
		}
		mailbox = &mail.Channel{Watcher: watcher, Config: mc, In: in}
		log.Info().Str("address", cfg.Email.Address).Str("imap", cfg.Email.IMAP.Host).Str("mailbox", cfg.Email.Mailbox).Msg("Email enabled")
	}
	// GitHub work that keeps failing is parked, and the team told; an email
	// that cannot be posted is named to the team room, never dropped in
	// silence.
	runner.OnDone = func(e store.Effect, err error) {
		switch {
		case err == nil:
		case effects != nil && strings.HasPrefix(e.Kind, "github."):
			if err := effects.Parked(ctx, e, err); err != nil {
				log.Error().Err(err).Msg("Could not tell the team about parked GitHub work")
			}
		case errors.Is(err, rocketchat.ErrEncryptedGroup):
			// The server forces encryption on private groups: the case
			// group cannot be used by a bot.
			log.Error().Err(err).Msg("A Rocket.Chat case group is encrypted by the server and cannot be used")
			if err := h.CaseRoomUnusable(ctx, e, "the Rocket.Chat server encrypts private groups, and its encryption is not open to bots"); err != nil {
				log.Error().Err(err).Msg("Could not tell the team about an unusable case room")
			}
			runner.Kick()
		case mailEffects != nil && e.Kind == outbox.KindMailPost:
			if err := mailEffects.NotPosted(ctx, e, err); err != nil {
				log.Error().Err(err).Msg("Could not tell the team about an email that could not be posted")
			}
			runner.Kick()
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cron, err := tm.Start(ctx)
	if err != nil {
		return fmt.Errorf("start timers: %w", err)
	}
	defer func() { _ = cron.Shutdown() }()
	// Room keys go only to team devices the members' identities signed;
	// an identity changed while secbot was down is told now.
	if b != nil {
		if err := b.WatchTeam(ctx, h, policy.Get().Team); err != nil {
			return fmt.Errorf("watch the team's identities: %w", err)
		}
	}
	// The team may have changed while secbot was down.
	if err := h.FollowTeam(ctx); err != nil {
		return fmt.Errorf("bring the case rooms in line with the team: %w", err)
	}
	checkTeamRoom := func(context.Context, string) error { return nil }
	if b != nil {
		go checkTeamRoomEncrypted(ctx, b, h, policy, log)
		checkTeamRoom = func(ctx context.Context, room string) error {
			if chat.PlatformOf(room) != disclosure.Matrix {
				return nil
			}
			return b.CheckTeamRoom(ctx, room)
		}
	}
	go reloadOnHangup(ctx, configPath, cfg, reloadable{policy: policy, templates: tmpl, github: github, followTeam: h.FollowTeam, checkTeamRoom: checkTeamRoom,
		resolve: func(ctx context.Context, cfg *config.Config) (disclosure.Policy, error) {
			return resolvedPolicy(ctx, cfg, github, rc)
		}}, log)

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	wg.Go(func() { errs <- runner.Run(ctx) })
	if mailbox != nil {
		wg.Go(func() { errs <- afterFirstSync(ctx, b, mailbox.Run) })
	}
	if b != nil {
		wg.Go(func() { errs <- b.Run(ctx, b.Translate(in, policy.Get().IsTeam)) })
	}
	if rc != nil {
		wg.Go(func() { errs <- rc.Run(ctx, in, policy.Get().IsTeam) })
	}
	if github && cfg.GitHub.WatchReports {
		// Private vulnerability reports become cases: GitHub is a channel.
		w := &ghsa.Watcher{Client: gh, Repositories: cfg.GitHub.Repos, Organizations: cfg.GitHub.Organizations, Every: cfg.GitHub.PollInterval,
			Clock: clock, In: in, Health: effects.WatchHealth}
		wg.Go(func() {
			errs <- afterFirstSync(log.With().Str("component", "github-watch").Logger().WithContext(ctx), b, w.Run)
		})
	}
	if cfg.HTTP.Listen != "" {
		var rate metrics.GitHubRate
		if gh != nil {
			rate = gh.Rate()
		}
		// Healthy while each configured chat platform is in touch.
		health := chatHealth{matrix: b, rc: rc}
		off.serveHTTP(func(o metrics.Office) http.Handler { return metrics.ActiveHandler(st, health, rate, clock.Now, log, o) })
	}
	var first error
	select {
	case first = <-errs:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	return off.result(first)
}

// startMatrix logs the bot in to its homeserver ([matrix]).
func startMatrix(ctx context.Context, cfg *config.Config, st *store.Store, log zerolog.Logger) (*bot.Bot, error) {
	recovery, saveRecovery, err := recoveryKey(cfg.Matrix.RecoveryKeyFile)
	if err != nil {
		return nil, err
	}
	b, err := bot.New(ctx, bot.Config{
		Homeserver:      cfg.Matrix.Homeserver,
		UserID:          cfg.Matrix.UserIDValue,
		Password:        string(cfg.Matrix.Password),
		AccessToken:     string(cfg.Matrix.AccessToken),
		DeviceName:      cfg.Matrix.DeviceName,
		PickleKey:       []byte(cfg.Matrix.PickleKey),
		RecoveryKey:     recovery,
		SaveRecoveryKey: saveRecovery,
	}, st, log)
	if err != nil {
		return nil, err
	}
	log.Info().Stringer("user_id", b.UserID()).Stringer("device_id", b.DeviceID()).Str("master_key", b.MasterKey(ctx)).Msg("Logged in")
	return b, nil
}

// startRocketChat connects the bot user to its Rocket.Chat server
// ([rocketchat]); its message IDs and case groups' marks come from the
// installation's secret.
func startRocketChat(ctx context.Context, cfg *config.Config, st *store.Store, clock clockwork.Clock, log zerolog.Logger) (*rocketchat.Platform, error) {
	l := log.With().Str("component", "rocketchat").Logger()
	client, err := rocketchat.New(cfg.RocketChat.Server, cfg.RocketChat.UserID, string(cfg.RocketChat.Token), rocketchat.Options{Clock: clock, Log: &l})
	if err != nil {
		return nil, fmt.Errorf("rocketchat: %w", err)
	}
	secret, err := st.InstallationSecret(ctx)
	if err != nil {
		return nil, err
	}
	p, err := rocketchat.NewPlatform(ctx, rocketchat.PlatformConfig{Client: client, Store: st, Secret: secret, Log: l, Clock: clock})
	if err != nil {
		return nil, fmt.Errorf("rocketchat: %w", err)
	}
	log.Info().Str("server", cfg.RocketChat.Server).Stringer("user", p.Self()).Msg("Rocket.Chat enabled")
	return p, nil
}

// resolvedPolicy is the config's policy with its Rocket.Chat rooms, which
// the config names, turned into the IDs their messages carry.
func resolvedPolicy(ctx context.Context, cfg *config.Config, github bool, rc *rocketchat.Platform) (disclosure.Policy, error) {
	p := policyOf(cfg, github)
	resolve := func(room string) (string, error) {
		if chat.PlatformOf(room) != disclosure.RocketChat || rc == nil {
			return room, nil
		}
		id, err := rc.ResolveRoom(ctx, room)
		if err != nil {
			return "", fmt.Errorf("find %s: %w", room, err)
		}
		return id, nil
	}
	var err error
	if p.TeamRoom, err = resolve(p.TeamRoom); err != nil {
		return p, err
	}
	rooms := make([]string, 0, len(p.AnnounceRooms))
	for _, room := range p.AnnounceRooms {
		id, err := resolve(room)
		if err != nil {
			return p, err
		}
		if chat.PlatformOf(id) == disclosure.RocketChat && rc != nil {
			// A public channel is read after a restart only by a member.
			if err := rc.JoinPublic(ctx, id); err != nil {
				return p, fmt.Errorf("join %s: %w", room, err)
			}
		}
		rooms = append(rooms, id)
	}
	p.AnnounceRooms = rooms
	return p, nil
}

// afterFirstSync runs a channel once the bot's first sync was handled:
// what a report by email or GitHub posts in the team room needs the bot in
// it, which a first start's sync brings (the invite answered).
func afterFirstSync(ctx context.Context, b *bot.Bot, run func(context.Context) error) error {
	if b == nil {
		return run(ctx) // no Matrix: nothing to wait for
	}
	if err := b.Synced(ctx); err != nil {
		return nil // stopping
	}
	return run(ctx)
}

// recoveryKey is the recovery key of the bot's identity kept in path, and
// how a new one is kept: written to path, or (with no path) printed once
// for the operator, outside the log.
func recoveryKey(path string) (string, func(string) error, error) {
	if path != "" {
		key, err := config.ReadRecoveryKey(path)
		if err != nil {
			return "", nil, fmt.Errorf("matrix.recovery_key_file: %w", err)
		}
		return key, func(key string) error { return config.WriteRecoveryKey(path, key) }, nil
	}
	return "", func(key string) error {
		_, err := fmt.Fprintf(os.Stderr, "\n"+
			"=== secbot created its cross-signing identity. Its RECOVERY KEY is shown this once: ===\n\n    %s\n\n"+
			"Keep it like a password: store it in a file only secbot's user can read and name that\n"+
			"file in [matrix] recovery_key_file. Without it, a new device of the bot (after losing\n"+
			"its database) cannot be verified, and the team would have to verify the bot again.\n\n", key)
		return err
	}, nil
}

// emailKeys is [email] as written (and the password read), without the
// parsed values that do not compare (a CA pool).
func emailKeys(e config.Email) config.Email {
	e.IMAP, e.SMTP, e.RootCAs = nil, nil, nil
	return e
}

// poster posts emails into case rooms through the chat port: the
// platform of the case's room posts them (chat.Poster), files included
// where it posts files.
type poster struct {
	router chat.Router
}

func (p poster) Ready(ctx context.Context, to outbox.Target) error {
	on, err := p.router.Poster(ctx, to)
	if err != nil {
		return err
	}
	return on.Ready(ctx, to)
}

func (p poster) PostsFiles(ctx context.Context, to outbox.Target) (bool, error) {
	on, err := p.router.Poster(ctx, to)
	if err != nil {
		return false, err
	}
	return on.PostsFiles(), nil
}

func (p poster) Post(ctx context.Context, e store.Effect, to outbox.Target, parts []mail.Part) error {
	on, err := p.router.Poster(ctx, to)
	if err != nil {
		return err
	}
	return on.Post(ctx, e, to, chatParts(parts))
}

func chatParts(parts []mail.Part) []chat.Part {
	if parts == nil {
		return nil
	}
	out := make([]chat.Part, len(parts))
	for i, part := range parts {
		out[i] = chat.Part{Markdown: part.Markdown, Verbatim: part.Verbatim, Else: chatParts(part.Else)}
		if f := part.File; f != nil {
			out[i].File = &chat.File{Name: f.Name, Type: f.Type, Data: f.Data}
		}
	}
	return out
}

// checkTeamRoomEncrypted warns, in the log and once in the room, when the
// team room is not end-to-end encrypted. The bot may join it only with its
// first sync, so it looks again for a while until it can read the room.
func checkTeamRoomEncrypted(ctx context.Context, b *bot.Bot, h *handlers.Handlers, policy *disclosure.InForce, log zerolog.Logger) {
	for range 60 {
		room := policy.Get().TeamRoom
		if room == "" {
			return
		}
		if chat.PlatformOf(room) != disclosure.Matrix {
			return // encryption is Matrix's to tell
		}
		if known, encrypted := b.Encrypted(ctx, id.RoomID(chat.Native(room))); known {
			if !encrypted {
				log.Error().Str("room_id", room).Msg("The team room is not end-to-end encrypted: the homeserver can read what secbot posts there")
				if err := h.TeamRoomUnencrypted(ctx); err != nil {
					log.Error().Err(err).Msg("Could not warn the team room")
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// policyOf takes the policy from the config; whether GitHub is on is
// decided at start (its client and executors are made then).
func policyOf(cfg *config.Config, github bool) disclosure.Policy {
	identities := map[disclosure.Person]string{}
	for who, key := range cfg.Team.Identities {
		identities[disclosure.Person(who)] = key
	}
	// A Rocket.Chat room is named in the config; until its platform looks
	// up its ID, the name stands for it.
	teamRoom, announce := cfg.Team.RoomName, cfg.Announce.Qualified
	prefixes, plain := map[disclosure.Platform]string{}, map[disclosure.Platform]bool{}
	if cfg.Matrix.Enabled() {
		prefixes[disclosure.Matrix] = cfg.Matrix.CommandPrefix
	}
	if cfg.RocketChat.Enabled() {
		prefixes[disclosure.RocketChat] = cfg.RocketChat.CommandPrefix
		// Rocket.Chat's end-to-end encryption is not open to bots.
		plain[disclosure.RocketChat] = true
	}
	return disclosure.Policy{
		Identities:         identities,
		SLA:                cfg.Policy,
		Calendar:           cfg.Calendar,
		Ladder:             cfg.Ladder,
		TeamRoom:           teamRoom,
		Email:              cfg.Email.Address,
		Team:               cfg.Team.People,
		Coordinator:        cfg.Team.CoordinatorPerson,
		Backup:             cfg.Team.BackupPerson,
		Rotation:           cfg.Team.Rotation,
		CommandPrefix:      prefixes[disclosure.RoomPlatform(teamRoom)],
		CommandPrefixes:    prefixes,
		PlainRooms:         plain,
		GitHub:             github,
		Repository:         cfg.GitHub.DefaultRepository(),
		Repositories:       cfg.GitHub.Repos,
		Organizations:      cfg.GitHub.Organizations,
		AnnounceRooms:      announce,
		EmbargoWarnAfter:   cfg.Embargo.WarnAfterSpan,
		MaxNewCasesPerHour: cfg.Intake.MaxNewCasesPerHour,
	}
}

// reloadable is what a SIGHUP can change while secbot runs.
type reloadable struct {
	policy    *disclosure.InForce
	templates *templates.Set
	github    bool
	// followTeam brings the open cases' rooms in line with the team.
	followTeam func(context.Context) error
	// checkTeamRoom is the check a new team room meets (joined if
	// invited; refused if not end-to-end encrypted).
	checkTeamRoom func(ctx context.Context, room string) error
	// resolve is the policy of a config, its rooms found on their
	// platforms.
	resolve func(ctx context.Context, cfg *config.Config) (disclosure.Policy, error)
}

// reloadOnHangup re-reads the config and the templates on SIGHUP and puts
// them in force: the team, its room, contacts, ladder, promises,
// announcement rooms, embargo warnings and texts. Ladder progress is in the
// database, so a handover loses nothing. A bad config or template, or a new
// team room that is not end-to-end encrypted, is refused and the old one
// stays in force; what only a restart can change
// (the Matrix account, the database, GitHub, the HTTP address) is named.
func reloadOnHangup(ctx context.Context, path string, running *config.Config, r reloadable, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := config.Load(path)
		if err != nil {
			log.Error().Str("problems", err.Error()).Msg("Config reload refused; keeping the config in force")
			continue
		}
		tmpl, err := templates.Load(cfg.Templates.Dir)
		if err != nil {
			log.Error().Str("problems", err.Error()).Msg("Config reload refused: the templates are not valid; keeping the config in force")
			continue
		}
		next, err := r.resolve(ctx, cfg)
		if err != nil {
			log.Error().Err(err).Msg("Config reload refused: a room it names cannot be found; keeping the config in force")
			continue
		}
		if room := next.TeamRoom; room != "" && room != r.policy.Get().TeamRoom && r.checkTeamRoom != nil {
			// The same check as a start, but a reload can refuse: the
			// team room in force stays until the new one is fit.
			if err := r.checkTeamRoom(ctx, room); err != nil {
				log.Error().Str("team_room", room).Str("problems", err.Error()).Msg("Config reload refused: the new team room is not fit; keeping the config in force")
				continue
			}
		}
		r.templates.Replace(tmpl)
		r.policy.Set(next)
		if err := r.followTeam(ctx); err != nil {
			log.Error().Err(err).Msg("Could not bring the case rooms in line with the team")
		}
		var restart []string
		for name, same := range map[string]bool{
			"[matrix]":     reflect.DeepEqual(cfg.Matrix, running.Matrix),
			"[rocketchat]": reflect.DeepEqual(cfg.RocketChat, running.RocketChat),
			"[database]":   reflect.DeepEqual(cfg.Database, running.Database),
			"[github]":     reflect.DeepEqual(cfg.GitHub, running.GitHub),
			"[email]":      reflect.DeepEqual(emailKeys(cfg.Email), emailKeys(running.Email)),
			"[http]":       reflect.DeepEqual(cfg.HTTP, running.HTTP),
		} {
			if !same {
				restart = append(restart, name)
			}
		}
		slices.Sort(restart)
		if len(restart) > 0 {
			log.Warn().Strs("sections", restart).Msg("These sections changed and take effect only at the next start")
		}
		log.Info().Stringer("coordinator", cfg.Team.CoordinatorID).Stringer("backup", cfg.Team.BackupID).Stringer("team_room", cfg.Team.RoomID).Msg("Config reloaded")
	}
}
