-- v1 -> v2: Deadlines and the escalation ladder

-- One row per promise of a case. A row is a timer: next_at is when it
-- next fires (a reminder, then each escalation step), NULL when nothing is
-- pending. Firing updates the row and records its messages in the outbox in
-- one transaction, guarded by generation and progress, so each reminder and
-- each escalation step goes out exactly once.
CREATE TABLE deadlines (
	case_id     TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	kind        TEXT NOT NULL, -- acknowledge | detailed_response | update
	generation  INTEGER NOT NULL DEFAULT 1, -- bumped whenever the deadline is met or moved
	started_at  INTEGER NOT NULL, -- what the deadline counts from
	due_at      INTEGER NOT NULL,
	remind_at   INTEGER,          -- NULL: no reminder (or the deadline was too close)
	reminded    INTEGER NOT NULL DEFAULT 0,
	ladder_step INTEGER NOT NULL DEFAULT 0, -- escalation steps fired so far
	met_at      INTEGER,
	met_by      TEXT NOT NULL DEFAULT '',
	escalated_by TEXT NOT NULL DEFAULT '', -- the reporter, when they ran !escalate
	next_at     INTEGER,
	PRIMARY KEY (case_id, kind)
);
CREATE INDEX deadlines_next ON deadlines (next_at) WHERE next_at IS NOT NULL;
