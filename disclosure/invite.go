package disclosure

// Invitations: which rooms the bot joins, and which it leaves.

// Leave is the bot leaving a room it will not stay in: Reason is what the
// room is told, Action and Detail the refused audit line.
type Leave struct {
	Reason, Action, Detail string
}

// AcceptInvite decides an invitation from from to a room (direct: the
// inviter marked it a direct chat; teamRoom: it is the configured team
// room). Direct chats are joined from anyone (that is how reporters reach
// the bot), the team room whoever invites, other rooms only from the team.
// nil: join.
func (p *Policy) AcceptInvite(from Person, direct, teamRoom bool) *Leave {
	if direct || teamRoom || p.IsTeam(from) {
		return nil
	}
	return &Leave{Reason: "secbot joins group rooms only when the security team invites it", Action: "invite", Detail: "group room invite declined"}
}

// KeepDirectChat decides whether a direct chat with members joined members
// is one: is_direct is only the inviter's word, and what the bot says in a
// direct chat is for one person. nil: keep it.
func KeepDirectChat(members int) *Leave {
	if members <= 2 {
		return nil
	}
	return &Leave{Reason: "a direct chat with secbot is for two; it will open a new one when it has something to say", Action: "direct-chat.leave", Detail: "more than two members: not a direct chat"}
}
