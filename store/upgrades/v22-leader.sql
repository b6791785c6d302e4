-- v21 -> v22: The office of the active instance

-- With several instances on one PostgreSQL database exactly one is active
-- (it holds an advisory lock). Each instance that takes office increases
-- epoch in the transaction that takes it, and every write transaction of
-- an active instance checks the epoch it took (FOR SHARE): nothing from an
-- instance that lost its office commits after the next one took it. The
-- row is made by the first instance to take office. takeovers counts the
-- offices taken by an instance that had been standing by.
CREATE TABLE leader (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	epoch     BIGINT  NOT NULL,
	instance  TEXT    NOT NULL,
	since     BIGINT  NOT NULL,
	takeovers BIGINT  NOT NULL DEFAULT 0
);
