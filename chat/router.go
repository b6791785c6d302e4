package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// ErrNotReady means an effect depends on a room that does not exist yet;
// the outbox tries it again shortly.
var ErrNotReady = errors.New("the room this effect needs does not exist yet")

// ErrPermanent wraps an error that no retry can mend (the platform refused
// the request, or the effect names a platform secbot is not on); the
// outbox gives up on the effect.
var ErrPermanent = errors.New("permanent failure")

// ErrRoomUnusable is a platform's word that a room refused a post because
// the bot cannot use the room at all, for good (Rocket.Chat: a private
// group the server end-to-end encrypts). It wraps ErrPermanent. The core
// decides where such a post goes instead (a case room's: the reporter's
// direct chat); the platform only says why it was refused.
var ErrRoomUnusable = fmt.Errorf("%w: the bot cannot use the room", ErrPermanent)

// ChatKinds are the kinds of effect a chat platform makes.
var ChatKinds = []string{outbox.KindSend, outbox.KindCreateCaseRoom, outbox.KindOpenDM, outbox.KindInvite, outbox.KindReact, outbox.KindKick}

// Router makes each chat effect on the platform of the room or person it
// names: the outbox knows kinds, not platforms.
type Router struct {
	Platforms Platforms
	// CaseRoom is a case's room ("" before it exists), for effects
	// addressed to a case's room.
	CaseRoom func(ctx context.Context, caseID disclosure.CaseID) (string, error)
}

// Executors returns an executor for each chat kind.
func (r Router) Executors() map[string]outbox.Executor {
	out := map[string]outbox.Executor{}
	for _, kind := range ChatKinds {
		out[kind] = func(ctx context.Context, e store.Effect) (any, error) {
			p, err := r.platform(ctx, kind, e.Payload)
			if err != nil {
				return nil, err
			}
			ex, ok := p.Executors()[kind]
			if !ok {
				return nil, fmt.Errorf("%w: %s cannot make %s", ErrPermanent, p.Name(), kind)
			}
			return ex(ctx, e)
		}
	}
	return out
}

// where is every field by which a chat payload names its room or person.
type where struct {
	To       outbox.Target       `json:"to"`
	Room     string              `json:"room"`
	User     disclosure.Person   `json:"user"`
	Platform disclosure.Platform `json:"platform"`
}

// platform is the platform an effect of kind is made on.
func (r Router) platform(ctx context.Context, kind string, payload []byte) (Platform, error) {
	var w where
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: %s payload: %w", ErrPermanent, kind, err)
	}
	var name disclosure.Platform
	switch kind {
	case outbox.KindCreateCaseRoom:
		// A row queued before rooms had platforms is Matrix's.
		name = w.Platform
		if name == "" {
			name = disclosure.Matrix
		}
	case outbox.KindOpenDM:
		name = PlatformOf(string(w.User))
	case outbox.KindReact:
		name = PlatformOf(w.Room)
	default:
		var err error
		if name, err = r.TargetPlatform(ctx, w.To); err != nil {
			return nil, err
		}
	}
	p, ok := r.Platforms[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s effect for %q, a platform secbot is not on", ErrPermanent, kind, name)
	}
	return p, nil
}

// TargetPlatform is the platform of the room a target names
// (ErrNotReady: a case room still to come).
func (r Router) TargetPlatform(ctx context.Context, t outbox.Target) (disclosure.Platform, error) {
	switch {
	case t.Room != "":
		return PlatformOf(t.Room), nil
	case t.DMWith != "":
		return PlatformOf(string(t.DMWith)), nil
	case t.CaseRoomOf != "":
		caseID, err := disclosure.ParseCaseID(t.CaseRoomOf)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		room, err := r.CaseRoom(ctx, caseID)
		if err != nil {
			return "", err
		}
		if room == "" {
			return "", ErrNotReady
		}
		return PlatformOf(room), nil
	}
	return "", fmt.Errorf("%w: effect names no room", ErrPermanent)
}

// Poster is the poster of the platform a target's room is on
// (ErrNotReady: a case room still to come; ErrPermanent: a platform that
// secbot is not on, or that posts no such messages).
func (r Router) Poster(ctx context.Context, to outbox.Target) (Poster, error) {
	name, err := r.TargetPlatform(ctx, to)
	if err != nil {
		return nil, err
	}
	p, ok := r.Platforms[name]
	if !ok {
		return nil, fmt.Errorf("%w: a post into a room of %q, a platform secbot is not on", ErrPermanent, name)
	}
	poster, ok := p.(Poster)
	if !ok {
		return nil, fmt.Errorf("%w: %s cannot post messages of many parts", ErrPermanent, name)
	}
	return poster, nil
}
