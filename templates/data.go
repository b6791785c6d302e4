package templates

import "time"

// Data is a template's typed data: each template has exactly one data
// type, which names its template, so a message cannot pair a text with the
// wrong fields. TestEveryTemplateRendersWithItsData renders each one.
type Data interface {
	Template() string
}

// Case-room and reporter texts.
type (
	// Acknowledged tells the reporter who handles their report.
	Acknowledged struct{ CaseID, Handler string }
	// Closed tells the case room the case is closed.
	Closed struct{ CaseID string }
	// Confirmed tells the reporter the report is confirmed.
	Confirmed struct{ CaseID, Affected string }
	// DMAck answers the reporter's request in the DM.
	DMAck struct {
		CaseID, CaseRoom, CaseRoomLink string
		// Plain: the case room is not end-to-end encrypted.
		Plain bool
		// Elsewhere: the reporter cannot be in the case room (it is on
		// another chat, or proved unusable); CaseRoom and CaseRoomLink
		// are then empty, and their private area is the advisory
		// (GitHub) or the security address (Address).
		Elsewhere, GitHub bool
		Address           string
	}
	// DMDetailsNoCase warns a DM that looks like details, with no case.
	DMDetailsNoCase struct{}
	// DMDetailsWarning warns a DM that looks like details.
	DMDetailsWarning struct {
		CaseID, CaseRoom, CaseRoomLink string
		Plain, Elsewhere, GitHub       bool
		Address                        string
	}
	// DMExistingCase points a reporter to their open case.
	DMExistingCase struct {
		CaseID, CaseRoom, CaseRoomLink string
		Plain, Elsewhere, GitHub       bool
		Address                        string
	}
	// DMFromPublic opens the DM after a request in a public room.
	DMFromPublic struct {
		CaseID string
		Plain  bool
	}
	// EmbargoLifted tells the reporter the embargo ended early.
	EmbargoLifted struct{ CaseID string }
	// EmbargoProposed puts an embargo date to the reporter.
	EmbargoProposed struct {
		CaseID   string
		End      string
		Revision bool
		Current  string
	}
	// NotUnderstood answers a DM that is neither a request nor a command.
	NotUnderstood struct{}
	// PublicThread answers a public request in a thread.
	PublicThread struct{ CaseID string }
	// PublishedReporter tells the reporter the advisory is being published.
	PublishedReporter struct{ CaseID string }
	// Rejected tells the reporter the report was rejected, and why.
	Rejected struct{ CaseID, Reason string }
	// ReporterChased tells the reporter the bot chased the team.
	ReporterChased struct {
		Promise string
		DueAt   time.Time
	}
	// SlowDown is the one polite limit message of a request loop.
	SlowDown struct{}
	// TeamResponse is the team's detailed response, posted by the bot.
	TeamResponse struct{ CaseID, From, Text string }
	// TeamUpdate is a progress update from the team, posted by the bot.
	TeamUpdate struct{ CaseID, From, Text string }
	// TeamReply is the team's message to an email reporter.
	TeamReply struct{ CaseID, From, Text string }
	// Undecryptable tells a sender their message could not be read.
	Undecryptable struct{}
	// Welcome is the first message in a case room. Email is the
	// reporter's address for a report by email (the reporter is then not
	// in the room, which is the team's); Prefix is the team's command prefix.
	Welcome struct {
		// Plain: the room is not end-to-end encrypted (its platform's
		// encryption is not open to bots).
		Plain bool
		// Elsewhere: the reporter is on another chat than this room's and
		// reads only what the team sends them.
		Elsewhere                bool
		CaseID, Reporter         string
		Team                     []string
		AcknowledgeBy, RespondBy time.Time
		UpdateInterval           string
		// AdvisoryURL, for a GitHub private report, is where the reporter
		// is: the room is the team's alone.
		GitHubReporter, AdvisoryURL string
		Email, Prefix               string
	}
	// EmailSubject is the subject of every email about a case.
	EmailSubject struct{ CaseID string }
	// EmailAck is the emailed answer to a report by email: the case ID,
	// the promises and how to go on. GitHub is whether a GitHub advisory
	// awaits the reporter.
	EmailAck struct {
		CaseID                   string
		AcknowledgeBy, RespondBy time.Time
		UpdateInterval           string
		GitHub                   bool
	}
	// EmailPosted heads a reporter's email posted in the case room, above
	// its verbatim text. It is rendered when the email is posted and never
	// stored: From, Subject and the file names are the reporter's.
	EmailPosted struct {
		CaseID, From, Subject string
		Reply                 bool
		// Unverified: nothing proves the email comes from From.
		Unverified bool
		// Machine says why the email is machine-sent ("" for a person's).
		Machine     string
		Attachments []string
		// TooLarge names the files over the size limit, with their sizes.
		TooLarge []string
		// NoFiles names the files of an email posted into a room that
		// takes no files (a chat secbot posts no files on), with their
		// sizes: left in the mailbox.
		NoFiles []string
		// Skipped names the parts past the cap on parts per email, left in
		// the mailbox; More counts those past the names shown.
		Skipped  []string
		MaxParts int
		More     int
		// Texts counts the email's text parts, posted one by one below.
		Texts  int
		Prefix string
	}
	// EmailText heads a text part of an email after its first (N of
	// Texts), or says (File) that it is the file below; Cut says it was
	// cut at the size shown, HTML that it is an HTML part's source.
	EmailText struct {
		N, Texts  int
		File, Cut string
		Size      string
		// HTML marks an HTML part, shown as its source.
		HTML bool
	}
	// EmailNotPosted tells the team room that an email for a case could
	// not be posted into its room, and why: it is still in the mailbox.
	EmailNotPosted struct {
		CaseID, Mailbox, MessageID, Reason string
		UID                                uint32
	}
	// EmailBounced tells a case room that a delivery report came back
	// for secbot's mail about the case. Nothing of its text is posted.
	EmailBounced struct {
		CaseID, From, Mailbox string
	}
	// EmailGone says a message to be posted is no longer in the mailbox,
	// or (Malformed) cannot be read.
	EmailGone struct {
		CaseID    string
		Malformed bool
	}
	// NoEncryption tells a Matrix reporter whose account has no
	// encryption device where their private area is instead.
	NoEncryption struct {
		CaseID, Address string
		GitHub          bool
		// OtherChat: the reporter is on another chat platform than the
		// case room, not without encryption.
		OtherChat bool
		// Unusable, if set, is why the case room cannot be made.
		Unusable string
	}
	// CaseRoomUnusable tells the team that a case's room cannot be used.
	CaseRoomUnusable struct{ CaseID, Why string }
	// MeantForTheCaseRoom heads a post for the case room that reaches the
	// reporter in their direct chat because the room cannot be used.
	MeantForTheCaseRoom struct{ CaseID string }
)

