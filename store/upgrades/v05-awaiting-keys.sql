-- v4 -> v5: Encrypted events waiting for their keys

-- An encrypted event is noted (IDs only, never content) before it is
-- decrypted and forgotten once it has been handled or found undecryptable.
-- One whose key arrives after its sync batch is handled later, after the
-- sync position has moved on: a crash in between leaves it here, and the
-- next start fetches and handles it.
CREATE TABLE awaiting_keys (
	event_id TEXT PRIMARY KEY,
	room_id  TEXT NOT NULL,
	noted_at INTEGER NOT NULL
);
