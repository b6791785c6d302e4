package rocketchat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/internal/crashpoint"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

// Executors make every chat kind of effect (chat.ChatKinds) on Rocket.Chat.
func (p *Platform) Executors() map[string]outbox.Executor {
	return map[string]outbox.Executor{
		outbox.KindSend:           p.execSend,
		outbox.KindCreateCaseRoom: p.execCreateCaseRoom,
		outbox.KindOpenDM:         p.execOpenDM,
		outbox.KindInvite:         p.execInvite,
		outbox.KindReact:          p.execReact,
		outbox.KindKick:           p.execKick,
	}
}

// hit is a crash point: crashpoint.Hit (which exits a build made for the
// crash tests); the package's tests make it panic instead.
var hit = crashpoint.Hit

// SendResult is what a made chat.send keeps: the message's ID.
type SendResult struct {
	Message string `json:"message"`
}

// RoomResult is what a made chat.create_case_room or chat.open_dm keeps.
type RoomResult struct {
	Room string `json:"room"`
}

// ErrEncryptedGroup is a case group the server made end-to-end encrypted
// (E2E_Force_Encryption_For_Private_Room): a bot can neither read nor
// write in it. It wraps chat.ErrPermanent.
var ErrEncryptedGroup = errors.New("rocketchat: the server made the case group end-to-end encrypted, which a bot cannot use")

// EncryptedGroupError is ErrEncryptedGroup for one case: the group exists
// (recorded as the case's room, with its people in it), but nothing secbot
// sends can reach it.
type EncryptedGroupError struct {
	Case disclosure.CaseID
	Room string // qualified
}

func (e *EncryptedGroupError) Error() string {
	return fmt.Sprintf("%s: case %s, group %s", ErrEncryptedGroup, e.Case, e.Room)
}

// Is makes an EncryptedGroupError match ErrEncryptedGroup and chat.ErrPermanent.
func (e *EncryptedGroupError) Is(target error) bool {
	return target == ErrEncryptedGroup || target == chat.ErrPermanent
}

// MessageID is the _id of the message a chat.send effect posts: derived
// from the outbox row (its ID and when it was queued) under the
// installation's secret, so that every retry of the row posts under the
// same ID (the server keeps one message per ID: a retry after a crash
// cannot post twice), while a row of another installation (another
// database, whose rows are numbered from 1 again) gets another ID and
// cannot be taken for this one's. 17 characters of Meteor's ID alphabet,
// as the server's own IDs.
func (p *Platform) MessageID(e store.Effect) string {
	tag := p.derive("chat.send:"+strconv.FormatInt(e.ID, 10)+":"+strconv.FormatInt(e.CreatedAt.UnixMilli(), 10), 17)
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
	out := make([]byte, 17)
	for i := range out {
		v, _ := strconv.ParseUint(tag[2*i:2*i+2], 16, 8)
		out[i] = alphabet[int(v)%len(alphabet)]
	}
	return string(out)
}

// resolve is the server's ID of the room a target names; chat.ErrNotReady
// while a case room or DM is still to come.
func (p *Platform) resolve(ctx context.Context, t outbox.Target) (string, error) {
	switch {
	case t.Room != "":
		return p.roomID(ctx, t.Room)
	case t.CaseRoomOf != "":
		caseID, err := disclosure.ParseCaseID(t.CaseRoomOf)
		if err != nil {
			return "", fmt.Errorf("%w: %w", chat.ErrPermanent, err)
		}
		c, err := p.st.Case(ctx, caseID)
		if err != nil {
			return "", err
		}
		if c.CaseRoom == "" {
			return "", chat.ErrNotReady
		}
		return p.roomID(ctx, c.CaseRoom)
	case t.DMWith != "":
		dm, err := p.st.DMRoom(ctx, disclosure.Person(chat.Qualified(string(t.DMWith))))
		if errors.Is(err, store.ErrNotFound) {
			return "", chat.ErrNotReady
		}
		if err != nil {
			return "", err
		}
		return p.roomID(ctx, dm)
	}
	return "", fmt.Errorf("%w: effect names no room", chat.ErrPermanent)
}

