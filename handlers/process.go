package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// processCommands are the five steps, the embargo and the announcement.
func (h *Handlers) processCommands() []*command {
	return []*command{
		{name: "confirm", args: "[CASE] [AFFECTED [; PATCHED]]", summary: "step 2: the problem is confirmed (the detailed response); optionally the affected and patched versions", caseArg: impliedCase, run: h.cmdConfirm},
		{name: "versions", args: "CASE AFFECTED [; PATCHED]", summary: "record the affected (and patched) versions, also on the advisory", caseArg: impliedCase, run: h.cmdVersions},
		{name: "severity", args: "[CASE] low|medium|high|critical", summary: "the advisory's severity", caseArg: impliedCase, run: h.cmdSeverity},
		{name: "cwe", args: "[CASE] CWE-ID…", summary: "the advisory's weakness types, e.g. CWE-787", caseArg: impliedCase, run: h.cmdCWE},
		{name: "summary", args: "[CASE] TEXT", summary: "the advisory's public one-line summary, used in the announcement", caseArg: impliedCase, run: h.cmdSummary},
		{name: "reject", args: "[CASE] REASON", summary: "not a vulnerability: the reporter is told politely and the case ends", caseArg: impliedCase, run: h.cmdReject},
		{name: "audit", args: "[CASE] start|done", summary: "step 3: the audit for similar problems", caseArg: impliedCase, run: h.cmdAudit},
		{name: "publish", args: "[CASE] [--force]", summary: "step 5: publish the advisory, then announce it (refused during an embargo unless the coordinator forces it)", caseArg: impliedCase, run: h.cmdPublish},
		{name: "announce", args: "[CASE] [--force]", summary: "post the announcement where it has not been posted yet (after publish)", caseArg: impliedCase, run: h.cmdAnnounce},
		{name: "close", args: "[CASE]", summary: "close the case (after publish or reject)", caseArg: impliedCase, run: h.cmdClose},
		{name: "embargo", args: "[CASE] propose YYYY-MM-DD [HH:MM] | add @user [github-name] | remove @user | lift", summary: "the embargo agreed with the reporter, and who needs to know", caseArg: impliedCase, run: h.cmdEmbargo},
		{name: "stats", args: "[DAYS]", summary: "how well the promises were kept over the last DAYS (default 90)", run: h.cmdStats},
	}
}

// versionsArg splits "AFFECTED [; PATCHED]".
func versionsArg(rest string) (affected, patched string) {
	affected, patched, _ = strings.Cut(rest, ";")
	return strings.TrimSpace(affected), strings.TrimSpace(patched)
}

// recordVersions stores the versions and writes them to the advisory.
func (h *Handlers) recordVersions(c *cmdContext, affected, patched string) error {
	if len(affected) > 200 || len(patched) > 200 {
		return usagef("version ranges are at most 200 characters")
	}
	if affected != "" {
		if err := h.store.SetFact(c, c.c.ID, store.FactAffected, affected, c.now); err != nil {
			return err
		}
	}
	if patched != "" {
		if err := h.store.SetFact(c, c.c.ID, store.FactPatched, patched, c.now); err != nil {
			return err
		}
	}
	if h.opts().GitHub && (affected != "" || patched != "") {
		return h.advisoryQuiet(c, store.AdvisoryEffect{Affected: affected, Patched: patched})
	}
	return nil
}

// advisoryQuiet updates the advisory; the answer comes in the room.
func (h *Handlers) advisoryQuiet(c *cmdContext, p store.AdvisoryEffect) error {
	if !h.opts().GitHub {
		return nil
	}
	return h.advisory(c, store.KindAdvisoryUpdate, p)
}

func (h *Handlers) cmdConfirm(c *cmdContext) error {
	affected, patched := versionsArg(c.rest)
	if _, err := h.transition(c, disclosure.ActConfirm); err != nil {
		return err
	}
	if err := h.recordVersions(c, affected, patched); err != nil {
		return err
	}
	if err := h.meetResponse(c, c.c, c.sender); err != nil {
		return err
	}
	if err := c.audit("confirm", affected, true); err != nil {
		return err
	}
	data := map[string]any{"CaseID": c.c.ID.String(), "Affected": affected}
	if err := h.render(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, "confirmed", data, ""); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("%s is confirmed (step 2). Next: decide on an embargo (`%s embargo propose DATE`) and start the audit (`%s audit start`).", c.c.ID, h.opts().CommandPrefix, h.opts().CommandPrefix))
}