// Team-room and team-member texts.
type (
	// Announced tells the team where the announcement went.
	Announced struct {
		CaseID         string
		Queued, Posted []string
	}
	// EmbargoAnswered tells the team the reporter's answer.
	EmbargoAnswered struct {
		CaseID string
		Agree  bool
		End    string
		State  string
	}
	// EmbargoReminder reminds of an embargo's end.
	EmbargoReminder struct {
		CaseID      string
		End         time.Time
		Late, Today bool
		// AdvisoryURL links the advisory, for cases reported on GitHub.
		AdvisoryURL string
	}
	// EscalationDM escalates a missed promise to one person.
	EscalationDM struct {
		CaseID, Promise, Role, Handler string
		DueAt, MeantFor                time.Time
		Late, Repeat                   bool
		// By names the reporter's !escalate, if that is what fired it.
		ByReporter bool
		// AdvisoryURL links the advisory, for cases reported on GitHub.
		AdvisoryURL string
	}
	// EscalationTeam escalates a missed promise to the team room.
	EscalationTeam struct {
		CaseID, Promise string
		DueAt, MeantFor time.Time
		Late, Repeat    bool
		ByReporter      bool
		// AdvisoryURL links the advisory, for cases reported on GitHub.
		AdvisoryURL string
	}
	// NotTeam refuses a team command to someone not on the team.
	NotTeam struct{ Prefix string }
	// Reminder comes before a promise falls due.
	Reminder struct {
		CaseID, Promise string
		DueAt, MeantFor time.Time
		Late            bool
		// AdvisoryURL links the advisory, for cases reported on GitHub.
		AdvisoryURL string
	}
	// TeamNewCase tells the team room a case was opened.
	TeamNewCase struct {
		CaseID, Reporter         string
		AcknowledgeBy, RespondBy time.Time
		Suggested                string
		// For a GitHub private report: the reporter's login, the repository
		// and the advisory (never the report's text).
		GitHubReporter, Repository, GHSAID, AdvisoryURL string
		// Credits are the report's credits as its submitter wrote them.
		Credits string
		// UnverifiedSender marks a report by email whose From nothing
		// proves (no DKIM or DMARC pass).
		UnverifiedSender bool
		// Machine says why an emailed report is machine-sent (no answer
		// went back), "" for a person's.
		Machine string
	}
	// EmailStranger tells the team that an email about a case came from
	// an address that is not the reporter's. Nothing of its text is read.
	EmailStranger struct {
		CaseID, From, Mailbox string
	}
	// EmailFlood tells the team once that an address sends too much mail:
	// the rest is left in the mailbox, unposted.
	EmailFlood struct {
		From, Mailbox string
		Burst         int
	}
)