func (p *Platform) execSend(ctx context.Context, e store.Effect) (any, error) {
	var s outbox.SendEffect
	if err := e.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	roomID, err := p.resolve(ctx, s.To)
	if err != nil {
		return nil, err
	}
	if p.knownEncrypted(roomID) {
		// A bot cannot write in it: the server would refuse the post.
		return nil, fmt.Errorf("%w: %w", chat.ErrRoomUnusable, ErrEncryptedRoom)
	}
	var first string
	var sent Sent
	for i, part := range splitMessage(rocketMarkdown(s.Markdown), maxMessage) {
		m := Message{ID: p.partID(e, i), RoomID: roomID, Text: part, ThreadID: s.ThreadRoot}
		if i == 0 {
			first = m.ID
		}
		sent, err = p.c.SendMessage(ctx, m)
		if err != nil && s.To.Room != "" && invalidRoom(err) {
			// A room the config names by its name (rocketchat:announcements)
			// rather than its ID: look the name up, once.
			if id, lerr := p.roomID(ctx, disclosure.On(disclosure.RocketChat, "#"+chat.Native(s.To.Room))); lerr == nil && id != roomID {
				roomID, m.RoomID = id, id
				sent, err = p.c.SendMessage(ctx, m)
			}
		}
		if err != nil {
			break
		}
		hit("rocketchat.sent")
	}
	if err = classify(err); err != nil {
		if errors.Is(err, chat.ErrPermanent) && p.encrypted(ctx, roomID) {
			// Refused because the room is end-to-end encrypted (made so
			// by the server, or since): for good, and the core's to
			// route elsewhere.
			err = fmt.Errorf("%w: %w: %w", chat.ErrRoomUnusable, ErrEncryptedRoom, err)
		}
		if errors.Is(err, chat.ErrPermanent) && s.IfRefused != "" {
			where := p.RoomName(s.To.Room) // #name, as the team knows it
			if where == "" {
				where = chat.Native(s.To.Room)
			}
			notice := fmt.Sprintf("⚠️ I could not post in %s: the server refused (%s). Add me there (with permission to post), then run the command again: it posts only where it failed.", where, refusal(err))
			if _, qerr := outbox.Enqueue(ctx, p.st, store.RoomLane(s.IfRefused), outbox.KindSend, outbox.SendEffect{To: outbox.Target{Room: s.IfRefused}, Markdown: notice}, p.clock.Now()); qerr != nil {
				return nil, qerr
			}
		}
		return nil, err
	}
	zerolog.Ctx(ctx).Debug().Str("room_id", roomID).Str("message_id", first).Bool("already_posted", sent.Duplicate).Msg("Sent message")
	return SendResult{Message: first}, nil
}

// ErrEncryptedRoom is a room that is end-to-end encrypted, in which a
// bot can neither read nor write (a send to it fails with
// chat.ErrRoomUnusable).
var ErrEncryptedRoom = errors.New("rocketchat: the room is end-to-end encrypted, which a bot cannot use")

// knownEncrypted reports whether the bot knows a room to be end-to-end
// encrypted already (a case group it made so).
func (p *Platform) knownEncrypted(roomID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rooms[roomID].Encrypted
}

// encrypted asks the server whether a room that refused a post is
// end-to-end encrypted (false when it cannot tell).
func (p *Platform) encrypted(ctx context.Context, roomID string) bool {
	r, err := p.c.RoomInfo(ctx, roomID)
	if err != nil {
		return false
	}
	p.remember(r)
	return r.Encrypted
}

// invalidRoom reports whether a send was refused for naming no room
// (canSendMessage: a Meteor error on older servers, a plain one on newer).
func invalidRoom(err error) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && (apiErr.Type == "error-invalid-room" || strings.Contains(apiErr.Message, "error-invalid-room"))
}

// maxMessage is the longest message sent in one piece: below the server's
// default Message_MaxAllowedSize (5000), which refuses longer ones.
const maxMessage = 4000

// partID is the _id of part i of a send: MessageID for the first, one
// derived the same way for each further part, so that a retry posts none
// of them twice.
func (p *Platform) partID(e store.Effect, i int) string {
	if i == 0 {
		return p.MessageID(e)
	}
	part := e
	part.ID = -part.ID*1000 - int64(i) // a row ID of no row
	return p.MessageID(part)
}