func (h *Handlers) cmdVersions(c *cmdContext) error {
	affected, patched := versionsArg(c.rest)
	if affected == "" {
		return usagef("usage: `%s versions CASE AFFECTED [; PATCHED]`, e.g. `< 1.4.2; 1.4.2`", h.opts().CommandPrefix)
	}
	if err := h.recordVersions(c, affected, patched); err != nil {
		return err
	}
	if err := c.audit("versions", affected+"; "+patched, true); err != nil {
		return err
	}
	return c.react("✅")
}

var severities = []string{"low", "medium", "high", "critical"}

func (h *Handlers) cmdSeverity(c *cmdContext) error {
	if len(c.args) != 1 || !slices.Contains(severities, strings.ToLower(c.args[0])) {
		return usagef("usage: `%s severity [CASE] low|medium|high|critical`", h.opts().CommandPrefix)
	}
	sev := strings.ToLower(c.args[0])
	if err := h.store.SetFact(c, c.c.ID, store.FactSeverity, sev, c.now); err != nil {
		return err
	}
	if err := h.advisoryQuiet(c, store.AdvisoryEffect{Severity: sev}); err != nil {
		return err
	}
	if err := c.audit("severity", sev, true); err != nil {
		return err
	}
	return c.react("✅")
}

func (h *Handlers) cmdCWE(c *cmdContext) error {
	if len(c.args) == 0 || len(c.args) > 10 {
		return usagef("usage: `%s cwe [CASE] CWE-787 …` (one to ten)", h.opts().CommandPrefix)
	}
	var cwes []string
	for _, a := range c.args {
		a = strings.ToUpper(a)
		if _, err := fmt.Sscanf(a, "CWE-%d", new(int)); err != nil || !strings.HasPrefix(a, "CWE-") || len(a) > 12 {
			return usagef("%s is not a CWE ID like CWE-787", templates.EscapeMarkdown(truncate(a, 20)))
		}
		cwes = append(cwes, a)
	}
	if err := h.advisoryQuiet(c, store.AdvisoryEffect{CWEs: cwes}); err != nil {
		return err
	}
	if err := c.audit("cwe", strings.Join(cwes, " "), true); err != nil {
		return err
	}
	return c.react("✅")
}

func (h *Handlers) cmdSummary(c *cmdContext) error {
	if c.rest == "" || len(c.rest) > 200 || strings.Contains(c.rest, "\n") {
		return usagef("usage: `%s summary [CASE] TEXT` — one line, at most 200 characters", h.opts().CommandPrefix)
	}
	if err := h.store.SetFact(c, c.c.ID, store.FactSummary, c.rest, c.now); err != nil {
		return err
	}
	if err := c.audit("summary", "", true); err != nil {
		return err
	}
	return c.react("✅")
}

func (h *Handlers) cmdReject(c *cmdContext) error {
	if c.rest == "" {
		return usagef("usage: `%s reject [CASE] REASON` — the reason is shown to the reporter", h.opts().CommandPrefix)
	}
	if _, err := h.transition(c, disclosure.ActReject); err != nil {
		return err
	}
	if _, err := h.store.MeetDeadline(c, c.c.ID, disclosure.DeadlineAcknowledge, c.sender, c.now); err != nil {
		return err
	}
	if _, err := h.store.MeetDeadline(c, c.c.ID, disclosure.DeadlineResponse, c.sender, c.now); err != nil {
		return err
	}
	if err := h.store.StopDeadlines(c, c.c.ID); err != nil {
		return err
	}
	if err := c.audit("reject", c.rest, true); err != nil {
		return err
	}
	if err := h.render(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, "rejected", map[string]any{"CaseID": c.c.ID.String(), "Reason": c.rest}, ""); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("%s is rejected; the reporter is told. Close it with `%s close` when you are done.", c.c.ID, h.opts().CommandPrefix))
}

func (h *Handlers) cmdAudit(c *cmdContext) error {
	if len(c.args) != 1 || (c.args[0] != "start" && c.args[0] != "done") {
		return usagef("usage: `%s audit [CASE] start` or `… done`", h.opts().CommandPrefix)
	}
	action := disclosure.ActAuditStart
	if c.args[0] == "done" {
		action = disclosure.ActAuditDone
	}
	if _, err := h.transition(c, action); err != nil {
		return err
	}
	return c.react("✅")
}

