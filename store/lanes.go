package store

import "maunium.net/go/mautrix/id"

// An outbox lane runs its effects in order, one at a time; lanes run in
// parallel. These build the lanes secbot uses. Their strings are stored in
// the outbox, so they must never change.

// CaseLane is the lane of a case's own effects (its room, its members).
func CaseLane(caseID string) string { return caseID }

// GitHubLane is the lane of a case's GitHub effects, so they run in order
// (the advisory exists before collaborators are added to it).
func GitHubLane(caseID string) string { return "github:" + caseID }

// GitHubStatusLane is the lane of the team's notices that GitHub fails or
// answers again.
const GitHubStatusLane = "github:status"

// TimersLane is the lane of a case's reminders and escalations.
func TimersLane(caseID string) string { return "timers:" + caseID }

// RoomLane is the lane of answers in a room, so they come in order.
func RoomLane(room id.RoomID) string { return "room:" + room.String() }

// ReplyLane is the lane of the answer to a case's reporter, apart from the
// case's lane so that it does not wait for the case room.
func ReplyLane(caseID string) string { return "reply:" + caseID }

// AnnounceLane is the lane of a case's announcement in one room.
func AnnounceLane(caseID, room string) string { return "announce:" + caseID + ":" + room }