// splitMessage cuts text into parts of at most limit bytes, at paragraph
// breaks, else line breaks, else anywhere between two characters.
func splitMessage(text string, limit int) []string {
	var parts []string
	for len(text) > limit {
		cut := strings.LastIndex(text[:limit], "\n\n")
		if cut <= 0 {
			cut = strings.LastIndex(text[:limit], "\n")
		}
		if cut <= 0 {
			cut = limit
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		parts = append(parts, strings.TrimRight(text[:cut], "\n"))
		text = strings.TrimLeft(text[cut:], "\n")
	}
	return append(parts, text)
}

// rcEscapes are the characters EscapeMarkdown (written for Matrix's
// CommonMark) escapes and Rocket.Chat's message parser does not read an
// escape of: it would show the backslash. Unescaped they make no markup
// (":name:" at most an emoji, "@name" a mention, which the parser makes
// of "\@name" too). The escapes it does read (` * _ # . ~) stay, and so
// do those of [ ] ( ) < > | !, whose backslash shows but without which
// a link or an image could be made.
var rcEscapes = regexp.MustCompile(`\\([\\:\-+=&"'{}@])`)

// rocketMarkdown is the core's Markdown as Rocket.Chat's parser reads it.
func rocketMarkdown(md string) string { return rcEscapes.ReplaceAllString(md, "$1") }

// refusal is the short reason of a server's refusal: its error type, never
// its whole text.
func refusal(err error) string {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		if apiErr.Type != "" {
			return apiErr.Type
		}
		return strconv.Itoa(apiErr.Status)
	}
	return "error"
}

// caseGroupName is the neutral name of a case's group: the case ID only
// (security-report-sr-2026-0007), and -2, -3, … after it when a group of
// that name exists that is not this installation's.
func caseGroupName(caseID disclosure.CaseID, n int) string {
	name := "security-report-" + strings.ToLower(caseID.String())
	if n > 1 {
		name += "-" + strconv.Itoa(n)
	}
	return name
}

// markField is the custom field that marks a case group as this
// installation's: a tag of the case ID under the secret, which no one
// without the secret can make, so a group someone else named like a case
// group is never adopted.
const markField = "secbot"

// maxNameTries bounds how many names a case group tries.
const maxNameTries = 5

func (p *Platform) execCreateCaseRoom(ctx context.Context, e store.Effect) (any, error) {
	var cr outbox.CreateCaseRoomEffect
	if err := e.Decode(&cr); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	caseID, err := disclosure.ParseCaseID(cr.CaseID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	c, err := p.st.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	if c.CaseRoom != "" {
		return RoomResult{Room: c.CaseRoom}, nil
	}
	var members []string
	for _, who := range cr.Invite {
		if who.Platform() != disclosure.RocketChat || who == p.Self() {
			continue
		}
		if _, err := p.userID(ctx, who); errors.Is(err, ErrNotThePinnedAccount) {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Not adding to the case group: the username is another account now")
			continue
		} else if err != nil && !errors.Is(err, chat.ErrPermanent) {
			return nil, err
		}
		// An unknown username is skipped by the server, as by Matrix.
		members = append(members, who.Native())
	}
	mark := p.derive("case-room:"+caseID.String(), 16)
	var group Room
	found := false
	for n := 1; n <= maxNameTries && !found; n++ {
		name := caseGroupName(caseID, n)
		// A group made before a crash (or by an earlier try) carries the
		// mark: adopt it, and add whoever the crash kept out.
		existing, ok, err := p.c.GroupByName(ctx, name)
		if err != nil {
			return nil, classify(err)
		}
		if ok {
			if existing.CustomFields[markField] != mark {
				continue // someone else's group of that name
			}
			group, found = existing, true
			p.inviteMissing(ctx, group.ID, members)
			break
		}
		made, err := p.c.CreateMarkedGroup(ctx, name, members, map[string]any{markField: mark})
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Type == "error-duplicate-channel-name" {
			continue // a group or channel the bot cannot see has that name
		}
		if err != nil {
			return nil, classify(err)
		}
		group, found = made, true
		hit("rocketchat.case_room_created")
	}
	if !found {
		return nil, fmt.Errorf("%w: every name for the case group of %s is taken", chat.ErrPermanent, caseID)
	}
	p.remember(group)
	room := qualifiedRoom(group.ID)
	if err := p.st.SetCaseRoom(ctx, caseID, room, p.clock.Now()); err != nil {
		return nil, err
	}
	if group.Encrypted {
		return nil, &EncryptedGroupError{Case: caseID, Room: room}
	}
	return RoomResult{Room: room}, nil
}

// inviteMissing adds to a group the members not in it (after a crash
// between creating it and recording it, creation's members are there
// already; this is for a server that dropped some).
func (p *Platform) inviteMissing(ctx context.Context, groupID string, usernames []string) {
	present := map[string]bool{}
	if members, err := p.c.GroupMembers(ctx, groupID); err == nil {
		for _, m := range members {
			present[m.Username] = true
		}
	}
	for _, name := range usernames {
		if present[name] {
			continue
		}
		id, err := p.userID(ctx, person(name))
		if err == nil {
			err = p.c.InviteToGroup(ctx, groupID, id)
		}
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("username", name).Msg("Could not add to the case group")
		}
	}
}

