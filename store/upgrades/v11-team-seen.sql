-- v10 -> v11: The team the case rooms were last brought in line with

-- At start and on a reload, the open cases' rooms follow [team] members:
-- who joined the team since is invited, who left is removed.
CREATE TABLE team_seen (
	user_id TEXT PRIMARY KEY
);
