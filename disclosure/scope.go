package disclosure

// Scope is what a team command reaches.
type Scope int

// The scopes of team commands.
const (
	// NoCase commands show nothing of any case (help).
	NoCase Scope = iota
	// OneCase commands act on one case: the case room's, or one named.
	OneCase
	// AllCases commands show every case (list, stats, contacts), so they
	// answer only where only the team reads.
	AllCases
)

// TeamCommand decides whether by may run a team command of scope where it
// was typed, and on which case: in a case room only that room's case (its
// reporter reads the answer), in the team room or a team member's private
// chat any case by name, and nowhere else anything. named is the case the
// command names (zero if none). A member's command counts only from a
// device their pinned identity signed.
func (p *Policy) TeamCommand(name string, scope Scope, by Person, device DeviceTrust, where Place, named CaseID) (CaseID, error) {
	action := "command " + name
	if !p.IsTeam(by) {
		return CaseID{}, &Refusal{Action: action, Reason: "only the security team can use team commands", NotTeam: true}
	}
	if device != DeviceVerified {
		return CaseID{}, p.untrustedDevice(action, by, device)
	}
	switch where.Kind {
	case CaseRoom:
		switch {
		case scope == AllCases:
			return CaseID{}, refusef(action, "`%s` shows every case, so it answers only in the team room or in a direct chat with me, not in a case room the reporter reads.", name)
		case scope == OneCase && !named.IsZero() && named != where.Case:
			return CaseID{}, refusef(action, "this room belongs to %s, and its reporter reads what I answer here. Ask about other cases in the team room.", where.Case)
		}
		return where.Case, nil
	case TeamRoom, PrivateChat:
		if scope == OneCase && named.IsZero() {
			return CaseID{}, refusef(action, "which case? Name it right after the command, e.g. `%s %s SR-2026-0007 …`.", p.CommandPrefix, name)
		}
		return named, nil
	}
	return CaseID{}, refusef(action, "team commands work only in the team room, a case room or a direct chat with me; nothing of a case is shown here.")
}
