-- v16 -> v17: The rooms secbot knows to be encrypted; its own identity

-- Encryption is sticky: a room recorded here (created encrypted by the
-- bot, or seen with m.room.encryption) is never sent to in the clear,
-- whatever the homeserver later says of its state. content is the
-- m.room.encryption content first recorded (JSON); downgrade_told_at is
-- when the team room was told the room's state lost its encryption (once).
CREATE TABLE encrypted_rooms (
	room_id           TEXT PRIMARY KEY,
	content           TEXT NOT NULL,
	recorded_at       BIGINT NOT NULL,
	downgrade_told_at BIGINT
);

-- The bot's own cross-signing master key as first seen: at later starts a
-- published identity that differs is a homeserver's, and no device it
-- signed gets room keys.
CREATE TABLE bot_identity (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	master_key TEXT NOT NULL,
	pinned_at  BIGINT NOT NULL
);