func (p *Platform) execOpenDM(ctx context.Context, e store.Effect) (any, error) {
	var d outbox.OpenDMEffect
	if err := e.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	if d.User.Platform() != disclosure.RocketChat {
		return nil, fmt.Errorf("%w: %q is not a Rocket.Chat person", chat.ErrPermanent, d.User)
	}
	// The DM secbot has with them already is the one: it is bound to the
	// account they had then, where the username may have passed to
	// someone else since.
	room, err := p.st.DMRoom(ctx, d.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if room != "" {
		if r, err := p.c.RoomInfo(ctx, chat.Native(room)); err == nil && r.Type == DirectMessage {
			p.remember(r)
		} else {
			room = ""
		}
	}
	if room == "" {
		if _, err := p.userID(ctx, d.User); err != nil {
			return nil, err
		}
		// im.create finds the DM if it exists: a retry opens no second one.
		r, err := p.c.CreateDM(ctx, d.User.Native())
		if err != nil {
			return nil, classify(err)
		}
		p.remember(r)
		room = qualifiedRoom(r.ID)
	}
	now := p.clock.Now()
	err = p.st.Tx(ctx, func(ctx context.Context) error {
		if err := p.st.SetDMRoomOf(ctx, d.User, room, now); err != nil {
			return err
		}
		if d.CaseID == "" {
			return nil
		}
		caseID, err := disclosure.ParseCaseID(d.CaseID)
		if err != nil {
			return err
		}
		return p.st.SetDMRoom(ctx, caseID, room, now)
	})
	if err != nil {
		return nil, err
	}
	return RoomResult{Room: room}, nil
}

func (p *Platform) execInvite(ctx context.Context, e store.Effect) (any, error) {
	var i outbox.InviteEffect
	if err := e.Decode(&i); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	roomID, err := p.resolve(ctx, i.To)
	if err != nil {
		return nil, err
	}
	userID, err := p.userID(ctx, i.User)
	if err != nil {
		return nil, err
	}
	// Adding a member is no change and no error: a retry is harmless.
	return nil, classify(p.c.InviteToGroup(ctx, roomID, userID))
}

func (p *Platform) execKick(ctx context.Context, e store.Effect) (any, error) {
	var k outbox.KickEffect
	if err := e.Decode(&k); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	roomID, err := p.resolve(ctx, k.To)
	if err != nil {
		return nil, err
	}
	userID, err := p.userID(ctx, k.User)
	if err != nil {
		return nil, err
	}
	err = p.c.KickFromGroup(ctx, roomID, userID)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Type == "error-user-not-in-room" {
		return nil, nil // gone already (an earlier try, or they left)
	}
	return nil, classify(err)
}

// shortcodes are the reactions the core uses, as Rocket.Chat names them.
var shortcodes = map[string]string{
	"✅": ":white_check_mark:",
	"⏳": ":hourglass_flowing_sand:",
	"👀": ":eyes:",
}

// execReact reacts with chat.react (shouldReact: a retry changes nothing).
// The core's quiet commands are answered by a reaction only; without it a
// team member would not see that their command was taken. A reaction the
// server has no shortcode for here is left out.
func (p *Platform) execReact(ctx context.Context, e store.Effect) (any, error) {
	var r outbox.ReactEffect
	if err := e.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", chat.ErrPermanent, err)
	}
	emoji, ok := shortcodes[r.Key]
	if !ok {
		if strings.HasPrefix(r.Key, ":") && strings.HasSuffix(r.Key, ":") {
			emoji = r.Key
		} else {
			zerolog.Ctx(ctx).Debug().Str("key", r.Key).Msg("No Rocket.Chat shortcode for a reaction; left out")
			return nil, nil
		}
	}
	return nil, classify(p.c.React(ctx, chat.Native(r.Event), emoji))
}
