package rocketchat

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
)

var _ chat.Poster = (*Platform)(nil)

// Ready returns nil once the target room exists (chat.ErrNotReady before).
func (p *Platform) Ready(ctx context.Context, to outbox.Target) error {
	_, err := p.resolve(ctx, to)
	return err
}

// PostsFiles is false: secbot uploads no files to Rocket.Chat (an upload,
// rooms.media then rooms.mediaConfirm, takes no ID of the client's, so a
// retry after a crash could post a file twice). The core names them
// instead.
func (p *Platform) PostsFiles() bool { return false }

// Post posts parts (an email's head and texts) into a room for the outbox
// effect e: each part a message, or several where it is longer than a
// message may be (Message_MaxAllowedSize), each with an _id derived from
// the effect, the part and the piece, so that a retry after a crash posts
// none of them twice (the server keeps one message per ID), and recorded
// once made, so that a retry sends only what is not. A part's
// Verbatim text is shown as it is, in a code block that nothing in it can
// close. A file is refused (PostsFiles), and Else is never needed: a long
// text is split instead.
func (p *Platform) Post(ctx context.Context, e store.Effect, to outbox.Target, parts []chat.Part) error {
	roomID, err := p.resolve(ctx, to)
	if err != nil {
		return err
	}
	for i, part := range parts {
		if part.File != nil {
			return fmt.Errorf("%w: secbot posts no files on Rocket.Chat (part %d, %s)", chat.ErrPermanent, i, part.File.Name)
		}
	}
	// Each piece made is recorded, so a retry (after a 429 halfway, say)
	// asks the server again only about the one it may have made unrecorded.
	if err := p.st.ForgetPostedParts(ctx); err != nil {
		return err
	}
	done, err := p.st.PostedParts(ctx, e.ID)
	if err != nil {
		return err
	}
	for i, part := range parts {
		// Nobody is notified by what a reporter wrote (a subject of
		// "@all" included).
		for j, text := range postPieces(unmentioned(rocketMarkdown(part.Markdown)), part.Verbatim, maxMessage) {
			key := strconv.Itoa(i) + "." + strconv.Itoa(j)
			if _, ok := done[key]; ok {
				continue
			}
			m := Message{ID: p.postID(e, strconv.Itoa(i), j), RoomID: roomID, Text: text}
			sent, err := p.c.SendMessage(ctx, m)
			if err != nil {
				return classify(err)
			}
			hit("rocketchat.posted")
			if err := p.st.RecordPostedPart(ctx, e.ID, key, m.ID); err != nil {
				return err
			}
			zerolog.Ctx(ctx).Debug().Str("room_id", roomID).Str("message_id", m.ID).Bool("already_posted", sent.Duplicate).Msg("Posted part")
		}
	}
	return nil
}

// postID is the _id of piece j of part key of e's post: derived as
// MessageID is, under the installation's secret, from the row (its ID and
// when it was queued), the part and the piece.
func (p *Platform) postID(e store.Effect, key string, j int) string {
	tag := p.derive("chat.post:"+strconv.FormatInt(e.ID, 10)+":"+strconv.FormatInt(e.CreatedAt.UnixMilli(), 10)+":"+key+":"+strconv.Itoa(j), 17)
	const alphabet = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
	out := make([]byte, 17)
	for i := range out {
		v, _ := strconv.ParseUint(tag[2*i:2*i+2], 16, 8)
		out[i] = alphabet[int(v)%len(alphabet)]
	}
	return string(out)
}

// fence opens and closes a code block.
const fence = "```"

// postPieces lays a part out in messages of at most limit bytes (the
// server counts UTF-16 units, never more than bytes): the notice, then the
// verbatim text in code blocks, the first beside the notice.
func postPieces(md, verbatim string, limit int) []string {
	var pieces []string
	if md != "" {
		pieces = splitMessage(md, limit)
	}
	if verbatim == "" {
		return pieces
	}
	overhead := len(fence+"\n") + len("\n"+fence)
	beside := 0 // room for the first block beside the notice's last piece
	if len(pieces) > 0 {
		beside = limit - len(pieces[len(pieces)-1]) - len("\n") - overhead
	}
	rest := literal(verbatim)
	for first := true; rest != ""; first = false {
		joined := first && beside >= minBeside
		n := limit - overhead
		if joined {
			n = beside
		}
		var chunk string
		chunk, rest = cutVerbatim(rest, n)
		block := fence + "\n" + chunk + "\n" + fence
		if joined {
			pieces[len(pieces)-1] += "\n" + block
			continue
		}
		pieces = append(pieces, block)
	}
	return pieces
}

// minBeside is the least room a text's first block takes beside its
// notice; with less it begins a message of its own.
const minBeside = 512

// literal is a text to be shown in a code block as it is: no run of three
// backticks (which would close the block and let the rest be read as
// markup), and no mention (unmentioned): a zero-width space breaks each
// run, which a reader does not see.
func literal(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	run := 0
	for _, r := range s {
		if r != '`' {
			run = 0
		} else if run++; run == 3 {
			b.WriteRune('\u200b')
			run = 1
		}
		b.WriteRune(r)
	}
	return unmentioned(b.String())
}

// unmentioned is a text that notifies nobody: the server reads an @ at the
// start of a word as a mention (@all, @here: everyone in the room)
// wherever it is, code blocks included, and a reporter's email may hold
// any; a zero-width space before each such @ makes it none.
func unmentioned(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	prev := rune(-1)
	for _, r := range s {
		if r == '@' && (prev == -1 || prev == '>' || isSpace(prev)) {
			b.WriteRune('\u200b')
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == '\u00a0' || (r >= '\u2000' && r <= '\u200a') ||
		r == '\u1680' || r == '\u2028' || r == '\u2029' || r == '\u202f' || r == '\u205f' || r == '\u3000' || r == '\ufeff'
}

// cutVerbatim cuts off the beginning of a text of at most limit bytes,
// after a line break where there is one, else between two characters;
// nothing of the text is dropped or added but the line break at the cut,
// which the block's closing fence stands for.
func cutVerbatim(s string, limit int) (chunk, rest string) {
	if len(s) <= limit {
		return s, ""
	}
	if cut := strings.LastIndexByte(s[:limit+1], '\n'); cut > 0 {
		return s[:cut], s[cut+1:]
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], s[cut:]
}
