package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"

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
	// Text is the message's text (its first text/plain part, or its
	// first text/html part's source if it has none).
	Text        string
	Attachments []Attachment
	// TooLarge are attachments over the size limit, left in the mailbox.
	TooLarge []Attachment
}

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

// Fetch reads the message ref from the mailbox: its sender, subject, text
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
		out.From = from[0].Address
	}
	out.Subject, _ = h.Subject()
	out.MessageID, _ = h.MessageID()

	var leaves []leaf
	msg.BodyStructure.Walk(func(path []int, part imap.BodyStructure) bool {
		if single, ok := part.(*imap.BodyStructureSinglePart); ok {
			leaves = append(leaves, leaf{path: append([]int(nil), path...), part: single})
		}
		return true
	})
	_, single := msg.BodyStructure.(*imap.BodyStructureSinglePart)
	var text, html *leaf
	var wanted []leaf
	for i := range leaves {
		l := leaves[i]
		switch {
		case !l.attachment() && l.part.MediaType() == "text/plain" && text == nil:
			text = &leaves[i]
			wanted = append(wanted, l)
		case !l.attachment() && l.part.MediaType() == "text/html" && html == nil:
			html = &leaves[i]
		case l.attachment() && l.decodedSize() > c.MaxAttachment:
			out.TooLarge = append(out.TooLarge, Attachment{Name: l.name(), Type: l.part.MediaType(), Size: l.decodedSize()})
		case l.attachment():
			wanted = append(wanted, l)
		}
	}
	if text == nil && html != nil {
		wanted = append([]leaf{*html}, wanted...)
		text = html
	}
	for _, l := range wanted {
		data, err := c.fetchPart(cl, uid, l, single)
		if err != nil {
			return nil, err
		}
		if text != nil && slices.Equal(l.path, text.path) {
			out.Text = strings.ReplaceAll(string(data), "\r\n", "\n")
			continue
		}
		if int64(len(data)) > c.MaxAttachment {
			out.TooLarge = append(out.TooLarge, Attachment{Name: l.name(), Type: l.part.MediaType(), Size: int64(len(data))})
			continue
		}
		out.Attachments = append(out.Attachments, Attachment{Name: l.name(), Type: l.part.MediaType(), Size: int64(len(data)), Data: data})
	}
	return out, nil
}

// name is the attachment's file name, or one made from its type.
func (l leaf) name() string {
	if n := l.part.Filename(); n != "" {
		return n
	}
	ext := ".bin"
	if exts, _ := mime.ExtensionsByType(l.part.MediaType()); len(exts) > 0 {
		ext = exts[0]
	}
	return "attachment-" + strings.Trim(strings.ReplaceAll(fmt.Sprint(l.path), " ", "."), "[]") + ext
}

// fetchPart reads one part and undoes its transfer encoding and charset.
// The part's own MIME header travels with its body to go-message, which
// decodes it; a message that is a single part has the message header.
func (c *Config) fetchPart(cl *imapclient.Client, uid imap.UID, l leaf, single bool) ([]byte, error) {
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
		return nil, fmt.Errorf("fetch part %v: %w", l.path, err)
	}
	if len(msgs) == 0 {
		return nil, ErrGone
	}
	raw := append(bytes.Clone(msgs[0].FindBodySection(head)), msgs[0].FindBodySection(body)...)
	entity, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: part %v cannot be read", ErrMalformed, l.path)
	}
	data, err := io.ReadAll(io.LimitReader(entity.Body, c.MaxAttachment+1))
	if err != nil {
		return nil, fmt.Errorf("%w: part %v cannot be decoded", ErrMalformed, l.path)
	}
	return data, nil
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
			switch strings.ToLower(part.MediaType()) {
			case "message/rfc822", "message/global":
				sections = append(sections, &imap.FetchItemBodySection{Part: slices.Clone(path), Specifier: imap.PartSpecifierHeader, Peek: true})
				return false
			case "text/rfc822-headers", "text/global-headers":
				sections = append(sections, &imap.FetchItemBodySection{Part: slices.Clone(path), Peek: true, Partial: &imap.SectionPartial{Size: 64 << 10}})
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
