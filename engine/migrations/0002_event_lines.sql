-- Each event carries how many messages the job had said up to and
-- including it: a message's line number, so a page of lines is numbered
-- without counting what came before it.
ALTER TABLE events ADD COLUMN line INTEGER NOT NULL DEFAULT 0;

UPDATE events SET line = numbered.line
FROM (
    SELECT job_id, seq,
           count(*) FILTER (WHERE kind = 0) OVER (PARTITION BY job_id ORDER BY seq) AS line
    FROM events
) AS numbered
WHERE events.job_id = numbered.job_id AND events.seq = numbered.seq;
