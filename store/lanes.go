package store

import "github.com/enarx/secbot/disclosure"

// Outbox lanes: effects of one lane run in order, lanes run side by side.
// The strings are what stored rows already carry.

// CaseLane is the lane of a case's messages and room changes.
func CaseLane(caseID disclosure.CaseID) string { return caseID.String() }

// GitHubLane is the lane of a case's advisory operations.
func GitHubLane(caseID disclosure.CaseID) string { return "github:" + caseID.String() }

// GitHubPollLane is the lane of a case's slow GitHub polls (the private
// fork being made), apart from its other GitHub work.
func GitHubPollLane(caseID disclosure.CaseID) string { return "github-poll:" + caseID.String() }

// TimersLane is the lane of a case's reminders and escalations.
func TimersLane(caseID disclosure.CaseID) string { return "timers:" + caseID.String() }

// RoomLane is the lane of answers in a room that belongs to no case.
func RoomLane(roomID string) string { return "room:" + roomID }

// ReplyLane is the lane of the first answer to a reporter.
func ReplyLane(caseID disclosure.CaseID) string { return "reply:" + caseID.String() }

// AnnounceLane is the lane of one announcement room's post of a case.
func AnnounceLane(caseID disclosure.CaseID, room string) string {
	return "announce:" + caseID.String() + ":" + room
}

// GitHubStatusLane is the lane of the team's notices that GitHub fails or
// answers again.
const GitHubStatusLane = "github:status"