// embargoGate refuses publish and announce while an embargo holds, unless
// the coordinator forces it (recorded).
func (h *Handlers) embargoGate(c *cmdContext, what string) error {
	force := slices.Contains(c.args, "--force")
	e, err := h.store.Embargo(c, c.c.ID)
	if err != nil {
		return err
	}
	if !e.Blocking(c.now) {
		return nil
	}
	coordinator := h.timers.Policy().Coordinator
	if !force {
		return usagef("Refused: %s is under embargo (%s) until %s. Only the coordinator can override with `--force`.", c.c.ID, e.State, h.embargoEnd(e))
	}
	if c.sender != coordinator {
		if err := c.audit(what+" --force", "refused: not the coordinator", false); err != nil {
			return err
		}
		return usagef("Refused: only the coordinator (%s) can force a %s during an embargo.", coordinator, what)
	}
	return c.audit(what+" --force", "embargo overridden by the coordinator", true)
}

func (h *Handlers) embargoEnd(e disclosure.Embargo) string {
	if e.End.IsZero() {
		return "a date is agreed"
	}
	return h.formatTime(e.End)
}

func (h *Handlers) cmdPublish(c *cmdContext) error {
	if err := h.embargoGate(c, "publish"); err != nil {
		return err
	}
	// Once the details go public, an embargo has no more to keep.
	if e, err := h.store.Embargo(c, c.c.ID); err != nil {
		return err
	} else if lifted, err := e.Lift(); err == nil {
		if err := h.store.SetEmbargo(c, c.c.ID, lifted, nil, c.now); err != nil {
			return err
		}
		if err := c.audit("embargo.lift", "published", true); err != nil {
			return err
		}
	}
	if _, err := h.transition(c, disclosure.ActPublish); err != nil {
		return err
	}
	if err := h.store.StopDeadlines(c, c.c.ID); err != nil {
		return err
	}
	if h.opts().GitHub {
		// The announcement follows once GitHub has published.
		if err := h.advisory(c, store.KindAdvisoryPublish, store.AdvisoryEffect{}); err != nil {
			return err
		}
	} else if err := h.enqueueAnnounce(c); err != nil {
		return err
	}
	if err := h.render(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, "published_reporter", map[string]any{"CaseID": c.c.ID.String()}, ""); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("Publishing %s (step 5); the announcement follows.", c.c.ID))
}

func (h *Handlers) cmdAnnounce(c *cmdContext) error {
	if c.c.Stage != disclosure.StagePublished && c.c.Stage != disclosure.StageClosed {
		return usagef("Refused: publish %s before announcing it.", c.c.ID)
	}
	if err := h.embargoGate(c, "announce"); err != nil {
		return err
	}
	if err := h.enqueueAnnounce(c); err != nil {
		return err
	}
	return c.react("⏳")
}

func (h *Handlers) enqueueAnnounce(c *cmdContext) error {
	_, err := h.store.Enqueue(c, c.c.ID.String(), store.KindAnnounce, store.AnnounceEffect{CaseID: c.c.ID.String(), ReplyIn: c.evt.RoomID, ReplyTo: c.evt.ID}, c.now)
	return err
}

func (h *Handlers) cmdClose(c *cmdContext) error {
	if _, err := h.transition(c, disclosure.ActClose); err != nil {
		return err
	}
	if err := h.store.StopDeadlines(c, c.c.ID); err != nil {
		return err
	}
	if err := h.render(c, c.c.ID.String(), store.Target{CaseRoomOf: c.c.ID.String()}, "closed", map[string]any{"CaseID": c.c.ID.String()}, ""); err != nil {
		return err
	}
	if c.evt.RoomID == c.c.CaseRoom {
		return c.react("✅")
	}
	return c.reply(fmt.Sprintf("%s is closed.", c.c.ID))
}

// parseEmbargoDate reads YYYY-MM-DD [HH:MM] in the policy's time zone; a
// date alone means the end of that day.
func (h *Handlers) parseEmbargoDate(args []string) (time.Time, error) {
	loc := h.timers.Policy().Calendar.Location
	if loc == nil {
		loc = time.UTC
	}
	switch len(args) {
	case 1:
		d, err := time.ParseInLocation("2006-01-02", args[0], loc)
		if err != nil {
			return time.Time{}, err
		}
		return d.AddDate(0, 0, 1).Add(-time.Minute), nil // 23:59 that day
	case 2:
		return time.ParseInLocation("2006-01-02 15:04", args[0]+" "+args[1], loc)
	}
	return time.Time{}, fmt.Errorf("want a date")
}

