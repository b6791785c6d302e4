package handlers

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/enarx/secbot/disclosure"
	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// githubLogin is GitHub's rule for user names: alphanumerics and single
// hyphens, not at either end, at most 39 characters.
var githubLogin = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)

// advisory records a GitHub effect on the case's advisory, answering in
// the room the command came from.
func (h *Handlers) advisory(c *cmdContext, kind string, p store.AdvisoryEffect) error {
	if !h.opts().GitHub {
		return usagef("GitHub is not configured for secbot, so cases have no advisory")
	}
	p.CaseID = c.c.ID.String()
	p.ReplyIn, p.ReplyTo = c.evt.RoomID, c.evt.ID
	_, err := h.store.Enqueue(c, "github:"+p.CaseID, kind, p, c.now)
	return err
}

// cmdGitHub invites a GitHub user to the case's private advisory: the
// reporter names themself (`!github NAME`), or a team member does it for
// them (`!sec github [CASE] NAME`).
func (h *Handlers) cmdGitHub(c *cmdContext) error {
	if len(c.args) != 1 {
		return usagef("say `!github YOUR-GITHUB-NAME`, e.g. `!github octocat`")
	}
	login := strings.TrimPrefix(c.args[0], "@")
	if !githubLogin.MatchString(login) {
		return usagef("%s is not a GitHub user name (letters, digits and single hyphens, at most 39)", templates.EscapeMarkdown(truncate(c.args[0], 40)))
	}
	if err := h.advisory(c, store.KindAdvisoryCollaborator, store.AdvisoryEffect{Login: login}); err != nil {
		return err
	}
	if err := c.audit("github.invite", login, true); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("Inviting GitHub user **%s** to the private advisory of %s…", templates.EscapeMarkdown(login), c.c.ID))
}

func (h *Handlers) cmdFork(c *cmdContext) error {
	if _, err := h.transition(c, disclosure.ActFork); err != nil {
		return err
	}
	if c.c.ForkURL != "" {
		return c.reply(fmt.Sprintf("%s already has a private fork: %s", c.c.ID, c.c.ForkURL))
	}
	if err := h.advisory(c, store.KindAdvisoryFork, store.AdvisoryEffect{}); err != nil {
		return err
	}
	if err := c.audit("fork", "", true); err != nil {
		return err
	}
	return c.reply(fmt.Sprintf("Requested the temporary private fork of %s's advisory; GitHub makes it in the background and I will post its address here when it exists.", c.c.ID))
}

func (h *Handlers) cmdCVE(c *cmdContext) error {
	if err := h.advisory(c, store.KindAdvisoryCVE, store.AdvisoryEffect{}); err != nil {
		return err
	}
	if err := c.audit("cve", "", true); err != nil {
		return err
	}
	return c.react("⏳")
}
