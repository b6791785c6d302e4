-- v20 -> v21: People and rooms name their platform; a case's rooms and its advisory have tables of their own

-- Before this revision secbot spoke only Matrix, and a chat person or room
-- was a Matrix ID without its platform. Now every chat person and room the
-- core keeps names its platform (matrix:@alice:example.org), so that a
-- second platform's names can never be taken for Matrix's.

-- Where a case was asked for, where its reporter is answered and its
-- private room: one row each, on a platform, by the platform's own ID.
CREATE TABLE case_rooms (
	case_id  TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	role     TEXT NOT NULL, -- source | dm | case
	platform TEXT NOT NULL,
	room_id  TEXT NOT NULL,
	PRIMARY KEY (case_id, role)
);
CREATE UNIQUE INDEX case_rooms_case_room ON case_rooms (platform, room_id) WHERE role = 'case';
CREATE INDEX case_rooms_by_room ON case_rooms (platform, room_id);
INSERT INTO case_rooms (case_id, role, platform, room_id) SELECT id, 'source', 'matrix', source_room FROM cases WHERE source_room <> '' AND channel = 'matrix';
INSERT INTO case_rooms (case_id, role, platform, room_id) SELECT id, 'dm', 'matrix', dm_room FROM cases WHERE dm_room <> '';
INSERT INTO case_rooms (case_id, role, platform, room_id) SELECT id, 'case', 'matrix', case_room FROM cases WHERE case_room <> '';

-- A case's GitHub advisory (and the private report that opened it).
CREATE TABLE advisories (
	case_id     TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
	ghsa_id     TEXT NOT NULL DEFAULT '',
	ghsa_url    TEXT NOT NULL DEFAULT '',
	repository  TEXT NOT NULL DEFAULT '', -- owner/name ("" for the default one of older configs)
	fork_name   TEXT NOT NULL DEFAULT '',
	fork_url    TEXT NOT NULL DEFAULT '',
	report_ghsa TEXT
);
-- One advisory belongs to one case; one report opens one case.
CREATE UNIQUE INDEX advisories_ghsa_id ON advisories (ghsa_id) WHERE ghsa_id <> '';
CREATE UNIQUE INDEX advisories_report_ghsa ON advisories (report_ghsa) WHERE report_ghsa IS NOT NULL;
INSERT INTO advisories (case_id, ghsa_id, ghsa_url, repository, fork_name, fork_url, report_ghsa)
	SELECT id, ghsa_id, ghsa_url, ghsa_repo, fork_name, fork_url, report_ghsa FROM cases
	WHERE ghsa_id <> '' OR ghsa_url <> '' OR ghsa_repo <> '' OR fork_name <> '' OR report_ghsa IS NOT NULL;

DROP INDEX cases_by_room;
DROP INDEX cases_report_ghsa;
DROP INDEX cases_ghsa_id;
ALTER TABLE cases DROP COLUMN source_room;
ALTER TABLE cases DROP COLUMN dm_room;
ALTER TABLE cases DROP COLUMN case_room;
ALTER TABLE cases DROP COLUMN ghsa_id;
ALTER TABLE cases DROP COLUMN ghsa_url;
ALTER TABLE cases DROP COLUMN fork_name;
ALTER TABLE cases DROP COLUMN fork_url;
ALTER TABLE cases DROP COLUMN report_ghsa;
ALTER TABLE cases DROP COLUMN ghsa_repo;

-- The bot's direct chats, by platform and the platform's own IDs.
CREATE TABLE chat_dms (
	platform   TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	room_id    TEXT NOT NULL,
	-- only: sqlite
	created_at INTEGER NOT NULL,
	-- only: postgres
	created_at BIGINT NOT NULL,
	PRIMARY KEY (platform, user_id)
);
CREATE INDEX chat_dms_by_room ON chat_dms (platform, room_id);
INSERT INTO chat_dms (platform, user_id, room_id, created_at) SELECT 'matrix', user_id, room_id, created_at FROM dm_rooms;
DROP TABLE dm_rooms;

-- A chat case is a chat's, whatever its platform.
UPDATE cases SET channel = 'chat' WHERE channel = 'matrix';

-- Matrix people and rooms name their platform.
UPDATE cases SET reporter = 'matrix:' || reporter WHERE reporter LIKE '@%';
UPDATE cases SET handler = 'matrix:' || handler WHERE handler LIKE '@%';
UPDATE audit_log SET actor = 'matrix:' || actor WHERE actor LIKE '@%';
UPDATE deadlines SET met_by = 'matrix:' || met_by WHERE met_by LIKE '@%';
UPDATE deadlines SET escalated_by = 'matrix:' || escalated_by WHERE escalated_by LIKE '@%';
UPDATE need_to_know SET user_id = 'matrix:' || user_id WHERE user_id LIKE '@%';
UPDATE need_to_know SET added_by = 'matrix:' || added_by WHERE added_by LIKE '@%';
UPDATE team_seen SET user_id = 'matrix:' || user_id WHERE user_id LIKE '@%';
UPDATE team_identities SET user_id = 'matrix:' || user_id WHERE user_id LIKE '@%';
UPDATE team_identities SET pinned_by = 'matrix:' || pinned_by WHERE pinned_by LIKE '@%';
UPDATE known_devices SET user_id = 'matrix:' || user_id WHERE user_id LIKE '@%';
UPDATE room_commands SET room_id = 'matrix:' || room_id WHERE room_id LIKE '!%';
UPDATE encrypted_rooms SET room_id = 'matrix:' || room_id WHERE room_id LIKE '!%';
-- Effects still to run keep their order with those queued from now on.
UPDATE outbox SET lane = replace(replace(lane, ':!', ':matrix:!'), ':#', ':matrix:#')
	WHERE state = 'pending' AND (lane LIKE 'room:!%' OR lane LIKE 'room:#%' OR lane LIKE 'announce:%:!%' OR lane LIKE 'announce:%:#%');