func (h *Handlers) cmdEmbargo(c *cmdContext) error {
	usage := usagef("usage: `%s embargo [CASE] propose YYYY-MM-DD [HH:MM]`, `add @user:server [github-name]`, `remove @user:server` or `lift`", h.opts().CommandPrefix)
	if len(c.args) == 0 {
		return usage
	}
	e, err := h.store.Embargo(c, c.c.ID)
	if err != nil {
		return err
	}
	cal := h.timers.Policy().Calendar
	lane := c.c.ID.String()
	switch c.args[0] {
	case "propose":
		end, err := h.parseEmbargoDate(c.args[1:])
		if err != nil {
			return usagef("the date must be YYYY-MM-DD with an optional HH:MM (%s), e.g. `%s embargo propose 2027-01-15 14:00`", cal.Location, h.opts().CommandPrefix)
		}
		next, err := e.Propose(end, c.now)
		if err != nil {
			return usagef("Refused: %s (%s is not in the future).", err, h.formatTime(end))
		}
		if err := h.store.SetEmbargo(c, c.c.ID, next, disclosure.EmbargoReminders(next.End, cal), c.now); err != nil {
			return err
		}
		if err := c.audit("embargo.propose", h.formatTime(end), true); err != nil {
			return err
		}
		if err := h.render(c, lane, store.Target{CaseRoomOf: lane}, "embargo_proposed", map[string]any{"CaseID": lane, "End": h.formatTime(end), "Revision": next.State == disclosure.EmbargoRevise, "Current": h.embargoEnd(e)}, ""); err != nil {
			return err
		}
		warn := h.opts().EmbargoWarnAfter
		if !warn.IsZero() && end.After(cal.Add(c.now, warn)) {
			return c.reply(fmt.Sprintf("⚠️ Proposed to the reporter: %s. That is longer than %s (the linux-distros maximum is 14 days); long embargoes leave users exposed.", h.formatTime(end), warn))
		}
		return c.reply(fmt.Sprintf("Proposed to the reporter: an embargo of %s until %s. They answer `!agree` or `!disagree`.", c.c.ID, h.formatTime(end)))
	case "lift":
		next, err := e.Lift()
		if err != nil {
			return usagef("Refused: %s.", err)
		}
		if err := h.store.SetEmbargo(c, c.c.ID, next, nil, c.now); err != nil {
			return err
		}
		if err := c.audit("embargo.lift", "", true); err != nil {
			return err
		}
		if err := h.render(c, lane, store.Target{CaseRoomOf: lane}, "embargo_lifted", map[string]any{"CaseID": lane}, ""); err != nil {
			return err
		}
		return c.reply(fmt.Sprintf("The embargo of %s is lifted.", c.c.ID))
	case "add", "remove":
		if len(c.args) < 2 || len(c.args) > 3 {
			return usage
		}
		user := id.UserID(c.args[1])
		if _, _, err := user.Parse(); err != nil || !strings.HasPrefix(c.args[1], "@") {
			return usagef("%s is not a Matrix user like @carol:example.org", templates.EscapeMarkdown(truncate(c.args[1], 80)))
		}
		if user == c.c.Reporter || h.IsTeam(user) {
			return usagef("%s is already in the case room as reporter or team member", user)
		}
		login := ""
		if len(c.args) == 3 {
			login = strings.TrimPrefix(c.args[2], "@")
			if !githubLogin.MatchString(login) {
				return usagef("%s is not a GitHub user name", templates.EscapeMarkdown(truncate(c.args[2], 40)))
			}
		}
		if c.args[0] == "add" {
			added, err := h.store.AddNeedToKnow(c, c.c.ID, user, c.sender, c.now)
			if err != nil {
				return err
			}
			if !added {
				return c.reply(fmt.Sprintf("%s is already on the need-to-know list of %s.", user, c.c.ID))
			}
			if _, err := h.store.Enqueue(c, lane, store.KindInvite, store.InviteEffect{To: store.Target{CaseRoomOf: lane}, User: user}, c.now); err != nil {
				return err
			}
			if login != "" {
				if err := h.advisory(c, store.KindAdvisoryCollaborator, store.AdvisoryEffect{Login: login}); err != nil {
					return err
				}
			}
			if err := c.audit("need-to-know.add", user.String(), true); err != nil {
				return err
			}
			return c.reply(fmt.Sprintf("%s is on the need-to-know list of %s and invited to its room.", user, c.c.ID))
		}
		removed, err := h.store.RemoveNeedToKnow(c, c.c.ID, user)
		if err != nil {
			return err
		}
		if !removed {
			return usagef("%s is not on the need-to-know list of %s", user, c.c.ID)
		}
		if _, err := h.store.Enqueue(c, lane, store.KindKick, store.KickEffect{To: store.Target{CaseRoomOf: lane}, User: user, Reason: "removed from the need-to-know list"}, c.now); err != nil {
			return err
		}
		if login != "" {
			if err := h.advisory(c, store.KindAdvisoryCollaborator, store.AdvisoryEffect{Login: login, Remove: true}); err != nil {
				return err
			}
		}
		if err := c.audit("need-to-know.remove", user.String(), true); err != nil {
			return err
		}
		return c.reply(fmt.Sprintf("%s is off the need-to-know list of %s and removed from its room.", user, c.c.ID))
	}
	return usage
}