// GitHub texts.
type (
	// AdvisoryCollaboratorAdded says a GitHub user was invited.
	AdvisoryCollaboratorAdded struct{ CaseID, Login, URL string }
	// AdvisoryCollaboratorRemoved says a GitHub user was removed.
	AdvisoryCollaboratorRemoved struct{ CaseID, Login string }
	// AdvisoryCreated links the new draft advisory.
	// AdvisoryCreated links the draft advisory in the case room; Email
	// marks a case whose reporter wrote by email (and reads no room).
	AdvisoryCreated struct {
		CaseID, GHSAID, URL string
		Email               bool
		Prefix              string
	}
	// AdvisoryAdopted tells the team that a retry took the draft an
	// earlier attempt had made (recognised by its secret) as the case's.
	AdvisoryAdopted struct{ CaseID, GHSAID, URL, Repository string }
	// AdvisoryCVERequested says a CVE was requested.
	AdvisoryCVERequested struct{ CaseID, GHSAID string }
	// AdvisoryForkReady links the private fork.
	AdvisoryForkReady struct{ CaseID, URL string }
	// AdvisoryPublished says GitHub published the advisory.
	AdvisoryPublished struct{ CaseID, GHSAID, URL string }
	// AdvisoryUpdated says the advisory was updated.
	AdvisoryUpdated struct{ CaseID, GHSAID string }
	// Announcement is the public announcement of a published advisory.
	Announcement struct {
		GHSAID, URL, CVE, Summary, Severity, Affected, Patched, Credit, Repository string
	}
	// GitHubFailing tells the team GitHub fails, and what to fix when it
	// is theirs to fix (Reason).
	GitHubFailing struct{ Repository, Reason string }
	// GitHubRecovered tells the team GitHub works again.
	GitHubRecovered struct{ Repository string }
	// PublishedAfterReject tells the team room GitHub published the
	// advisory of a case rejected meanwhile.
	PublishedAfterReject struct{ CaseID, GHSAID string }
	// IntakeBurst tells the team room that new cases wait for their rooms:
	// more than Cap came within an hour.
	IntakeBurst struct {
		Cap  int
		Next time.Time
	}
	// TeamChanged tells the team room how the case rooms followed a change
	// of [team] members.
	TeamChanged struct {
		Added, Removed []string
		Cases          int
	}
	// TeamRoomUnencrypted warns that the team room is not end-to-end
	// encrypted.
	TeamRoomUnencrypted struct{}
	// GitHubParked tells the team that GitHub work was given up.
	GitHubParked struct {
		CaseID, What, Reason string
		Attempts             int
	}
	// GitHubRefused says GitHub refused a request for good.
	GitHubRefused struct{ CaseID, Message string }
	// AdvisoryClosedOnGitHub tells the team room a private report was
	// closed on github.com, which ended its case.
	AdvisoryClosedOnGitHub struct{ CaseID, GHSAID, URL string }
	// AdvisoryStateChanged says secbot changed the advisory's state on
	// GitHub (a private report accepted: draft; closed).
	AdvisoryStateChanged struct{ CaseID, GHSAID, URL, State string }
	// AdvisoryMoved links the case's advisory in its new repository.
	AdvisoryMoved struct{ CaseID, GHSAID, URL, From, To, OldGHSAID string }
	// GitHubWatchFailing tells the team room that watching for private
	// reports fails, and what to fix when it is theirs to fix.
	GitHubWatchFailing struct{ Reason string }
	// GitHubWatchRecovered tells the team room watching works again.
	GitHubWatchRecovered struct{}
)

