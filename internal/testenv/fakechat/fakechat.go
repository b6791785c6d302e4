// Package fakechat is a chat platform for tests that need the handlers
// but no chat server: it joins, leaves and counts nothing, and makes no
// effect (the tests read what was decided back from the outbox). Its name
// is Matrix's, as the tests' unqualified @user and !room names are.
package fakechat

import (
	"context"
	"strings"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
)

// Platform is the fake platform; Bot is the bot's own account on it
// (default @secbot:x).
type Platform struct{ Bot disclosure.Person }

var (
	_ chat.Platform   = Platform{}
	_ chat.Encryption = Platform{}
)

// Platforms is a registry with only the fake platform in it.
func Platforms() chat.Platforms { return chat.NewPlatforms(Platform{}) }

func (Platform) Name() disclosure.Platform { return disclosure.Matrix }

func (p Platform) Self() disclosure.Person {
	if p.Bot == "" {
		return "@secbot:x"
	}
	return p.Bot
}

func (Platform) Vouching() chat.Vouching                                { return chat.VouchesForDevices }
func (Platform) JoinRoom(context.Context, string) error                 { return nil }
func (Platform) LeaveRoom(context.Context, string, string) error        { return nil }
func (Platform) JoinedMemberCount(context.Context, string) (int, error) { return 2, nil }
func (Platform) Executors() map[string]outbox.Executor                  { return nil }
func (Platform) RoomLink(room string) string                            { return "https://matrix.to/#/" + room }

func (Platform) ParsePerson(s string) (disclosure.Person, bool) {
	return disclosure.Person(s), strings.HasPrefix(s, "@") && strings.Contains(s, ":")
}

// HasEncryption: everyone has an encryption device.
func (Platform) HasEncryption(context.Context, disclosure.Person) (bool, error) { return true, nil }
