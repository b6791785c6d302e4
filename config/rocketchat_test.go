package config

import (
	"encoding/base64"
	"slices"
	"testing"

	"github.com/enarx/secbot/disclosure"
)

// ed25519Key is a master key in the form Matrix publishes one.
var ed25519Key = base64.RawStdEncoding.EncodeToString(make([]byte, 32))

// rocketChatOnly is a team on Rocket.Chat alone, without [matrix].
func rocketChatOnly() doc {
	return doc{
		"rocketchat": {"server": `"https://chat.example.org"`, "user_id": `"BOTUSERID"`},
		"team": {
			"room":        `"rocketchat:security-team"`,
			"members":     `["rocketchat:alice", "rocketchat:bob"]`,
			"coordinator": `"rocketchat:alice"`,
			"backup":      `"rocketchat:bob"`,
		},
		"announce": {"rooms": `["rocketchat:announcements"]`},
	}
}

func TestATeamOnRocketChatAloneIsValid(t *testing.T) {
	cfg, err := Parse([]byte(rocketChatOnly().toml()), t.TempDir(), getenv(withEnv(map[string]string{EnvRocketChatToken: "hunter2-rc-token"})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Matrix.Enabled() || !cfg.RocketChat.Enabled() || cfg.RocketChat.Token != "hunter2-rc-token" || cfg.RocketChat.CommandPrefix != "!sec" {
		t.Errorf("read as matrix %v, rocketchat %+v", cfg.Matrix.Enabled(), cfg.RocketChat)
	}
	want := []disclosure.Person{"rocketchat:alice", "rocketchat:bob"}
	if !slices.Equal(cfg.Team.People, want) || cfg.Team.CoordinatorPerson != "rocketchat:alice" || cfg.Team.BackupPerson != "rocketchat:bob" ||
		cfg.Team.RoomName != "rocketchat:security-team" || len(cfg.Team.MemberIDs) != 0 || !slices.Equal(cfg.Announce.Qualified, []string{"rocketchat:announcements"}) {
		t.Errorf("the team is read as %+v, announcements %v", cfg.Team, cfg.Announce.Qualified)
	}
}

// Both platforms: people of each, written either way for Matrix.
func TestATeamOnBothPlatforms(t *testing.T) {
	d := base().with(map[string]string{
		"rocketchat.server":  `"http://127.0.0.1:3000"`,
		"rocketchat.user_id": `"BOT"`,
		"team.members":       `["@alice:example.org", "matrix:@bob:example.org", "rocketchat:carol"]`,
		"team.backup":        `"rocketchat:carol"`,
		"team.identities":    `{ "matrix:@alice:example.org" = "` + ed25519Key + `", "@bob:example.org" = "` + ed25519Key + `", "rocketchat:carol" = "CAROLUSERID" }`,
	})
	cfg, err := Parse([]byte(d.toml()), t.TempDir(), getenv(withEnv(map[string]string{EnvRocketChatToken: "hunter2-rc-token"})))
	if err != nil {
		t.Fatal(err)
	}
	want := []disclosure.Person{"matrix:@alice:example.org", "matrix:@bob:example.org", "rocketchat:carol"}
	if !slices.Equal(cfg.Team.People, want) || len(cfg.Team.MemberIDs) != 2 || cfg.Team.RoomName != "matrix:!team:example.org" ||
		cfg.Team.Identities["rocketchat:carol"] != "CAROLUSERID" || cfg.Team.Identities["matrix:@bob:example.org"] != ed25519Key {
		t.Errorf("read as %+v", cfg.Team)
	}
}

func TestRocketChatProblemsAreNamed(t *testing.T) {
	env := withEnv(map[string]string{EnvRocketChatToken: "hunter2-rc-token"})
	for _, c := range []struct {
		name string
		doc  doc
		env  map[string]string
		key  string
	}{
		{"no chat at all", doc{"team": rocketChatOnly()["team"]}, env, "matrix"},
		{"a Rocket.Chat member without [rocketchat]", base().with(map[string]string{"team.members": `["@alice:example.org", "@bob:example.org", "rocketchat:carol"]`}), baseEnv, "team.members[2]"},
		{"a Rocket.Chat team room without [rocketchat]", base().with(map[string]string{"team.room": `"rocketchat:security"`}), baseEnv, "team.room"},
		{"a Matrix member without [matrix]", rocketChatOnly().with(map[string]string{"team.members": `["rocketchat:alice", "rocketchat:bob", "@dan:example.org"]`}), env, "team.members[2]"},
		{"a Matrix announcement room without [matrix]", rocketChatOnly().with(map[string]string{"announce.rooms": `["#news:example.org"]`}), env, "announce.rooms[0]"},
		{"a username Rocket.Chat cannot have", rocketChatOnly().with(map[string]string{"team.members": `["rocketchat:alice", "rocketchat:bob", "rocketchat:@x y"]`}), env, "team.members[2]"},
		{"cleartext to a remote server", rocketChatOnly().with(map[string]string{"rocketchat.server": `"http://chat.example.org"`}), env, "rocketchat.server"},
		{"no token", rocketChatOnly(), withEnv(map[string]string{EnvRocketChatToken: unset}), "rocketchat.token_file"},
		{"no user ID", rocketChatOnly().with(map[string]string{"rocketchat.user_id": `""`}), env, "rocketchat.user_id"},
		{"a Rocket.Chat identity that is no user ID", rocketChatOnly().with(map[string]string{"team.identities": `{ "rocketchat:alice" = "", "rocketchat:bob" = "B" }`}), env, "team.identities.rocketchat:alice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc.toml()), t.TempDir(), getenv(c.env))
			if keys := keysOf(problemsOf(t, err)); !slices.Contains(keys, c.key) {
				t.Errorf("problems at %v, want one at %s", keys, c.key)
			}
			if err != nil {
				assertNoSecret(t, c.name, err.Error())
			}
		})
	}
}
