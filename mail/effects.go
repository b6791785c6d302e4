package mail

import (
	"context"

	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Effects runs the email effects.
type Effects struct {
	Config    *Config
	Templates *templates.Set
	Poster    Poster
	// Prefix is the team's command prefix in force.
	Prefix func() string
	// Store and TeamRoom (the team room in force) are where NotPosted
	// records its note.
	Store    *store.Store
	TeamRoom func() string
}

// Executors returns the functions that make the email effects, by kind.
func (x *Effects) Executors() map[string]func(context.Context, store.Effect) (any, error) {
	return map[string]func(context.Context, store.Effect) (any, error){
		outbox.KindMailSend: x.send,
		outbox.KindMailPost: x.post,
	}
}
