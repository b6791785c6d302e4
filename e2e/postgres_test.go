package e2e

import (
	"os"
	"strings"
	"testing"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
	"github.com/enarx/secbot/internal/testenv/testbed"
)

// On [database] url the whole bot runs on PostgreSQL: a report opens one
// encrypted case room; after a SIGKILL the restarted bot (same device, its
// olm and megolm sessions and its sync position read back from
// PostgreSQL) decrypts the reporter's next message, points them to their
// case and answers the team. No SQLite file is made.
func TestTheBotRunsOnPostgresAndSurvivesAKill(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "pgbot", testbed.BotOptions{Postgres: pgtest.Start(t)})
	reporter := newUser(t, ctx, "pgreporter")
	dm, caseID := report(t, ctx, reporter, bot.UserID)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	if welcome := waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+caseID); !welcome.Mautrix.WasEncrypted {
		t.Error("the welcome reached the reporter unencrypted")
	}
	waitMessage(t, ctx, bed.Alice, bed.TeamRoom, bot.UserID, "New security report **"+caseID)
	bed.Settle(t, ctx, bot, reporter)

	if err := bot.Kill(); err != nil {
		t.Fatal(err)
	}
	restart(t, bot)
	say(t, ctx, reporter, dm, "i want to report a vulnerability")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "already have an open report with us: **"+caseID)
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec claim "+caseID)
	waitMessage(t, ctx, reporter, room, bot.UserID, "is handling it")
	bed.Settle(t, ctx, bot, reporter)

	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
	db, err := bot.OpenDB(true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cases, accounts int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM crypto_account)`).Scan(&cases, &accounts); err != nil {
		t.Fatal(err)
	}
	if cases != 1 || accounts != 1 {
		t.Errorf("PostgreSQL holds %d cases and %d olm accounts, want 1 and 1", cases, accounts)
	}
	if _, err := os.Stat(bot.DBPath); !os.IsNotExist(err) {
		t.Errorf("a SQLite file was made beside the PostgreSQL database: %v", err)
	}
}

// An installation that ran on SQLite moves with `secbot copy-db` and goes
// on from PostgreSQL as the same device: its case, its sync position and
// its olm sessions came along, so the reporter's next encrypted message is
// read and answered, and the team's command reaches the reporter.
func TestAnInstallationMovedWithCopyDBGoesOn(t *testing.T) {
	ctx := testContext(t)
	bot := startBot(t, ctx, "movedbot", testbed.BotOptions{})
	reporter := newUser(t, ctx, "movedreporter")
	dm, caseID := report(t, ctx, reporter, bot.UserID)
	room := caseInvite(t, ctx, reporter, bot.UserID)
	if err := reporter.Join(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, ctx, reporter, room, bot.UserID, "Security report "+caseID)
	bed.Settle(t, ctx, bot, reporter)
	devices, _ := botDevices(t, ctx, bot)
	if err := bot.Stop(); err != nil {
		t.Fatal(err)
	}

	out, err := bot.MoveToPostgres(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copy-db: %s", tail(strings.TrimSpace(out), 1))
	restart(t, bot)
	say(t, ctx, reporter, dm, "i want to report a vulnerability")
	waitMessage(t, ctx, reporter, dm, bot.UserID, "already have an open report with us: **"+caseID)
	say(t, ctx, bed.Alice, bed.TeamRoom, "!sec claim "+caseID)
	waitMessage(t, ctx, reporter, room, bot.UserID, "is handling it")
	bed.Settle(t, ctx, bot, reporter)

	if after, _ := botDevices(t, ctx, bot); len(after) != len(devices) {
		t.Errorf("the bot's devices went from %v to %v: the move made a new device", devices, after)
	}
	if rooms := invitesFrom(reporter, bot.UserID); len(rooms) != 1 {
		t.Errorf("the reporter was invited to %d case rooms, want 1", len(rooms))
	}
	db, err := bot.OpenDB(true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cases int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cases`).Scan(&cases); err != nil || cases != 1 {
		t.Errorf("PostgreSQL holds %d cases (%v), want 1", cases, err)
	}
}
