package outbox

// formerKinds maps the names kinds had before they were neutral to their
// names now: rows queued by an older secbot carry them, and still run.
var formerKinds = map[string]string{
	"matrix.send":             KindSend,
	"matrix.create_case_room": KindCreateCaseRoom,
	"matrix.open_dm":          KindOpenDM,
	"matrix.invite":           KindInvite,
	"matrix.react":            KindReact,
	"matrix.kick":             KindKick,
	"secbot.announce":         KindAnnounce,
	"secbot.published":        KindPublished,
}

// Canonical returns a kind's name now, for a name a queued row may carry
// from before the kinds were neutral (matrix.send is chat.send).
func Canonical(kind string) string {
	if now, ok := formerKinds[kind]; ok {
		return now
	}
	return kind
}

// Former returns the names kind had before, that rows queued then carry.
func Former(kind string) []string {
	var out []string
	for old, now := range formerKinds {
		if now == kind {
			out = append(out, old)
		}
	}
	return out
}
