-- v0 -> v1: Initial schema

-- Case numbers are allocated per year from this counter, inside the same
-- transaction that inserts the case, so two reports never share an ID.
CREATE TABLE case_seq (
	year INTEGER PRIMARY KEY,
	last INTEGER NOT NULL
);

-- One row per report. Nothing here is the text of a reporter's message:
-- only who, where, when and how far the case has come.
CREATE TABLE cases (
	id          TEXT PRIMARY KEY, -- SR-YYYY-NNNN
	reporter    TEXT NOT NULL,
	source_room TEXT NOT NULL,    -- where the request was made (a DM or a public room)
	dm_room     TEXT NOT NULL DEFAULT '',
	case_room   TEXT NOT NULL DEFAULT '',
	stage       TEXT NOT NULL,
	handler     TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL, -- unix milliseconds
	updated_at  INTEGER NOT NULL,
	closed_at   INTEGER
);
-- A reporter has at most one open case; asking again points to it.
CREATE UNIQUE INDEX cases_open_per_reporter ON cases (reporter) WHERE stage <> 'closed';
CREATE UNIQUE INDEX cases_by_room ON cases (case_room) WHERE case_room <> '';

-- The bot's direct-message room with each user it talks to.
CREATE TABLE dm_rooms (
	user_id    TEXT PRIMARY KEY,
	room_id    TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

-- The bot's own login, so restarts reuse the same device (and its keys).
CREATE TABLE account (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	user_id      TEXT NOT NULL,
	device_id    TEXT NOT NULL,
	access_token TEXT NOT NULL
);

-- The sync position, advanced only after a batch's handlers committed.
CREATE TABLE sync_position (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	next_batch TEXT NOT NULL
);

-- Events already handled, so a redelivered batch changes nothing.
CREATE TABLE handled_events (
	event_id   TEXT PRIMARY KEY,
	handled_at INTEGER NOT NULL
);
CREATE INDEX handled_events_age ON handled_events (handled_at);

-- Side effects, recorded in the transaction that decided them and marked
-- done once made. Effects in one lane run in order; lanes run in parallel.
CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	lane            TEXT NOT NULL,
	kind            TEXT NOT NULL,
	payload         TEXT NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending', -- pending | done | failed
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	result          TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	done_at         INTEGER
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_lane ON outbox (lane, id) WHERE state = 'pending';

-- Who did what, allowed or refused.
CREATE TABLE audit_log (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	case_id TEXT NOT NULL DEFAULT '',
	action  TEXT NOT NULL,
	detail  TEXT NOT NULL DEFAULT '',
	allowed INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX audit_log_case ON audit_log (case_id, at);