// answerEmbargo is the reporter's !agree or !disagree.
func (h *Handlers) answerEmbargo(c *cmdContext, agree bool) error {
	e, err := h.store.Embargo(c, c.c.ID)
	if err != nil {
		return err
	}
	var next disclosure.Embargo
	if agree {
		next, err = e.Agree()
	} else {
		next, err = e.Disagree()
	}
	if err != nil {
		return c.reply("There is no embargo proposal to answer.")
	}
	if err := h.store.SetEmbargo(c, c.c.ID, next, disclosure.EmbargoReminders(next.End, h.timers.Policy().Calendar), c.now); err != nil {
		return err
	}
	action := map[bool]string{true: "embargo.agree", false: "embargo.disagree"}[agree]
	if err := c.audit(action, h.embargoEnd(next), true); err != nil {
		return err
	}
	data := map[string]any{"CaseID": c.c.ID.String(), "Agree": agree, "End": h.embargoEnd(next), "State": string(next.State)}
	if h.opts().TeamRoom != "" {
		if err := h.render(c, c.c.ID.String(), store.Target{Room: h.opts().TeamRoom}, "embargo_answered", data, ""); err != nil {
			return err
		}
	}
	if agree {
		return c.reply(fmt.Sprintf("Thank you: the embargo holds until %s. Nothing is announced before then.", h.embargoEnd(next)))
	}
	return c.reply("Noted: you do not agree. The team will discuss another date with you here.")
}

func (h *Handlers) cmdAgree(c *cmdContext) error    { return h.answerEmbargo(c, true) }
func (h *Handlers) cmdDisagree(c *cmdContext) error { return h.answerEmbargo(c, false) }

// cmdCredit takes how the reporter wants to be credited on the advisory.
func (h *Handlers) cmdCredit(c *cmdContext) error {
	if len(c.args) != 1 {
		return usagef("say `!credit YOUR-GITHUB-NAME`, or `!credit none` not to be credited")
	}
	name := strings.TrimPrefix(c.args[0], "@")
	if strings.EqualFold(name, "none") {
		if err := h.store.SetFact(c, c.c.ID, store.FactCredit, "none", c.now); err != nil {
			return err
		}
		return c.reply("Understood: you will not be credited.")
	}
	if !githubLogin.MatchString(name) {
		return usagef("%s is not a GitHub user name", templates.EscapeMarkdown(truncate(name, 40)))
	}
	if err := h.store.SetFact(c, c.c.ID, store.FactCredit, name, c.now); err != nil {
		return err
	}
	if err := h.advisoryQuiet(c, store.AdvisoryEffect{Credit: name}); err != nil {
		return err
	}
	if err := c.audit("credit", name, true); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("Thank you: the advisory will credit GitHub user **%s** as finder.", templates.EscapeMarkdown(name)))
}

