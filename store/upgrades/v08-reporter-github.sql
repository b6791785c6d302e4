-- v7 -> v8: The reporter's own GitHub account

-- A reporter names their own GitHub account once (`!github NAME`); anyone
-- else is added to the private advisory by the team.
ALTER TABLE cases ADD COLUMN reporter_github TEXT NOT NULL DEFAULT '';
