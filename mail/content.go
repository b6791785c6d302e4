package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	// Decoders of the charsets mail is written in.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/enarx/secbot/disclosure"
)

// ErrMalformed is a message that cannot be parsed. Its errors never
// quote the message: they are logged and stored with the outbox row.
var ErrMalformed = errors.New("the message is malformed")

// Content is a message as the team reads it in its case room. It exists
// only while an effect posts it: it is never stored or logged.
type Content struct {
	From, Subject string
	// MessageID is the message's Message-ID, which tells it is the one
	// the effect names.
	MessageID string
	// Texts are the message's texts: every inline text/plain part, and
	// each inline text/html part that is not the alternative of a plain
	// one (its source), in order.
	Texts       []Text
	Attachments []Attachment
	// TooLarge are attachments over the size limit, left in the mailbox.
	TooLarge []Attachment
	// Skipped are the parts past MaxParts, left in the mailbox (not read).
	Skipped []Attachment
}

// Text is one text part of a message.
type Text struct {
	Text string
	// HTML marks an HTML part's source.
	HTML bool
	// Cut is the part's whole size when Text is only its beginning (over
	// the size limit), 0 when Text is whole.
	Cut int64
}

// MaxParts is how many parts of one email (texts and files) are read and
// posted; the rest are named and left in the mailbox.
const MaxParts = 20

// Attachment is one file of a message.
type Attachment struct {
	Name, Type string
	// Size is the decoded size (estimated from the encoded one for a
	// file that was not fetched).
	Size int64
	Data []byte
}

// leaf is one non-multipart part of a message.
type leaf struct {
	path []int
	part *imap.BodyStructureSinglePart
	// alternative is set for a part with a text/plain alternative.
	alternative bool
}

func (l leaf) attachment() bool {
	if d := l.part.Disposition(); d != nil && strings.EqualFold(d.Value, "attachment") {
		return true
	}
	if l.part.Filename() != "" {
		return true
	}
	return l.part.MediaType() != "text/plain" && l.part.MediaType() != "text/html"
}

// decodedSize estimates a part's size once its transfer encoding is undone.
func (l leaf) decodedSize() int64 {
	n := int64(l.part.Size)
	if strings.EqualFold(l.part.Encoding, "base64") {
		return n * 3 / 4
	}
	return n
}

// Fetch reads the message ref from the mailbox: its sender, subject, texts
// and the attachments up to the size limit. It returns ErrGone if the
// message is no longer there.
func (c *Config) Fetch(ctx context.Context, ref Ref) (*Content, error) {
	var out *Content
	err := c.session(ctx, c.Mailbox, func(cl *imapclient.Client, sel *imap.SelectData) error {
		if sel.UIDValidity != ref.UIDValidity {
			return fmt.Errorf("%w: UIDVALIDITY is %d, not %d", ErrGone, sel.UIDValidity, ref.UIDValidity)
		}
		var err error
		out, err = c.fetch(cl, imap.UID(ref.UID))
		return err
	})
	return out, err
}

// leaves lists the non-multipart parts of a message, in order, marking
// the text/html parts that a text/plain part of the same
// multipart/alternative stands for.
func leaves(bs imap.BodyStructure) []leaf {
	var out []leaf
	// plainIn holds the multipart/alternative parts (by path) with an
	// inline text/plain part inside.
	plainIn := map[string]bool{}
	var alternatives []string
	bs.Walk(func(path []int, part imap.BodyStructure) bool {
		key := fmt.Sprint(path)
		switch p := part.(type) {
		case *imap.BodyStructureMultiPart:
			if strings.EqualFold(p.Subtype, "alternative") {
				alternatives = append(alternatives, key)
			}
		case *imap.BodyStructureSinglePart:
			l := leaf{path: slices.Clone(path), part: p}
			if !l.attachment() && p.MediaType() == "text/plain" {
				for _, a := range alternatives {
					if within(key, a) {
						plainIn[a] = true
					}
				}
			}
			out = append(out, l)
		}
		return true
	})
	for i, l := range out {
		if l.attachment() || l.part.MediaType() != "text/html" {
			continue
		}
		key := fmt.Sprint(l.path)
		for a := range plainIn {
			if within(key, a) {
				out[i].alternative = true
			}
		}
	}
	return out
}