// cmdStats reports response efficiency over a window, as HackerOne does:
// for each promise, the share of cases that met it and the median time.
func (h *Handlers) cmdStats(c *cmdContext) error {
	days := 90
	if len(c.args) > 1 {
		return usagef("usage: `%s stats [DAYS]`", h.opts().CommandPrefix)
	}
	if len(c.args) == 1 {
		if _, err := fmt.Sscanf(c.args[0], "%d", &days); err != nil || days < 1 || days > 3650 {
			return usagef("DAYS must be a whole number from 1 to 3650")
		}
	}
	cases, err := h.store.CasesSince(c, c.now.AddDate(0, 0, -days))
	if err != nil {
		return err
	}
	type tally struct {
		met, total int
		times      []time.Duration
	}
	stats := map[disclosure.DeadlineKind]*tally{}
	kinds := []disclosure.DeadlineKind{disclosure.DeadlineAcknowledge, disclosure.DeadlineResponse, disclosure.DeadlineUpdate}
	for _, k := range kinds {
		stats[k] = &tally{}
	}
	for _, cs := range cases {
		ds, err := h.store.DeadlinesOf(c, cs.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			t := stats[d.Kind]
			if t == nil || (!d.Met() && c.now.Before(d.DueAt)) {
				continue // still running: neither kept nor missed yet
			}
			t.total++
			if d.Met() && !d.MetAt.After(d.DueAt) {
				t.met++
			}
			if d.Met() {
				t.times = append(t.times, d.MetAt.Sub(d.StartedAt))
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Response efficiency, last %d days** (%d cases)\n\n| promise | kept | median time |\n| --- | --- | --- |\n", days, len(cases))
	for _, k := range kinds {
		t := stats[k]
		share, median := "—", "—"
		if t.total > 0 {
			share = fmt.Sprintf("%d%% (%d/%d)", t.met*100/t.total, t.met, t.total)
		}
		if len(t.times) > 0 {
			slices.Sort(t.times)
			median = t.times[len(t.times)/2].Round(time.Minute).String()
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", k.Label(), share, median)
	}
	return c.reply(b.String())
}

// Announce is the executor of KindAnnounce: it posts a published
// advisory's announcement in every announcement room where it is not yet
// posted (each room its own lane, so one failing room holds up no other),
// and tells the team room where it went.
func (h *Handlers) Announce(ctx context.Context, e store.Effect) (any, error) {
	var p store.AnnounceEffect
	if err := e.Decode(&p); err != nil {
		return nil, err
	}
	caseID, err := disclosure.ParseCaseID(p.CaseID)
	if err != nil {
		return nil, err
	}
	return nil, h.store.Tx(ctx, func(ctx context.Context) error {
		c, err := h.store.Case(ctx, caseID)
		if err != nil {
			return err
		}
		now := h.clock.Now()
		md, err := h.templates.Render("announcement", map[string]any{
			"GHSAID": c.GHSAID, "URL": c.GHSAURL, "CVE": c.CVEID, "Summary": c.PublicSummary, "Severity": c.Severity,
			"Affected": c.Affected, "Patched": c.Patched, "Credit": creditName(c.Credit), "Repository": h.opts().Repository,
		})
		if err != nil {
			return err
		}
		var posted, queued []string
		for _, room := range h.opts().AnnounceRooms {
			lane := "announce:" + p.CaseID + ":" + room
			done, err := h.store.EffectDoneInLane(ctx, lane)
			if err != nil {
				return err
			}
			pending, err := h.store.EffectPendingInLane(ctx, lane)
			if err != nil {
				return err
			}
			if done {
				posted = append(posted, room)
				continue
			}
			if pending {
				continue
			}
			if _, err := h.store.Enqueue(ctx, lane, store.KindSend, store.SendEffect{To: store.Target{Room: id.RoomID(room)}, Markdown: md, IfRefused: h.opts().TeamRoom}, now); err != nil {
				return err
			}
			queued = append(queued, room)
		}
		if err := h.store.Audit(ctx, store.AuditEntry{At: now, Actor: "secbot", CaseID: p.CaseID, Action: "announce", Detail: strings.Join(queued, ", "), Allowed: true}); err != nil {
			return err
		}
		if h.opts().TeamRoom == "" {
			return nil
		}
		note, err := h.templates.Render("announced", map[string]any{"CaseID": p.CaseID, "Queued": queued, "Posted": posted})
		if err != nil {
			return err
		}
		_, err = h.store.Enqueue(ctx, p.CaseID, store.KindSend, store.SendEffect{To: store.Target{Room: h.opts().TeamRoom}, Markdown: note}, now)
		return err
	})
}

func creditName(credit string) string {
	if credit == "none" {
		return ""
	}
	return credit
}
