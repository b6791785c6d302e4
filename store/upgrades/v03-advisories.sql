-- v2 -> v3: GitHub advisories

-- The case's draft advisory and its temporary private fork, once GitHub
-- made them.
ALTER TABLE cases ADD COLUMN ghsa_id TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN ghsa_url TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN fork_name TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN fork_url TEXT NOT NULL DEFAULT '';

-- Whether GitHub is failing, so the team is told once, not once per retry.
CREATE TABLE service_status (
	service       TEXT PRIMARY KEY,
	failing_since INTEGER NOT NULL,
	last_error    TEXT NOT NULL DEFAULT ''
);
