package disclosure

import (
	"strings"

	"github.com/enarx/secbot/templates"
)

// The reporter's decisions on their own case. Each is only reached through
// a command with "!", so a chat reply of "agree" agrees to nothing.

// AnswerEmbargo is the reporter's !agree or !disagree to a proposal.
func (c *Case) AnswerEmbargo(r Request, agree bool) (Decision, error) {
	action := map[bool]string{true: "embargo.agree", false: "embargo.disagree"}[agree]
	if c.Finished() {
		return Decision{}, refusef(action, "your report %s is %s; there is no embargo to answer.", c.ID, c.Stage)
	}
	var next Embargo
	var err error
	if agree {
		next, err = c.Embargo.Agree()
	} else {
		next, err = c.Embargo.Disagree()
	}
	if err != nil {
		return Decision{}, refusef(action, "there is no embargo proposal to answer.")
	}
	end := c.embargoEnd(r.Policy, next)
	d := Decision{Action: action, Detail: end, Embargo: &next}
	if agree {
		d.Cancel = cancelPublishing("the reporter agreed to an embargo")
	}
	d.Say = []Message{say(ToTeamRoom, templates.EmbargoAnswered{CaseID: c.ID.String(), Agree: agree, End: end, State: string(next.State)})}
	if agree {
		d.Say = append(d.Say, say(Here, templates.Done{What: "agreed", End: end}))
	} else {
		d.Say = append(d.Say, say(Here, templates.Done{What: "disagreed"}))
	}
	return d, nil
}

// Credit records how the reporter wants to be credited ("" for none).
func (c *Case) Credit(r Request, login string) (Decision, error) {
	if err := c.notClosed("credit"); err != nil {
		return Decision{}, err
	}
	if login == "" {
		return Decision{Action: "credit", Detail: "none", Facts: []FactChange{{FactCredit, "none"}}, Say: []Message{say(Here, templates.Done{What: "no_credit"})}}, nil
	}
	d := Decision{Action: "credit", Detail: login, Facts: []FactChange{{FactCredit, login}}, Say: []Message{say(Here, templates.Done{What: "credit", Login: login})}}
	if r.Policy.GitHub {
		d.Effects = []Effect{AdvisoryOp{Op: AdvisoryUpdate, Credit: login}}
	}
	return d, nil
}

// Escalate is the reporter's !escalate. It is allowed once a promise the
// reporter is owed is overdue (the detailed response, or an update), and
// then reaches a person at once: the next ladder contact not yet told about
// that deadline. Each step is used at most once per missed deadline.
func (c *Case) Escalate(r Request) (Decision, error) {
	if c.Finished() {
		return Decision{}, refusef("escalate", "your report %s is %s: no promise is running, so there is nothing to escalate.", c.ID, c.Stage)
	}
	p := r.Policy
	var notYet *Deadline
	for _, kind := range []DeadlineKind{DeadlineResponse, DeadlineUpdate} {
		dl := c.Deadline(kind)
		if dl == nil || dl.Met() {
			continue
		}
		if r.Now.Before(dl.DueAt) {
			if notYet == nil || dl.DueAt.Before(notYet.DueAt) {
				notYet = dl
			}
			continue
		}
		if dl.LadderStep >= len(p.Ladder) {
			return Decision{Say: []Message{say(Here, templates.Done{What: "escalation_exhausted", Promise: kind.Label()})}}, nil
		}
		role, who := p.Contact(p.Ladder[dl.LadderStep])
		answer := templates.Done{Promise: kind.Label(), Role: role, Name: who.String()}
		if !dl.NextAt.IsZero() && !dl.NextAt.After(r.Now) {
			// The step is already due: it is on its way, not a second one.
			answer.What = "escalation_on_its_way"
			return Decision{Say: []Message{say(Here, answer)}}, nil
		}
		answer.What = "escalated"
		return Decision{Action: "escalate", Detail: kind.Label() + " → " + role,
			Deadlines: []DeadlineChange{{Op: EscalateDeadline, Kind: kind, At: r.Now}},
			Say:       []Message{say(Here, answer)}}, nil
	}
	if notYet != nil {
		return Decision{Say: []Message{say(Here, templates.Done{What: "escalate_not_yet", End: p.FormatTime(notYet.DueAt)})}}, nil
	}
	return Decision{Say: []Message{say(Here, templates.Done{What: "nothing_overdue"})}}, nil
}

// NameOwnGitHub is the reporter's !github NAME: their own GitHub account,
// invited to the private advisory. Once: who else may read the advisory is
// the team's need-to-know decision (`!sec github`, `!sec embargo add`).
func (c *Case) NameOwnGitHub(r Request, login string) (Decision, error) {
	if c.ReporterGitHub != "" && !strings.EqualFold(c.ReporterGitHub, login) {
		return Decision{}, refusef("github.invite", "you already named your GitHub account (%s). To add someone else to the private advisory, ask the team here.", c.ReporterGitHub)
	}
	d, err := c.InviteToAdvisory(r, login)
	if err != nil {
		return d, err
	}
	d.Facts = append(d.Facts, FactChange{FactReporterGitHub, login})
	return d, nil
}
