// Command demo runs secbot end to end on this machine: a local Dendrite,
// secbot on its own SQLite file, the security team and a scripted reporter,
// and prints the conversation each side sees. It stops what it started.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/internal/testenv/dendrite"
	"github.com/enarx/secbot/internal/testenv/github"
	"github.com/enarx/secbot/internal/testenv/maddy"
	rctest "github.com/enarx/secbot/internal/testenv/rocketchat"
	"github.com/enarx/secbot/internal/testenv/testbed"
	"github.com/enarx/secbot/rocketchat"
)

const step = 60 * time.Second

func main() {
	if err := demo(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func demo() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "secbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say("Starting a local Dendrite %s on 127.0.0.1 and building secbot…", matrixtest.DendriteVersion)
	bed, err := testbed.New(ctx, dir)
	if err != nil {
		return err
	}
	defer bed.Close()
	// GitHub cannot be reached from here: a local stand-in that checks every
	// request against GitHub's OpenAPI description plays its part.
	gh, err := testbed.NewGitHubWith([]string{"enarx/docs"}, "rita-gh", "gary-gh")
	if err != nil {
		return err
	}
	defer gh.Close()
	say("GitHub is played by a local stand-in at %s (not GitHub itself; it validates every request against GitHub's OpenAPI description).", gh.URL())
	// The security mailbox on a local mail server (maddy).
	mailServer, err := mailtest.Start(ctx, filepath.Join(dir, "maddy"), mailtest.Options{DKIM: true})
	if err != nil {
		return err
	}
	defer func() { _ = mailServer.Stop() }()
	// The reporters' domain publishes the DKIM key maddy signs with and a
	// DMARC record, on a local DNS stand-in: secbot verifies senders.
	dkimName, dkimRecord, err := mailServer.DKIMRecord()
	if err != nil {
		return err
	}
	dns, err := mailtest.StartDNS(map[string]string{dkimName: dkimRecord, "_dmarc." + mailtest.Domain: "v=DMARC1; p=reject"})
	if err != nil {
		return err
	}
	defer dns.Stop()
	emil := "emil@" + mailtest.Domain
	for addr, pw := range map[string]string{testbed.MailAddress: testbed.MailPassword, emil: "emil-password"} {
		if err := mailServer.AddAccount(addr, pw); err != nil {
			return err
		}
	}
	say("The security mailbox %s is on a local maddy %s (IMAP %s, submission %s).", testbed.MailAddress, mailtest.MaddyVersion, mailServer.IMAP, mailServer.Submission)
	// The policy's "Enarx Chat" is a Rocket.Chat server: a local stand-in
	// that checks every request with Rocket.Chat's own validators.
	chatServer, err := rctest.New(rctest.Options{})
	if err != nil {
		return err
	}
	chatListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	chatURL := "http://" + chatListener.Addr().String() // what Serve takes as its URL
	go func() { _ = chatServer.Serve(chatListener) }()
	defer func() { chatServer.Close(); _ = chatListener.Close() }()
	rcBot, rcToken := chatServer.AddUser("secbot")
	chatServer.SetRoles(rcBot, "bot")
	rcTokenFile := filepath.Join(dir, "rocketchat-token")
	if err := os.WriteFile(rcTokenFile, []byte(rcToken), 0o600); err != nil {
		return err
	}
	say("Rocket.Chat is played by a local stand-in at %s (not a Rocket.Chat server; it validates every request with Rocket.Chat's own validators).", chatURL)
	// The policy's days shrunk to seconds, so the timers show within a minute.
	bot, err := bed.NewBot(ctx, "secbot", testbed.BotOptions{
		GitHub: gh, GitHubRepositories: []string{"enarx/enarx", "enarx/docs"}, PollEvery: "5s", Mail: mailServer, DNS: dns.Addr,
		SLA: map[string]string{"acknowledge": `"20s"`, "detailed_response": `"10m"`, "remind_before": `"10s"`, "repeat_every": `"30s"`},
		Extra: "\n[[escalation]]\nafter = \"0s\"\nnotify = \"coordinator\"\n[[escalation]]\nafter = \"15s\"\nnotify = \"backup\"\n[[escalation]]\nafter = \"30s\"\nnotify = \"team\"\n" +
			"\n[rocketchat]\nserver = \"" + chatURL + "\"\nuser_id = \"" + rcBot + "\"\ntoken_file = \"" + rcTokenFile + "\"\n",
	})
	if err != nil {
		return err
	}
	if err := bot.Start(); err != nil {
		return err
	}
	defer func() { _ = bot.Stop() }()
	say("Homeserver %s; security team %s (coordinator) and %s (backup); secbot is %s.", bed.Server.URL, bed.Alice.ID(), bed.Bob.ID(), bot.UserID)
	say("Promises shrunk for the demo: acknowledge within 20 s (reminder 10 s before), then escalate to the coordinator at once, the backup after 15 s, the team after 30 s.")
	bed.Alice.SetAutoJoin(true)
	bed.Bob.SetAutoJoin(true)
	if err := bed.Alice.WaitJoined(ctx, step, bed.TeamRoom, bot.UserID); err != nil {
		return err
	}
	if err := showTrust(ctx, bed, bot, dir); err != nil {
		return err
	}

	rita, err := bed.NewUser(ctx, "rita")
	if err != nil {
		return err
	}
	defer rita.Close()
	say("\nThe reporter, %s, opens an encrypted direct chat with secbot.", rita.ID())
	dm, err := rita.DM(ctx, bot.UserID)
	if err != nil {
		return err
	}
	if err := rita.WaitJoined(ctx, step, dm, bot.UserID); err != nil {
		return err
	}
	if _, err := rita.Say(ctx, dm, "Hi, I'd like to report a security issue in your project."); err != nil {
		return err
	}
	if _, err := rita.WaitMessage(ctx, step, dm, bot.UserID, "do not share"); err != nil {
		return err
	}
	invite, err := rita.WaitInvite(ctx, step, bot.UserID, func(evt *event.Event) bool { return !evt.Content.AsMember().IsDirect })
	if err != nil {
		return err
	}
	room := invite.RoomID
	say("secbot invites the reporter to a private room; the reporter joins.")
	if err := rita.Join(ctx, room); err != nil {
		return err
	}
	welcome, err := rita.WaitMessage(ctx, step, room, bot.UserID, "Security report")
	if err != nil {
		return err
	}
	encrypted := welcome.Mautrix.WasEncrypted
	if _, err := rita.WaitMessage(ctx, step, room, bot.UserID, "private GitHub Security Advisory for"); err != nil {
		return err
	}
	say("secbot drafts a private GitHub Security Advisory for the case and posts its link; the reporter asks to join it.")
	if _, err := rita.Say(ctx, room, "!github rita-gh"); err != nil {
		return err
	}
	if _, err := rita.WaitMessage(ctx, step, room, bot.UserID, "is invited"); err != nil {
		return err
	}
	for _, adv := range gh.Advisories() {
		say("  GitHub stand-in: advisory %s, %s, %q, collaborators %v; requests outside GitHub's description: %d", adv.GHSAID, adv.State, adv.Summary, adv.CollaboratingUsers, len(gh.Violations()))
	}
	start := time.Now()
	say("\nNobody on the team answers yet. Waiting for the timers…")
	if _, err := bed.Alice.WaitMessage(ctx, step, bed.TeamRoom, bot.UserID, "Reminder for"); err != nil {
		return err
	}
	say("  +%2.0fs  secbot reminds the team room that the acknowledgement is due soon.", time.Since(start).Seconds())
	coordinatorDM, err := bed.Alice.Wait(ctx, step, "the coordinator's escalation", func(evt *event.Event) bool {
		body, err := matrixtest.Body(evt)
		return err == nil && evt.Sender == bot.UserID && strings.Contains(body, "You are the security coordinator")
	})
	if err != nil {
		return err
	}
	say("  +%2.0fs  the deadline passes: secbot DMs the coordinator.", time.Since(start).Seconds())
	if _, err := rita.WaitMessage(ctx, step, room, bot.UserID, "escalated"); err != nil {
		return err
	}
	say("  +%2.0fs  secbot tells the reporter the team has been chased.", time.Since(start).Seconds())
	if _, err := bed.Alice.Say(ctx, room, "!sec claim"); err != nil {
		return err
	}
	if _, err := rita.WaitMessage(ctx, step, room, bot.UserID, "is handling it"); err != nil {
		return err
	}
	say("  +%2.0fs  the coordinator claims the case in its room: the report is acknowledged and the ladder stops.", time.Since(start).Seconds())
	if _, err := bed.Alice.Say(ctx, room, "Thanks for the report — I'm looking at it now. Please share the details here."); err != nil {
		return err
	}
	if _, err := rita.WaitMessage(ctx, step, room, bed.Alice.ID(), "looking at it"); err != nil {
		return err
	}
	time.Sleep(20 * time.Second)
	backupDMs := 0
	for _, evt := range bed.Bob.Events() {
		if body, err := matrixtest.Body(evt); err == nil && evt.Sender == bot.UserID && strings.Contains(body, "You are the backup contact") {
			backupDMs++
		}
	}
	say("  +%2.0fs  the backup's turn has come and gone: %d escalation(s) reached the backup.", time.Since(start).Seconds(), backupDMs)
	say("\nMeanwhile on GitHub: gary-gh files a private vulnerability report on enarx/docs with \"Report a vulnerability\".")
	report := gh.AddReport(ghsatest.Report{Repository: "enarx/docs", Reporter: "gary-gh", Summary: "(the reporter's words: secbot never reads, stores or posts them)", CreatedAt: time.Now()})
	notice, err := bed.Alice.WaitMessage(ctx, step, bed.TeamRoom, bot.UserID, report)
	if err != nil {
		return err
	}
	ghCase := caseIDPattern.FindString(notice.Content.AsMessage().Body)
	say("  secbot's watcher (polling every 5 s here, with conditional requests) sees it: case %s, the team room told, a case room for the team.", ghCase)
	if _, err := bed.Alice.Say(ctx, bed.TeamRoom, "!sec claim "+ghCase); err != nil {
		return err
	}
	if _, err := bed.Alice.WaitMessage(ctx, step, bed.TeamRoom, bot.UserID, "Accepted the private report of **"+ghCase); err != nil {
		return err
	}
	for _, adv := range gh.Advisories() {
		if adv.GHSAID == report {
			say("  the coordinator claims it from chat: GitHub stand-in: %s in %s is now %s (accepted); the acknowledgement is met.", adv.GHSAID, adv.Repository, adv.State)
		}
	}
	say("  GitHub requests so far: %d, of which %d answered 304 Not Modified (free of rate limit); requests outside GitHub's description: %d.",
		gh.Responses("", "", 0), gh.Responses("", "", 304), len(gh.Violations()))
	emailRoom, err := emailReporter(ctx, bed, bot, mailServer, emil)
	if err != nil {
		return err
	}
	rcRoom, err := rocketChatReporter(ctx, bed, bot, chatServer, chatURL, rcBot, []id.RoomID{room, emailRoom})
	if err != nil {
		return err
	}
	labels := map[id.RoomID]string{dm: "reporter's DM with secbot", rcRoom: "Rocket.Chat case room (the team's)", room: "private case room", bed.TeamRoom: "team room", coordinatorDM.RoomID: "coordinator's DM with secbot",
		emailRoom: "email case room (the team's)"}
	transcript("What the reporter saw", rita, labels)
	transcript("What the coordinator saw", bed.Alice, labels)
	say("\nThe welcome reached the reporter end-to-end encrypted: %v.", encrypted)
	say("secbot's state is in %s (mode 0600); nothing in it is the reporter's text.", bot.DBPath)
	say("Demo finished: stopping secbot and Dendrite.")
	return nil
}

// showTrust shows the bot's device as the team's clients see it, and a
// command from a device its member never verified refused.
func showTrust(ctx context.Context, bed *testbed.Bed, bot *testbed.Bot, dir string) error {
	devices, master, err := bed.Alice.Devices(ctx, bot.UserID)
	if err != nil {
		return err
	}
	for device, trust := range devices {
		say("secbot's device %s, as the coordinator's client sees it: %s (signed by secbot's identity %s; recovery key kept in %s).", device, trust, master, filepath.Join(bot.Dir, "recovery-key"))
	}
	secondDir := filepath.Join(dir, "second-device")
	if err := os.MkdirAll(secondDir, 0o700); err != nil {
		return err
	}
	second, err := matrixtest.Login(ctx, bed.Server, bed.Bob.ID().Localpart(), matrixtest.Password(bed.Bob.ID().Localpart()), secondDir)
	if err != nil {
		return err
	}
	defer second.Close()
	// Its first sync tells it the team room is encrypted.
	if err := second.WaitJoined(ctx, step, bed.TeamRoom, bed.Bob.ID()); err != nil {
		return err
	}
	if _, err := second.Say(ctx, bed.TeamRoom, "!sec list"); err != nil {
		return err
	}
	refusal, err := bed.Bob.WaitMessage(ctx, step, bed.TeamRoom, bot.UserID, "not verified")
	if err != nil {
		return err
	}
	body, _ := matrixtest.Body(refusal)
	say("A new device of %s that their identity never signed (as a hostile homeserver could add) sends `!sec list` in the team room:\n%s", bed.Bob.ID(), indent(body))
	return nil
}

var caseIDPattern = regexp.MustCompile(`SR-\d{4}-\d{4,}`)

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// emailReporter has a reporter write to the security address: secbot
// answers by email, posts the email into the team's encrypted case room,
// and the team answers with !sec reply. It returns the case room.
func emailReporter(ctx context.Context, bed *testbed.Bed, bot *testbed.Bot, srv *mailtest.Server, emil string) (id.RoomID, error) {
	say("\nA second reporter, %s, writes to %s instead.", emil, testbed.MailAddress)
	raw := "From: " + emil + "\r\nTo: " + testbed.MailAddress + "\r\nSubject: Path traversal in the upload handler\r\nMessage-ID: <first@" + mailtest.Domain + ">\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n\r\nUploading ../../etc/passwd as a file name writes outside the upload folder.\r\n"
	// Sent from the reporter's own account: their server signs it (DKIM).
	if err := srv.Submit(emil, "emil-password", []string{testbed.MailAddress}, []byte(raw)); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	msgs, err := srv.WaitMessages(wctx, emil, "emil-password", "INBOX", func(m []mailtest.Message) bool { return len(m) >= 1 })
	if err != nil {
		return "", err
	}
	say("secbot answers by email, in the reporter's thread:\n%s", indent(headerAndText(msgs[0].Raw)))
	post, err := bed.Alice.WaitMessage(ctx, step, "", bot.UserID, "by email")
	if err != nil {
		return "", err
	}
	say("The email's text is posted into the team's encrypted case room (the reporter is not in it; secbot's database never holds the text).")
	if _, err := bed.Alice.Say(ctx, post.RoomID, "!sec reply Thanks — we can reproduce it and are working on a fix."); err != nil {
		return "", err
	}
	if msgs, err = srv.WaitMessages(wctx, emil, "emil-password", "INBOX", func(m []mailtest.Message) bool { return len(m) >= 2 }); err != nil {
		return "", err
	}
	say("The coordinator answers from the room with `!sec reply`; the reporter gets it by email:\n%s", indent(headerAndText(msgs[1].Raw)))
	return post.RoomID, nil
}

// headerAndText shows an email's subject, threading and text.
func headerAndText(raw []byte) string {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return err.Error()
	}
	subject, _ := r.Header.Subject()
	inReplyTo, _ := r.Header.MsgIDList("In-Reply-To")
	out := fmt.Sprintf("Subject: %s\nIn-Reply-To: %v\nAuto-Submitted: %s\n\n", subject, inReplyTo, r.Header.Get("Auto-Submitted"))
	if p, err := r.NextPart(); err == nil {
		text, _ := io.ReadAll(p.Body)
		out += string(text)
	}
	return out
}