// within reports whether the part at path key is inside the part at
// path parent (paths as fmt.Sprint prints them: "[1 2]").
func within(key, parent string) bool {
	if parent == "[]" {
		return true
	}
	return strings.HasPrefix(key, strings.TrimSuffix(parent, "]")+" ")
}

func (c *Config) fetch(cl *imapclient.Client, uid imap.UID) (*Content, error) {
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	msgs, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
		UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: []*imap.FetchItemBodySection{header},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch message: %w", err)
	}
	if len(msgs) == 0 {
		return nil, ErrGone
	}
	msg := msgs[0]
	rawHeader := msg.FindBodySection(header)
	entity, err := message.Read(bytes.NewReader(append(rawHeader, '\r', '\n')))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		// A parser's error may quote the line it choked on: not repeated.
		return nil, fmt.Errorf("%w: its header cannot be read", ErrMalformed)
	}
	h := mail.Header{Header: entity.Header}
	out := &Content{}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		out.From = neutralText(from[0].Address)
	}
	out.Subject, _ = h.Subject()
	out.MessageID, _ = h.MessageID()
	if msg.BodyStructure == nil {
		return nil, fmt.Errorf("%w: it has no body structure", ErrMalformed)
	}

	_, single := msg.BodyStructure.(*imap.BodyStructureSinglePart)
	read := 0
	for _, l := range leaves(msg.BodyStructure) {
		text := !l.attachment()
		if text && l.alternative {
			continue // the plain text stands for it
		}
		named := Attachment{Name: l.name(), Type: l.part.MediaType(), Size: l.decodedSize()}
		switch {
		case !text && l.decodedSize() > c.MaxAttachment:
			out.TooLarge = append(out.TooLarge, named)
			continue
		case read >= MaxParts:
			out.Skipped = append(out.Skipped, named)
			continue
		}
		read++
		data, whole, err := c.fetchPart(cl, uid, l, single)
		if err != nil {
			return nil, err
		}
		if text {
			t := Text{Text: strings.ReplaceAll(string(data), "\r\n", "\n"), HTML: l.part.MediaType() == "text/html"}
			if whole > int64(len(data)) {
				t.Cut = whole
			}
			out.Texts = append(out.Texts, t)
			continue
		}
		if whole > c.MaxAttachment {
			named.Size = whole
			out.TooLarge = append(out.TooLarge, named)
			continue
		}
		named.Size, named.Data = int64(len(data)), data
		out.Attachments = append(out.Attachments, named)
	}
	return out, nil
}

// name is the attachment's file name made safe to show and to save (see
// neutralName), or one made from its type.
func (l leaf) name() string {
	ext := ".bin"
	if exts, _ := mime.ExtensionsByType(l.part.MediaType()); len(exts) > 0 {
		ext = exts[0]
	}
	made := "attachment-" + strings.Trim(strings.ReplaceAll(fmt.Sprint(l.path), " ", "."), "[]") + ext
	return neutralName(l.part.Filename(), made)
}

// maxName is the longest file name shown (in runes).
const maxName = 80

// neutralName makes a file name a reporter chose safe to show and to save:
// no directories (path separators, "..", a drive's colon), no control or
// invisible formatting characters (the right-to-left override U+202E
// that shows "exe.txt" for "txt.exe", zero-width ones), no leading dot,
// at most maxName runes. What is left empty becomes made.
func neutralName(name, made string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == '\\' || r == ':':
			b.WriteRune('_')
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
			b.WriteRune('_')
		case unicode.IsSpace(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", "_")
	}
	out = strings.TrimLeft(strings.TrimSpace(out), ".")
	out = strings.TrimRight(out, ". ")
	if r := []rune(out); len(r) > maxName {
		ext := []rune(path.Ext(out))
		if len(ext) > 10 {
			ext = nil
		}
		out = string(r[:maxName-len(ext)-1]) + "…" + string(ext)
	}
	if strings.Trim(out, "_ ") == "" {
		return made
	}
	return out
}

