-- v17 -> v18: The rooms secbot knows to be end-to-end encrypted

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
