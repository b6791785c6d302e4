-- v17 -> v18: What secbot keeps of the security mailbox beyond its UIDs

-- The messages of the mailbox secbot has handled, by Message-ID and sender:
-- a message is named by its UIDVALIDITY and UID only while the mailbox
-- keeps them, and its handled keyword only where the server keeps keywords.
-- After a UIDVALIDITY change, or on a server without keywords, a message
-- already handled is known here and never opens a case again. Kept as long
-- as the database (they are small); Message-IDs and addresses only.
CREATE TABLE mail_handled (
	message_id TEXT NOT NULL,
	sender     TEXT NOT NULL,
	handled_at BIGINT NOT NULL,
	PRIMARY KEY (message_id, sender)
);

-- The UIDVALIDITY of each watched mailbox when last selected, so that a
-- change is noticed and said.
CREATE TABLE mail_mailboxes (
	mailbox     TEXT PRIMARY KEY,
	uidvalidity BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
