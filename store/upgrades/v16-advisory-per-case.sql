-- v15 -> v16: One advisory belongs to one case

-- Before this, a retried advisory creation could adopt another case's
-- advisory (a private report titled with the case's ID). Where two cases
-- share an advisory, it stays with the case its report opened, else with
-- the case that recorded it first; the others lose it (audited), and the
-- team drafts theirs anew with `advisory`.
INSERT INTO audit_log (at, actor, case_id, action, detail, allowed)
SELECT c.updated_at, 'secbot', c.id, 'advisory.unshared', 'advisory ' || c.ghsa_id || ' belongs to another case', 1
FROM cases c
WHERE c.ghsa_id <> '' AND EXISTS (
	SELECT 1 FROM cases o WHERE o.id <> c.id AND o.ghsa_id = c.ghsa_id AND (
		o.report_ghsa = o.ghsa_id
		OR (COALESCE(c.report_ghsa, '') <> c.ghsa_id AND (o.created_at < c.created_at OR (o.created_at = c.created_at AND o.id < c.id)))));
-- Only this upgrade records advisory.unshared.
UPDATE cases SET ghsa_id = '', ghsa_url = '', fork_name = '', fork_url = ''
WHERE id IN (SELECT case_id FROM audit_log WHERE action = 'advisory.unshared');
DROP INDEX cases_ghsa_id;
CREATE UNIQUE INDEX cases_ghsa_id ON cases (ghsa_id) WHERE ghsa_id <> '';