// Answers to commands.
type (
	// Refused is a refused command: nothing changed; Reason says why.
	Refused struct{ Reason string }
	// Usage answers a command given the wrong way.
	Usage struct {
		Syntax string
		Hint   string
	}
	// Help lists commands, generated from their registrations.
	Help struct {
		Title    string
		Commands []HelpLine
	}
	// CaseList is `list`: the open cases.
	CaseList struct{ Rows []CaseRow }
	// CaseStatus is `status` for the team: one case in full.
	CaseStatus struct {
		CaseID, Stage, Reporter, Handler, Opened string
		GHSAID, GHSAURL, ForkURL                 string
		Facts                                    []Fact
		Embargo                                  string
		NeedToKnow                               []string
		Deadlines                                []DeadlineRow
		Timeline                                 []TimelineRow
	}
	// ReporterStatus is `status` for the reporter.
	ReporterStatus struct {
		CaseID, Stage string
		Deadlines     []DeadlineRow
	}
	// Contacts is the escalation ladder.
	Contacts struct {
		Steps       []ContactRow
		RepeatEvery string
	}
	// Stats is response efficiency over a window.
	Stats struct {
		Days, Cases int
		Rows        []StatsRow
	}
	// Done answers a command that did what it says; What is one of the
	// outcomes in done.md.
	Done struct {
		What    string
		CaseID  string
		Prefix  string
		User    string
		Login   string
		URL     string
		End     string
		Warn    string
		Promise string
		Role    string
		Name    string
	}
)

// HelpLine is one command of Help.
type HelpLine struct{ Syntax, Summary string }

// CaseRow is one case of CaseList.
type CaseRow struct{ CaseID, Stage, Handler, Next, Embargo string }

// Fact is one recorded fact of CaseStatus.
type Fact struct{ Name, Value string }

// DeadlineRow is one promise of a status.
type DeadlineRow struct{ Promise, Due, State, Ladder string }

// TimelineRow is one audit line of CaseStatus.
type TimelineRow struct{ At, Action, Actor, Detail string }

// ContactRow is one ladder step of Contacts.
type ContactRow struct{ After, Who string }

// StatsRow is one promise of Stats.
type StatsRow struct{ Promise, Kept, Median string }

