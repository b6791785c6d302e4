-- v5 -> v6: Urgent effects

-- What a reporter is waiting on (the answer to their request, the way into
-- their case room) runs before routine messages under a burst.
ALTER TABLE outbox ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
