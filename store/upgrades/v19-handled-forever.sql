-- v18 -> v19: Handled events are kept; the newest team command of each room

-- A handled event's ID is what refuses its redelivery, and a homeserver
-- can redeliver an event of any age (the megolm session that decrypts it
-- is kept). So handled IDs are kept for good, except the few marked
-- prunable: answers to chatter that change nothing, which
-- [database] retention prunes.
ALTER TABLE handled_events ADD COLUMN prunable BOOLEAN NOT NULL DEFAULT FALSE;

-- When the newest team command handled in a room was sent (its
-- origin_server_ts, never later than when it was handled): a team command
-- sent before it is a replay or given up on, and refused.
CREATE TABLE room_commands (
	room_id TEXT PRIMARY KEY,
	sent_at BIGINT NOT NULL
);
