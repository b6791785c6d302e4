-- v19 -> v20: The parts of a post that were made

-- A post of several events (an email's text parts and files) records
-- each part once it is made, so a retry goes on where it stopped,
-- however many parts there are. Event IDs only: no content.
CREATE TABLE post_parts (
	effect_id BIGINT NOT NULL,
	part      TEXT   NOT NULL,
	event_id  TEXT   NOT NULL,
	PRIMARY KEY (effect_id, part)
);
