-- v11 -> v12: When each case's room, advisory and team invites are made

-- New cases' set-up is capped per hour ([intake] max_new_cases_per_hour);
-- this is when each one's is due, so the next one knows its place.
ALTER TABLE cases ADD COLUMN setup_at INTEGER;
CREATE INDEX cases_setup_at ON cases (setup_at) WHERE setup_at IS NOT NULL;