// transcript prints the messages a user saw, room by room, in order.
func transcript(title string, u *matrixtest.User, labels map[id.RoomID]string) {
	fmt.Printf("\n── %s ──\n", title)
	for _, evt := range u.Events() {
		if evt.Type != event.EventMessage {
			continue
		}
		label, ok := labels[evt.RoomID]
		if !ok {
			continue
		}
		body, err := matrixtest.Body(evt)
		if err != nil {
			continue
		}
		lock := ""
		if evt.Mautrix.WasEncrypted {
			lock = "🔒 "
		}
		fmt.Printf("[%s] %s%s:\n%s\n\n", label, lock, evt.Sender, indent(body))
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// rocketChatReporter has a Rocket.Chat user report: the team is on Matrix,
// so the reporter is answered in their Rocket.Chat DM, the case room is the
// team's on Matrix, and the team's response reaches the DM.
func rocketChatReporter(ctx context.Context, bed *testbed.Bed, bot *testbed.Bot, srv *rctest.Server, url, botUser string, known []id.RoomID) (id.RoomID, error) {
	ruthID, ruthToken := srv.AddUser("ruth")
	say("\nA third reporter, ruth, is on the project's Rocket.Chat and writes secbot a direct message there.")
	ruth, err := rocketchat.New(url, ruthID, ruthToken, rocketchat.Options{})
	if err != nil {
		return "", err
	}
	if err := srv.WaitSubscribed(ctx, botUser, 1); err != nil {
		return "", err
	}
	dm, err := ruth.CreateDM(ctx, "secbot")
	if err != nil {
		return "", err
	}
	if _, err := srv.SendAs(ruthID, dm.ID, "I want to report a security issue", ""); err != nil {
		return "", err
	}
	answer := func(substr string) (string, error) {
		wctx, cancel := context.WithTimeout(ctx, step)
		defer cancel()
		var text string
		err := srv.Wait(wctx, func() bool {
			for _, m := range srv.Messages(dm.ID) {
				if m.Username == "secbot" && strings.Contains(m.Text, substr) {
					text = m.Text
					return true
				}
			}
			return false
		})
		return text, err
	}
	first, err := answer("SR-")
	if err != nil {
		return "", fmt.Errorf("the Rocket.Chat reporter's answer: %w", err)
	}
	say("secbot answers in the Rocket.Chat DM:\n%s", indent(first))
	// The case room's welcome (alice joins invites by herself).
	welcome, err := bed.Alice.Wait(ctx, step, "the Rocket.Chat case's welcome", func(evt *event.Event) bool {
		msg, ok := evt.Content.Parsed.(*event.MessageEventContent)
		return ok && evt.Sender == bot.UserID && !slices.Contains(known, evt.RoomID) && strings.Contains(msg.Body, "another chat")
	})
	if err != nil {
		return "", err
	}
	room := welcome.RoomID
	say("The case room is the team's, on Matrix; its welcome says the reporter is on another chat and reads only what the team sends.")
	if _, err := bed.Alice.Say(ctx, room, "!sec respond Thank you: we can reproduce it and are preparing a fix."); err != nil {
		return "", err
	}
	text, err := answer("we can reproduce it")
	if err != nil {
		return "", fmt.Errorf("the team's response on Rocket.Chat: %w", err)
	}
	say("The coordinator answers from the case room with `!sec respond`; ruth reads it in her Rocket.Chat DM:\n%s", indent(text))
	return room, nil
}
