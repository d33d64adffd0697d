-- Several nodes on one database: each live node's heartbeat, which node
-- holds a job (claimed it from the shared queue, or runs it), and a
-- request to cancel a job that runs on another node. Times are Unix
-- milliseconds from the database's clock (one clock for every node).
CREATE TABLE nodes (
    id         TEXT   PRIMARY KEY NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

ALTER TABLE jobs ADD COLUMN node TEXT;
ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false;
-- How often the job was claimed: one claimed again (its node died before
-- it was seen running) continues with ids past what that node may have
-- shown its own readers.
ALTER TABLE jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;

-- The shared queue, oldest first: what a claim scans.
CREATE INDEX jobs_to_claim ON jobs (created_at, n) WHERE state = 'queued' AND node IS NULL;
CREATE INDEX jobs_by_node ON jobs (node) WHERE node IS NOT NULL;
