-- Jobs and their events on PostgreSQL: the same shape as the SQLite
-- schema (engine/migrations). Times are Unix milliseconds; ids are the
-- 22-character base64url forms of 128-bit random ids. `n` orders jobs
-- created in the same millisecond; event texts are bytes, so any text a
-- job says (NUL included, which PostgreSQL's text refuses) comes back as
-- it was.
CREATE TABLE jobs (
    id             TEXT             PRIMARY KEY NOT NULL,
    n              BIGSERIAL        NOT NULL,
    owner          TEXT             NOT NULL,
    kind           TEXT             NOT NULL,
    params         TEXT             NOT NULL,
    display_name   TEXT             NOT NULL,
    locale         TEXT             NOT NULL,
    state          TEXT             NOT NULL,
    error          TEXT,
    progress       DOUBLE PRECISION,
    progress_label TEXT,
    created_at     BIGINT           NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT
);

CREATE INDEX jobs_by_owner ON jobs (owner, created_at DESC, n DESC);
CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_unfinished ON jobs (created_at, n) WHERE state IN ('queued', 'running');

-- kind: 0 message, 1 state, 2 end, 3 close, 4 progress. `line`: messages
-- up to and including this event (a message's line number).
CREATE TABLE events (
    job_id TEXT     NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    BIGINT   NOT NULL,
    kind   SMALLINT NOT NULL,
    text   BYTEA    NOT NULL,
    line   BIGINT   NOT NULL,
    PRIMARY KEY (job_id, seq)
);