func (Acknowledged) Template() string                { return "acknowledged" }
func (Closed) Template() string                      { return "closed" }
func (Confirmed) Template() string                   { return "confirmed" }
func (CaseRoomUnusable) Template() string            { return "case_room_unusable" }
func (MeantForTheCaseRoom) Template() string         { return "meant_for_the_case_room" }
func (DMAck) Template() string                       { return "dm_ack" }
func (DMDetailsNoCase) Template() string             { return "dm_details_no_case" }
func (DMDetailsWarning) Template() string            { return "dm_details_warning" }
func (DMExistingCase) Template() string              { return "dm_existing_case" }
func (DMFromPublic) Template() string                { return "dm_from_public" }
func (EmbargoLifted) Template() string               { return "embargo_lifted" }
func (EmbargoProposed) Template() string             { return "embargo_proposed" }
func (NotUnderstood) Template() string               { return "not_understood" }
func (PublicThread) Template() string                { return "public_thread" }
func (PublishedReporter) Template() string           { return "published_reporter" }
func (Rejected) Template() string                    { return "rejected" }
func (ReporterChased) Template() string              { return "reporter_chased" }
func (SlowDown) Template() string                    { return "slow_down" }
func (TeamResponse) Template() string                { return "team_response" }
func (TeamUpdate) Template() string                  { return "team_update" }
func (Undecryptable) Template() string               { return "undecryptable" }
func (Welcome) Template() string                     { return "welcome" }
func (Announced) Template() string                   { return "announced" }
func (EmbargoAnswered) Template() string             { return "embargo_answered" }
func (EmbargoReminder) Template() string             { return "embargo_reminder" }
func (EscalationDM) Template() string                { return "escalation_dm" }
func (EscalationTeam) Template() string              { return "escalation_team" }
func (NotTeam) Template() string                     { return "not_team" }
func (Reminder) Template() string                    { return "reminder" }
func (TeamNewCase) Template() string                 { return "team_new_case" }
func (AdvisoryCollaboratorAdded) Template() string   { return "advisory_collaborator_added" }
func (AdvisoryCollaboratorRemoved) Template() string { return "advisory_collaborator_removed" }
func (AdvisoryCreated) Template() string             { return "advisory_created" }
func (AdvisoryCVERequested) Template() string        { return "advisory_cve_requested" }
func (AdvisoryAdopted) Template() string             { return "advisory_adopted" }
func (AdvisoryForkReady) Template() string           { return "advisory_fork_ready" }
func (AdvisoryPublished) Template() string           { return "advisory_published" }
func (AdvisoryUpdated) Template() string             { return "advisory_updated" }
func (Announcement) Template() string                { return "announcement" }
func (GitHubFailing) Template() string               { return "github_failing" }
func (GitHubRecovered) Template() string             { return "github_recovered" }
func (GitHubRefused) Template() string               { return "github_refused" }
func (TeamRoomUnencrypted) Template() string         { return "team_room_unencrypted" }
func (TeamChanged) Template() string                 { return "team_changed" }
func (GitHubParked) Template() string                { return "github_parked" }
func (IntakeBurst) Template() string                 { return "intake_burst" }
func (PublishedAfterReject) Template() string        { return "published_after_reject" }
func (AdvisoryClosedOnGitHub) Template() string      { return "advisory_closed_on_github" }
func (AdvisoryStateChanged) Template() string        { return "advisory_state_changed" }
func (AdvisoryMoved) Template() string               { return "advisory_moved" }
func (GitHubWatchFailing) Template() string          { return "github_watch_failing" }
func (GitHubWatchRecovered) Template() string        { return "github_watch_recovered" }
func (Refused) Template() string                     { return "refused" }
func (Usage) Template() string                       { return "usage" }
func (Help) Template() string                        { return "help" }
func (CaseList) Template() string                    { return "case_list" }
func (CaseStatus) Template() string                  { return "case_status" }
func (ReporterStatus) Template() string              { return "reporter_status" }
func (Contacts) Template() string                    { return "contacts" }
func (Stats) Template() string                       { return "stats" }
func (Done) Template() string                        { return "done" }
func (EmailSubject) Template() string                { return "email_subject" }
func (EmailAck) Template() string                    { return "email_ack" }
func (EmailPosted) Template() string                 { return "email_posted" }
func (EmailGone) Template() string                   { return "email_gone" }
func (EmailStranger) Template() string               { return "email_stranger" }
func (EmailFlood) Template() string                  { return "email_flood" }
func (EmailText) Template() string                   { return "email_text" }
func (EmailNotPosted) Template() string              { return "email_not_posted" }
func (EmailBounced) Template() string                { return "email_bounced" }
func (NoEncryption) Template() string                { return "no_encryption" }
func (TeamReply) Template() string                   { return "team_reply" }

