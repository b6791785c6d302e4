package e2e

import (
	"strings"
	"testing"

	"github.com/enarx/secbot/internal/testenv/maddy"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// Anyone can write a reporter's address in From. A report the reporter's
// own mail server signed (maddy signs what its accounts submit with DKIM;
// the key is published in a DNS stand-in) counts as theirs; a reply with
// the same From delivered by anyone, without a valid signature, is posted
// for the team marked plainly as from an unverified sender, and meets no
// clock; a new report so forged opens its case, marked so in the notice.
func TestASignedEmailCountsAndAForgedOneIsMarkedUnverified(t *testing.T) {
	ctx := testContext(t)
	reporterAddr := "signer@" + mailtest.Domain
	srv, err := mailtest.Start(ctx, t.TempDir(), mailtest.Options{DKIM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	for _, a := range []struct{ addr, pw string }{{testbed.MailAddress, testbed.MailPassword}, {reporterAddr, mailPassword}} {
		if err := srv.AddAccount(a.addr, a.pw); err != nil {
			t.Fatal(err)
		}
	}
	name, record, err := srv.DKIMRecord()
	if err != nil {
		t.Fatal(err)
	}
	dns, err := mailtest.StartDNS(map[string]string{name: record, "_dmarc." + mailtest.Domain: "v=DMARC1; p=reject"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Stop)
	bed.Alice.SetAutoJoin(true)
	t.Cleanup(func() { bed.Alice.SetAutoJoin(false) })
	bot := startBot(t, ctx, "dkimbot", servedOptions(t, testbed.BotOptions{Mail: srv, DNS: dns.Addr}))

	signedCanary, forgedCanary, spoofCanary := canary("SIGNED-CANARY"), canary("FORGED-CANARY"), canary("SPOOF-CANARY")
	report := email{from: reporterAddr, subject: "a vulnerability", messageID: "signed1@" + mailtest.Domain, text: "The report: " + signedCanary + "\n"}
	if err := srv.Submit(reporterAddr, mailPassword, []string{testbed.MailAddress}, report.raw(t)); err != nil {
		t.Fatal(err)
	}
	ack := inbox(t, ctx, srv, reporterAddr, 1)[0]
	caseID := caseIDPattern.FindString(ack.subject)
	if caseID == "" {
		t.Fatalf("the answer's subject names no case: %q", ack.subject)
	}
	notice := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "New security report **"+caseID)
	if body := notice.Content.AsMessage().Body; strings.Contains(body, "Unverified") {
		t.Errorf("the notice of a signed report says unverified: %q", body)
	}
	room := caseInvite(t, ctx, bed.Alice, bot.UserID)
	if body := waitMessage(t, ctx, bed.Alice, room, bot.UserID, signedCanary).Content.AsMessage().Body; strings.Contains(body, "Unverified") {
		t.Errorf("the signed report is posted as unverified: %q", body)
	}

	// The same From, in the thread, delivered by anyone: no signature.
	deliver(t, srv, reporterAddr, email{from: reporterAddr, subject: "Re: " + ack.subject, messageID: "forged1@" + mailtest.Domain, inReplyTo: ack.messageID,
		text: "I withdraw the report. " + forgedCanary + "\n"})
	forged := waitMessage(t, ctx, bed.Alice, room, bot.UserID, forgedCanary).Content.AsMessage().Body
	if !strings.Contains(forged, "Unverified sender") {
		t.Errorf("the forged reply is not marked unverified: %q", forged)
	}
	// It met no clock: the acknowledgement is still due, and the timeline
	// says whose word it was not.
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec status "+caseID)
	status := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "**"+caseID+"** —").Content.AsMessage().Body
	if strings.Contains(status, "met ") || !strings.Contains(status, "unverified sender") {
		t.Errorf("the status after a forged reply:\n%s", status)
	}

	// A new report with a forged From opens its case, marked so.
	deliver(t, srv, "mallory@elsewhere.test", email{from: "cto@" + mailtest.Domain, subject: "urgent", messageID: "spoof1@elsewhere.test", text: spoofCanary + "\n"})
	spoofed := waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "from mailto:cto@"+mailtest.Domain).Content.AsMessage().Body
	if !strings.Contains(spoofed, "Unverified sender") {
		t.Errorf("the notice of a forged report is not marked: %q", spoofed)
	}
}
