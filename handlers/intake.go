package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/outbox"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// intake opens a case for a request to report a security issue, made in a
// direct chat (direct) or a public room. Nothing of the message's text is
// kept: only that a request was made, by whom and where.
func (h *Handlers) intake(ctx context.Context, msg chat.Message, direct bool) error {
	looksLikeDetails := disclosure.LooksLikeDetails(msg.Text, false)
	// A reporter without an encryption device cannot read the case room:
	// they are told where their private area is instead. Asked before the
	// transaction; when the homeserver cannot say, the usual answer goes.
	encrypted, err := h.hasEncryption(ctx, msg.Sender)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not look up the reporter's encryption devices")
		encrypted = true
	}
	var opened *store.Case
	err = h.once(ctx, msg.ID, func(ctx context.Context) error {
		now := h.clock.Now()
		if existing, err := h.store.OpenCaseOf(ctx, msg.Sender); err == nil {
			// Asking again and again gets one case and, past a few, one
			// polite limit message (HandleMessage's limit of outsiders).
			return h.pointToExisting(ctx, msg, existing, direct, looksLikeDetails)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var dmRoom string
		if direct {
			dmRoom = msg.Room
		}
		c, _, err := h.openCase(ctx, newCase{channel: disclosure.ChannelChat, reporter: msg.Sender, sourceRoom: msg.Room, dmRoom: dmRoom, at: now,
			audit: map[bool]string{true: "direct message", false: "public room"}[direct]})
		if err != nil {
			return err
		}
		opened = c
		lane := c.ID.String()
		replyLane := store.ReplyLane(c.ID)
		p := h.Policy()
		// A reporter who cannot read the case room (no encryption device,
		// or on another chat than the team's) is told where their private
		// area is instead.
		elsewhere := !disclosure.ReadsCaseRoom(msg.Sender, p.TeamPlatform())
		encrypted = encrypted && !elsewhere
		noEncryption := templates.NoEncryption{CaseID: c.ID.String(), Address: p.Email, GitHub: p.GitHub, OtherChat: elsewhere}
		if direct {
			dm := outbox.Target{Room: msg.Room}
			var ack templates.Data = templates.DMAck(h.caseRoomData(c))
			if !encrypted {
				ack = noEncryption
			}
			if err := h.enqueue(ctx, replyLane, dm, ack, outbox.SendEffect{ReplyTo: msg.ID}, true); err != nil {
				return err
			}
			if looksLikeDetails {
				if err := h.enqueue(ctx, replyLane, dm, templates.DMDetailsWarning(h.caseRoomData(c)), outbox.SendEffect{}, true); err != nil {
					return err
				}
			}
		} else {
			// Nothing of the case happens in public: a pointer in a thread,
			// then everything else in a direct chat the bot opens itself.
			if err := h.enqueue(ctx, replyLane, outbox.Target{Room: msg.Room}, templates.PublicThread{CaseID: lane}, outbox.SendEffect{ThreadRoot: msg.ID}, true); err != nil {
				return err
			}
			if _, err := outbox.EnqueueUrgent(ctx, h.store, replyLane, outbox.KindOpenDM, outbox.OpenDMEffect{User: msg.Sender, CaseID: lane}, now); err != nil {
				return err
			}
			var ack templates.Data = templates.DMFromPublic{CaseID: lane, Plain: p.PlainRooms[p.TeamPlatform()]}
			if !encrypted {
				ack = noEncryption
			}
			if err := h.enqueue(ctx, replyLane, outbox.Target{DMWith: msg.Sender}, ack, outbox.SendEffect{}, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && opened != nil {
		zerolog.Ctx(ctx).Info().Stringer("case_id", opened.ID).Bool("direct", direct).Msg("Opened case")
	}
	return err
}

// pointToExisting answers a reporter who asks again while a case is open.
func (h *Handlers) pointToExisting(ctx context.Context, msg chat.Message, c *store.Case, direct, looksLikeDetails bool) error {
	lane := store.CaseLane(c.ID)
	if !direct {
		if err := h.enqueue(ctx, lane, outbox.Target{Room: msg.Room}, templates.PublicThread{CaseID: c.ID.String()}, outbox.SendEffect{ThreadRoot: msg.ID}, true); err != nil {
			return err
		}
		return h.enqueue(ctx, lane, outbox.Target{DMWith: msg.Sender}, templates.DMExistingCase(h.caseRoomData(c)), outbox.SendEffect{}, false)
	}
	if looksLikeDetails {
		if err := h.enqueue(ctx, lane, outbox.Target{Room: msg.Room}, templates.DMDetailsWarning(h.caseRoomData(c)), outbox.SendEffect{ReplyTo: msg.ID}, false); err != nil {
			return err
		}
	}
	return h.enqueue(ctx, lane, outbox.Target{Room: msg.Room}, templates.DMExistingCase(h.caseRoomData(c)), outbox.SendEffect{ReplyTo: msg.ID}, false)
}

// newCase is a report that opens a case, from any channel.
type newCase struct {
	channel            disclosure.Channel
	reporter           disclosure.Person
	sourceRoom, dmRoom string
	// at is when the report was made: the clocks count from it.
	at time.Time
	// report is the GitHub private report that is the case's advisory.
	report *chat.GitHubAdvisory
	// audit says where the report came from.
	audit string
	// unverified marks a report by email whose From nothing proves.
	unverified bool
	// machine says why the report is machine-sent ("" for a person's).
	machine string
}

// openCase opens a case for a report, whatever its channel: the store
// gives the case its ID and records where the report came from, the domain
// decides the rest (its clocks, the case room for the team and a reporter
// who reads chat, the welcome, the team room's notice and the advisory,
// set up within the hourly cap) and it is applied as a command's decision
// is. Run it inside a transaction; the channel answers the reporter
// itself, with the promises the opening names.
func (h *Handlers) openCase(ctx context.Context, n newCase) (*store.Case, disclosure.Opening, error) {
	now := h.clock.Now()
	p := h.Policy()
	c, err := h.store.CreateCase(ctx, n.reporter, n.sourceRoom, n.dmRoom, n.at)
	if err != nil {
		return nil, disclosure.Opening{}, err
	}
	if n.channel == disclosure.ChannelEmail {
		if err := h.store.SetChannel(ctx, c.ID, n.channel); err != nil {
			return nil, disclosure.Opening{}, err
		}
	}
	if n.report != nil {
		if err := h.store.SetReport(ctx, c.ID, n.report.GHSAID, n.report.URL, n.report.Repository, now); err != nil {
			return nil, disclosure.Opening{}, err
		}
	}
	recent, err := h.store.SetupsSince(ctx, now.Add(-time.Hour))
	if err != nil {
		return nil, disclosure.Opening{}, err
	}
	in := disclosure.Intake{Channel: n.channel, Reporter: n.reporter, At: c.CreatedAt, Source: n.audit, Unverified: n.unverified, Machine: n.machine}
	if r := n.report; r != nil {
		in.Report = &disclosure.PrivateReport{GHSAID: r.GHSAID, URL: r.URL, Repository: r.Repository, Reporter: r.Reporter, Credits: creditsText(r.Credits)}
	}
	open, d := p.OpenCase(in, c.ID, h.selfAtHome(), recent, now)
	req := disclosure.Request{By: n.reporter, Now: now, Policy: p}
	if err := h.apply(ctx, chat.Message{Sender: n.reporter}, c, req, d); err != nil {
		return nil, disclosure.Opening{}, err
	}
	return c, open, nil
}
