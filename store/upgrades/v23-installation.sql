-- v22 -> v23: A secret of the installation

-- A random secret, made once per database, for what a chat platform must
-- derive so that no earlier installation and nobody outside can guess it
-- (Rocket.Chat message IDs from outbox rows, the marks of case groups).
-- It moves with the database (copy-db), never leaves it.
CREATE TABLE installation (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	secret TEXT    NOT NULL
);
