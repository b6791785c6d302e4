package bot

import (
	"maunium.net/go/mautrix/id"

	"github.com/enarx/secbot/chat"
	"github.com/enarx/secbot/disclosure"
)

// The core names Matrix people and rooms with their platform
// (matrix:@alice:example.org, matrix:!room:example.org); the bot speaks
// Matrix's own IDs. These convert at the edge, both ways. A name queued by
// an older secbot carries no platform and is taken as Matrix's as it is.

// corePerson is a Matrix user as the core names them.
func corePerson(u id.UserID) disclosure.Person {
	if u == "" {
		return ""
	}
	return disclosure.PersonOn(disclosure.Matrix, string(u))
}

// coreRoom is a Matrix room as the core names it.
func coreRoom(r id.RoomID) string { return disclosure.On(disclosure.Matrix, string(r)) }

// matrixUser is the Matrix user a core person names.
func matrixUser(p disclosure.Person) id.UserID { return id.UserID(chat.Native(string(p))) }

// matrixRoom is the Matrix room (or alias) a core room names.
func matrixRoom(r string) id.RoomID { return id.RoomID(chat.Native(r)) }

// matrixUsers are the Matrix users of people.
func matrixUsers(people []disclosure.Person) []id.UserID {
	out := make([]id.UserID, len(people))
	for i, p := range people {
		out[i] = matrixUser(p)
	}
	return out
}
