-- v13 -> v14: Cases from GitHub's private vulnerability reports, and
-- advisories in more than one repository

-- How the reporter reached the team: matrix (a chat) or github (a private
-- vulnerability report, answered on the advisory).
ALTER TABLE cases ADD COLUMN channel TEXT NOT NULL DEFAULT 'matrix';
-- The GHSA ID of the private report that opened the case: unique, so a
-- report opens one case however often the watcher sees it.
ALTER TABLE cases ADD COLUMN report_ghsa TEXT;
CREATE UNIQUE INDEX cases_report_ghsa ON cases (report_ghsa) WHERE report_ghsa IS NOT NULL;
-- The repository (owner/name) of the case's advisory; '' is the default
-- repository of older configs.
ALTER TABLE cases ADD COLUMN ghsa_repo TEXT NOT NULL DEFAULT '';
CREATE INDEX cases_ghsa_id ON cases (ghsa_id) WHERE ghsa_id <> '';

-- A chat reporter has one open case (asking again points to it); a GitHub
-- user's private reports are each a case of their own.
DROP INDEX cases_open_per_reporter;
CREATE UNIQUE INDEX cases_open_per_reporter ON cases (reporter) WHERE stage <> 'closed' AND channel <> 'github';
