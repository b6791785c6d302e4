-- v3 -> v4: The five steps' facts, embargoes and the need-to-know list

-- What the team recorded for the advisory and the announcement.
ALTER TABLE cases ADD COLUMN affected TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN patched TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN severity TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN public_summary TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN credit TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN cve_id TEXT NOT NULL DEFAULT '';

-- At most one embargo per case, in Vultron's states.
CREATE TABLE embargoes (
	case_id     TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
	state       TEXT NOT NULL,
	end_at      INTEGER,
	proposed_at INTEGER,
	updated_at  INTEGER NOT NULL
);

-- People outside the team who may know of the issue.
CREATE TABLE need_to_know (
	case_id  TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	user_id  TEXT NOT NULL,
	added_by TEXT NOT NULL,
	added_at INTEGER NOT NULL,
	PRIMARY KEY (case_id, user_id)
);

-- Reminders of an embargo's end; each is sent once.
CREATE TABLE embargo_reminders (
	case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	at      INTEGER NOT NULL,
	end_at  INTEGER NOT NULL,
	sent    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (case_id, at)
);
CREATE INDEX embargo_reminders_due ON embargo_reminders (at) WHERE sent = 0;
