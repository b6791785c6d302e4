package disclosure

import (
	"slices"
	"strings"

	"github.com/enarx/secbot/templates"
)

// Decisions for cases whose reporter is on GitHub (a private vulnerability
// report), and for the advisory's repository.

// onGitHub reports whether the case's reporter reads the advisory, not a
// room: what the team says to them is said on GitHub.
func (c *Case) onGitHub() bool { return c.Channel == ChannelGitHub }

// GitHubState is a state GitHub reports for the case's advisory, changed
// on github.com or by secbot: accepting the report (draft) acknowledges
// it, closing it ends the case, publishing it publishes the case. Seen
// again it changes nothing.
func (c *Case) GitHubState(r Request, state string) Decision {
	if !c.onGitHub() {
		return Decision{}
	}
	switch state {
	case "draft":
		if c.Advisory != c.Report {
			return Decision{} // a draft the team moved the case to, not the report accepted
		}
		if dl := c.meet(r, DeadlineAcknowledge); len(dl) > 0 {
			return Decision{Action: "github.accepted", Detail: c.Advisory + " accepted on GitHub", Deadlines: dl}
		}
	case "closed":
		next, err := Transition(c.Stage, ActReject)
		if err != nil {
			return Decision{} // rejected, published or closed already
		}
		return Decision{Action: "github.closed", Detail: c.Advisory + " closed on GitHub", Stage: next,
			Deadlines: []DeadlineChange{{Op: StopDeadlines}},
			Say:       []Message{say(ToTeamRoom, templates.AdvisoryClosedOnGitHub{CaseID: c.ID.String(), GHSAID: c.Advisory, URL: c.AdvisoryURL})}}
	case "published":
		if d := c.Published(r, nil); d.Action != "" || c.Finished() {
			return d
		}
		if d, under := c.publishedUnderEmbargo(r, StagePublished, nil); under {
			return d
		}
		// Published on github.com before the steps here were done: public
		// all the same, so the case is published and its clocks stop.
		d := c.published(StagePublished)
		d.Detail = "GitHub published " + c.Advisory + " before " + string(c.Stage) + " was done"
		return d
	}
	return Decision{}
}

// answeredOnGitHub is respond or update on a GitHub report: GitHub has no
// API for the advisory's comments, so the team answers there and the
// command records that it did.
func (r Request) answeredOnGitHub(c *Case, action string) Message {
	return say(Here, templates.Done{What: "answered_on_github", CaseID: c.ID.String(), URL: c.AdvisoryURL, Name: action})
}

// MoveAdvisory drafts the case's advisory in another configured
// repository, with its collaborators and public text, and closes the old
// one: the team found the issue belongs there.
func (c *Case) MoveAdvisory(r Request, repository string) (Decision, error) {
	if err := r.needGitHub("repo"); err != nil {
		return Decision{}, err
	}
	if c.Stage == StagePublished || c.Stage == StageClosed || c.Stage == StageRejected {
		return Decision{}, refusef("repo", "%s is %s: its advisory can no longer move.", c.ID, c.Stage)
	}
	target, ok := r.Policy.Configured(repository)
	if !ok {
		return Decision{}, refusef("repo", "%s is not one of the configured repositories (%s).", templates.EscapeMarkdown(repository), strings.Join(r.Policy.Repositories, ", "))
	}
	if c.Advisory == "" {
		return Decision{}, refusef("repo", "%s has no advisory yet; draft it with `%s advisory` first.", c.ID, r.Policy.CommandPrefix)
	}
	current := c.Repository
	if current == "" {
		current = r.Policy.Repository
	}
	if strings.EqualFold(current, target) {
		return Decision{}, refusef("repo", "the advisory of %s is already in %s.", c.ID, target)
	}
	return Decision{Action: "repo.move", Detail: current + " → " + target, Effects: []Effect{AdvisoryOp{Op: AdvisoryMove, Repository: target}},
		Say: []Message{r.done(c, "moving")}}, nil
}

// Configured returns the configured repository repository names (as the
// config spells it), and whether there is one: one of Repositories, or a
// repository of one of Organizations.
func (p *Policy) Configured(repository string) (string, bool) {
	owner, name, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	if i := slices.IndexFunc(p.Repositories, func(r string) bool { return strings.EqualFold(r, repository) }); i >= 0 {
		return p.Repositories[i], true
	}
	if slices.ContainsFunc(p.Organizations, func(o string) bool { return strings.EqualFold(o, owner) }) {
		return repository, true
	}
	return "", false
}
