-- v24 -> v25: Find a reporter's open case by an index

-- OpenCaseOf (every message of a reporter without a case room: each
-- intake, each direct chat) reads `reporter = $1 AND stage <> 'closed'`,
-- which cases_open_per_reporter (its predicate also excludes GitHub's
-- cases) cannot serve: both databases scanned every case (at 100,000
-- cases an intake took 6 ms on SQLite, 12 ms on PostgreSQL; 1.3 and 1.6 ms
-- with this index). This index has the query's own predicate.
CREATE INDEX cases_open_by_reporter ON cases (reporter) WHERE stage <> 'closed';
