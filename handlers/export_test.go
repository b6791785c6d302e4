package handlers

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// The handlers' test world, for the external tests that run the handlers
// with GitHub's stand-in (package ghsa imports handlers).

// World is the handlers' test world.
type World = world

// NewWorld is newWorld.
func NewWorld(t *testing.T, start time.Time) *World { return newWorld(t, start) }

// The test world's people and rooms.
const (
	Alice, Bob, Carol, Reporter = alice, bob, carol, reporter
	CaseRoom, TeamRoom          = caseRoom, teamRoom
)

// Monday is when the test world starts.
var Monday = monday

// Say delivers a text message and returns the bot's newest answer.
func (w *world) Say(room string, sender disclosure.Person, text string) string {
	return w.say(room, sender, text)
}

// OpenCase opens SR-2026-0001 with its room.
func (w *world) OpenCase() { w.openCase() }

// Store is the world's store.
func (w *world) Store() *store.Store { return w.store }

// Clock is the world's fake clock.
func (w *world) Clock() *clockwork.FakeClock { return w.clock }

// Handlers are the world's handlers.
func (w *world) Handlers() *Handlers { return w.h }

// InForce is the world's policy in force.
func (w *world) InForce() *disclosure.InForce { return w.policy }

// Templates are the world's templates.
func (w *world) Templates() *templates.Set { return w.h.templates }