// Queued work decided again when it runs.
type (
	// QueuedRefused tells the team room that secbot did not make queued
	// work (What) of a case, which the case no longer allows (Reason).
	QueuedRefused struct{ CaseID, What, Reason string }
	// QueuedCancelled tells the team room which queued work of a case a
	// decision cancelled (What), and why (Because).
	QueuedCancelled struct {
		CaseID, Because string
		What            []string
	}
	// PublishedUnderEmbargo tells the team room GitHub published an
	// advisory while an embargo agreed after the publish stands.
	PublishedUnderEmbargo struct{ CaseID, GHSAID, End, Prefix string }
)

func (QueuedRefused) Template() string         { return "queued_refused" }
func (QueuedCancelled) Template() string       { return "queued_cancelled" }
func (PublishedUnderEmbargo) Template() string { return "published_under_embargo" }

// All lists one value of every data type, for the test that renders every
// template with its data.
func All() []Data {
	return []Data{
		Acknowledged{}, CaseRoomUnusable{}, Closed{}, Confirmed{}, DMAck{}, DMDetailsNoCase{}, DMDetailsWarning{}, DMExistingCase{},
		DMFromPublic{}, EmbargoLifted{}, EmbargoProposed{}, NotUnderstood{}, PublicThread{}, PublishedReporter{},
		Rejected{}, ReporterChased{}, SlowDown{}, TeamResponse{}, TeamUpdate{}, Undecryptable{}, Welcome{},
		Announced{}, EmbargoAnswered{}, EmbargoReminder{}, EscalationDM{}, EscalationTeam{}, NotTeam{}, Reminder{},
		TeamNewCase{}, AdvisoryCollaboratorAdded{}, AdvisoryCollaboratorRemoved{}, AdvisoryCreated{},
		AdvisoryCVERequested{}, AdvisoryForkReady{}, AdvisoryPublished{}, AdvisoryUpdated{}, Announcement{},
		GitHubFailing{}, GitHubRecovered{}, GitHubRefused{}, TeamRoomUnencrypted{}, TeamChanged{}, GitHubParked{}, IntakeBurst{}, PublishedAfterReject{},
		AdvisoryClosedOnGitHub{}, AdvisoryStateChanged{}, AdvisoryMoved{}, GitHubWatchFailing{}, GitHubWatchRecovered{}, Refused{}, Usage{}, Help{}, CaseList{}, CaseStatus{},
		ReporterStatus{}, Contacts{}, Stats{}, Done{}, IdentityChanged{}, ReporterNewDevice{}, BotNewDevice{}, EncryptionDowngraded{},
		EmailSubject{}, EmailAck{}, EmailPosted{}, EmailGone{}, EmailStranger{}, EmailFlood{}, NoEncryption{}, TeamReply{},
		AdvisoryAdopted{},
		QueuedRefused{}, QueuedCancelled{}, PublishedUnderEmbargo{},
		EmailText{}, EmailNotPosted{}, EmailBounced{}, MeantForTheCaseRoom{},
	}
}

// Trust texts.
type (
	// IdentityChanged tells the team room a member's identity changed.
	IdentityChanged struct {
		Member, Key, Prefix string
		// Strict is true when identities come from the config.
		Strict bool
		// Account is true on a platform that pins accounts (Key is the
		// account ID the member's username now belongs to).
		Account bool
	}
	// ReporterNewDevice tells a case room the reporter has a new device.
	ReporterNewDevice struct{ Reporter, Device, Name string }
	// BotNewDevice tells the team room a device the bot's identity did
	// not sign logged in to the bot's account.
	BotNewDevice struct{ Device, Name string }
	// EncryptionDowngraded tells the team room a room of the bot's lost
	// its encryption (in the state the homeserver sent).
	EncryptionDowngraded struct {
		Room, Algorithm, Sender, CaseID string
		// Team is true when Room is the team room, DM when it is a direct
		// chat (the case's with its reporter, or one of the bot's).
		Team, DM bool
	}
)

func (BotNewDevice) Template() string         { return "bot_new_device" }
func (EncryptionDowngraded) Template() string { return "encryption_downgraded" }

func (IdentityChanged) Template() string   { return "identity_changed" }
func (ReporterNewDevice) Template() string { return "reporter_new_device" }
