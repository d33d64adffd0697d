-- Jobs and their events. Times are Unix milliseconds; ids are the
-- 22-character base64url forms of 128-bit random ids.
CREATE TABLE jobs (
    id             TEXT    PRIMARY KEY NOT NULL,
    owner          TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    params         TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    locale         TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    error          TEXT,
    progress       REAL,
    progress_label TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
);

CREATE INDEX jobs_by_owner ON jobs (owner, created_at DESC);
CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE state IN ('queued', 'running');

-- kind: 0 message, 1 state, 2 end, 3 close, 4 progress.
CREATE TABLE events (
    job_id TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    kind   INTEGER NOT NULL,
    text   TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
