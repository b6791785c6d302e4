-- v14 -> v15: The email thread of each email case

-- An email case answers its reporter in their thread: the Message-ID of
-- their first message (the thread's root) and of their latest, which the
-- next answer replies to. Message-IDs only: the mail server keeps the
-- messages themselves.
CREATE TABLE mail_threads (
	case_id    TEXT PRIMARY KEY REFERENCES cases (id),
	root       TEXT NOT NULL,
	last       TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
