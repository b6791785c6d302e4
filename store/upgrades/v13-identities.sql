-- v12 -> v13: Trust: team members' pinned identities, reporters' devices

-- A team member's cross-signing master key as first seen (or as the
-- coordinator re-pinned it with `!sec trust`): team commands count only
-- from devices it signed. announced_key is a changed key the team room was
-- already told about, so it is told once per change.
CREATE TABLE team_identities (
	user_id       TEXT PRIMARY KEY,
	master_key    TEXT NOT NULL,
	pinned_at     INTEGER NOT NULL,
	pinned_by     TEXT NOT NULL,
	announced_key TEXT NOT NULL DEFAULT ''
);

-- The devices a reporter's account had when the bot last looked: a new
-- one is noted in their open case rooms for the team.
CREATE TABLE known_devices (
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	seen_at   INTEGER NOT NULL,
	PRIMARY KEY (user_id, device_id)
);