// fetchPart reads one part and undoes its transfer encoding and charset.
// The part's own MIME header travels with its body to go-message, which
// decodes it; a message that is a single part has the message header.
// It reads at most MaxAttachment bytes; whole is the part's decoded size
// (when over the limit, at least MaxAttachment+1).
func (c *Config) fetchPart(cl *imapclient.Client, uid imap.UID, l leaf, single bool) (data []byte, whole int64, err error) {
	var head, body *imap.FetchItemBodySection
	if single {
		head = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
		body = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
	} else {
		head = &imap.FetchItemBodySection{Part: l.path, Specifier: imap.PartSpecifierMIME, Peek: true}
		body = &imap.FetchItemBodySection{Part: l.path, Peek: true}
	}
	msgs, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{head, body}}).Collect()
	if err != nil {
		return nil, 0, fmt.Errorf("fetch part %v: %w", l.path, err)
	}
	if len(msgs) == 0 {
		return nil, 0, ErrGone
	}
	raw := append(bytes.Clone(msgs[0].FindBodySection(head)), msgs[0].FindBodySection(body)...)
	entity, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, 0, fmt.Errorf("%w: part %v cannot be read", ErrMalformed, l.path)
	}
	data, err = io.ReadAll(io.LimitReader(entity.Body, c.MaxAttachment+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: part %v cannot be decoded", ErrMalformed, l.path)
	}
	whole = int64(len(data))
	if whole > c.MaxAttachment {
		// Its size as the mail server tells it, the rest left unread.
		whole = max(whole, l.decodedSize())
		data = data[:c.MaxAttachment]
	}
	return data, whole, nil
}

// BounceCase reads a delivery report ref and returns the case of the
// secbot mail it returns, named by the Message-ID, In-Reply-To or
// References of the returned message (its message/rfc822 or
// text/rfc822-headers part); zero if it returns none of ours.
func (c *Config) BounceCase(ctx context.Context, ref Ref) (disclosure.CaseID, error) {
	var found disclosure.CaseID
	err := c.session(ctx, c.Mailbox, func(cl *imapclient.Client, sel *imap.SelectData) error {
		if sel.UIDValidity != ref.UIDValidity {
			return fmt.Errorf("%w: UIDVALIDITY is %d, not %d", ErrGone, sel.UIDValidity, ref.UIDValidity)
		}
		uid := imap.UID(ref.UID)
		msgs, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch message: %w", err)
		}
		if len(msgs) == 0 || msgs[0].BodyStructure == nil {
			return ErrGone
		}
		var sections []*imap.FetchItemBodySection
		msgs[0].BodyStructure.Walk(func(path []int, part imap.BodyStructure) bool {
			if len(sections) >= 4 || len(path) == 0 {
				return len(sections) < 4
			}
			// The returned message, or its header: its beginning is read
			// (not PART.HEADER, which some servers answer with the part's
			// own MIME header).
			switch strings.ToLower(part.MediaType()) {
			case "message/rfc822", "message/global", "text/rfc822-headers", "text/global-headers":
				sections = append(sections, &imap.FetchItemBodySection{Part: slices.Clone(path), Peek: true, Partial: &imap.SectionPartial{Size: 64 << 10}})
				return false
			}
			return true
		})
		if len(sections) == 0 {
			return nil
		}
		got, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: sections}).Collect()
		if err != nil {
			return fmt.Errorf("fetch the returned header: %w", err)
		}
		if len(got) == 0 {
			return ErrGone
		}
		for _, sec := range sections {
			raw := got[0].FindBodySection(sec)
			th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(bytes.Clone(raw), '\r', '\n'))))
			if err != nil && th.Len() == 0 {
				continue
			}
			h := mail.Header{Header: message.Header{Header: th}}
			var ids []string
			if id, err := h.MessageID(); err == nil && id != "" {
				ids = append(ids, id)
			}
			for _, field := range []string{"In-Reply-To", "References"} {
				if l, err := h.MsgIDList(field); err == nil {
					ids = append(ids, l...)
				}
			}
			if caseID, ok := ownCase(ids, c.Address); ok {
				found = caseID
				return nil
			}
		}
		return nil
	})
	return found, err
}
