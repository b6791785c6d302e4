-- v9 -> v10: The GitHub account of each person on the need-to-know list

-- Stored so that taking someone off the list also takes them off the
-- private advisory.
ALTER TABLE need_to_know ADD COLUMN github_login TEXT NOT NULL DEFAULT '';
