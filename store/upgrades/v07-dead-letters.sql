-- v6 -> v7: Dead letters

-- An event whose handler kept failing is parked here so that the sync can
-- go on without it. IDs, times and a short error category only: never the
-- event's content or the error's text, either of which may quote a report.
CREATE TABLE dead_letters (
	event_id  TEXT PRIMARY KEY,
	room_id   TEXT NOT NULL,
	parked_at INTEGER NOT NULL,
	attempts  INTEGER NOT NULL,
	category  TEXT NOT NULL
);
