-- v23 -> v24: Every write fenced on PostgreSQL

-- The epoch check of secbot's own transactions does not see the writes
-- mautrix's crypto and state stores make through the same database. So on
-- PostgreSQL the database checks every write itself: each connection of an
-- instance names that instance's session (a random token, set as
-- secbot.session when the connection is made); the leader row names the
-- session of the instance in office (taking office sets it with the
-- epoch); and a statement trigger, put on every table but leader when an
-- instance takes office, reads the row FOR SHARE (a takeover's increment
-- waits for the statement's transaction) and refuses the statement unless
-- the row names the writer's session. A connection of no instance (an
-- operator's tool, copy-db) may write only while no instance holds the
-- election's advisory lock (LockKey, 0x73656362). SQLite has one process
-- on its file and nothing of this (its leader row's session stays empty;
-- the column is there so that both databases have the same tables).
ALTER TABLE leader ADD COLUMN session TEXT NOT NULL DEFAULT '';

-- only: postgres until "end only"

CREATE FUNCTION secbot_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	mine TEXT := COALESCE(current_setting('secbot.session', true), '');
	office TEXT;
BEGIN
	SELECT session INTO office FROM leader WHERE id = 1 FOR SHARE;
	IF mine <> '' THEN
		IF office IS NOT DISTINCT FROM mine THEN
			RETURN NULL;
		END IF;
		RAISE EXCEPTION 'fenced: this secbot instance is not the one in office (write to %)', TG_TABLE_NAME
			USING ERRCODE = 'SB001';
	END IF;
	-- Not an instance: only while none holds the lock. An instance that
	-- just stopped may still hold it for a moment (the server ends its
	-- session once it reads the closed connection): up to a second's grace.
	FOR attempt IN 1..20 LOOP
		IF NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND classid = 0 AND objid = 1936024418 AND objsubid = 1) THEN
			RETURN NULL;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RAISE EXCEPTION 'fenced: a secbot instance is active; write to % only through it', TG_TABLE_NAME
		USING ERRCODE = 'SB001';
END
$$;
-- end only postgres
