//! The PostgreSQL store: the same trait, tables and batches as SQLite
//! (`sqlite.rs`), on a database users already operate, which any number
//! of nodes share (`cluster.rs`, `pg_cluster.rs`).
//!
//! Differences that matter: event texts are `BYTEA` (PostgreSQL's `text`
//! refuses NUL, which a job may say); in a job's own fields (name, error,
//! progress label) a NUL becomes U+FFFD; jobs created in the same
//! millisecond are ordered by a serial `n`. The writer has a connection
//! of its own, as on SQLite, so readers can never starve it. As a cluster
//! node, a batch writes only for jobs the node holds, and tells the other
//! nodes what it touched once committed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool, QueryBuilder, Row};

use super::codec::{db_count, db_ms, kind_code, kind_from, ms, parse};
use super::pg_cluster::{job_of, not_held, notify};
use super::{JobRecord, Store, StoreError, StoredEvent, Write};
use crate::id::{JobId, SessionId};
use crate::model::Event;

/// Connections for reads (pages, streams catching up, loads), beside the
/// writer's own.
const READERS: u32 = 8;

/// The PostgreSQL store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
    pub(super) writer: PgPool,
    /// The heartbeat's own connection (see `pg_cluster.rs`).
    pub(super) beats: PgPool,
    /// Once this process is a cluster node: its id, and where the writes it
    /// may no longer make are reported (see `cluster.rs`).
    pub(super) fence: Arc<std::sync::Mutex<Option<Fence>>>,
}

/// A node's fencing: its id, and where fenced jobs are reported.
#[derive(Debug, Clone)]
pub(super) struct Fence {
    pub(super) node: String,
    pub(super) fenced: tokio::sync::mpsc::Sender<JobId>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and runs the
    /// migrations. Fails when the database cannot be reached within 10 s.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError(format!("JOBSTREAM_DATABASE_URL: {e}")))?;
        let options = options.application_name("jobstream");
        let sized = |n| {
            PgPoolOptions::new()
                .max_connections(n)
                .acquire_timeout(Duration::from_secs(10))
                .idle_timeout(Some(Duration::from_secs(600)))
                .max_lifetime(Some(Duration::from_secs(3600)))
        };
        // A transaction of a writer that stalls (its node paused or cut
        // off) is ended by the server, so its row locks do not hold up the
        // other nodes (a rescue) for longer than this.
        let writing = options
            .clone()
            .options([("idle_in_transaction_session_timeout", "10s")]);
        let writer = sized(1).connect_with(writing).await?;
        sqlx::migrate!("./migrations-pg").run(&writer).await?;
        let beats = sized(1).connect_lazy_with(options.clone());
        let pool = sized(READERS).connect_lazy_with(options);
        Ok(PgStore {
            pool,
            writer,
            beats,
            fence: Arc::default(),
        })
    }

    /// The pool for reads, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `text` as PostgreSQL's `text` takes it: NUL becomes U+FFFD.
fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn stored_event(row: &PgRow) -> Result<StoredEvent, StoreError> {
    let text: Vec<u8> = row.try_get("text")?;
    Ok(StoredEvent {
        seq: ms(row.try_get("seq")?).unwrap_or(0),
        kind: kind_from(i64::from(row.try_get::<i16, _>("kind")?))?,
        text: String::from_utf8(text)
            .map_err(|_| StoreError("an event's text in the database is not UTF-8".into()))?,
        line: ms(row.try_get("line")?).unwrap_or(0),
    })
}

/// Events from `rows` until their texts reach `max_bytes` (at least one),
/// read one by one.
async fn read_within<'r>(
    mut rows: impl futures_util::Stream<Item = Result<PgRow, sqlx::Error>> + Unpin + 'r,
    max_bytes: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    let mut bytes = 0;
    while bytes < max_bytes {
        let Some(row) = rows.try_next().await? else {
            break;
        };
        let event = stored_event(&row)?;
        bytes += event.text.len();
        events.push(event);
    }
    Ok(events)
}

pub(super) fn record(row: &PgRow) -> Result<JobRecord, StoreError> {
    let params: String = row.try_get("params")?;
    Ok(JobRecord {
        id: parse("job id", row.try_get("id")?)?,
        owner: parse("owner", row.try_get("owner")?)?,
        kind: row.try_get("kind")?,
        params: serde_json::from_str(&params)
            .map_err(|e| StoreError(format!("invalid params in the database: {e}")))?,
        display_name: row.try_get("display_name")?,
        locale: row.try_get("locale")?,
        state: parse("state", row.try_get("state")?)?,
        error: row.try_get("error")?,
        progress: row.try_get("progress")?,
        progress_label: row.try_get("progress_label")?,
        created_at: ms(row.try_get("created_at")?).unwrap_or(0),
        started_at: ms(row.try_get("started_at")?),
        finished_at: ms(row.try_get("finished_at")?),
        last_seq: ms(row.try_get("last_seq")?).unwrap_or(0),
    })
}

pub(super) const SELECT_JOBS: &str =
    "SELECT j.id, j.owner, j.kind, j.params, j.display_name, j.locale, \
     j.state, j.error, j.progress, j.progress_label, j.created_at, j.started_at, j.finished_at, \
     (SELECT max(seq) FROM events e WHERE e.job_id = j.id) AS last_seq FROM jobs j";

/// Most rows in one multi-row insert (5 parameters each; PostgreSQL takes
/// at most 65,535 in a statement).
const ROWS_PER_INSERT: usize = 1000;

async fn insert_events(
    conn: &mut PgConnection,
    events: &[(JobId, &Event)],
) -> Result<(), StoreError> {
    for chunk in events.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::new("INSERT INTO events (job_id, seq, kind, text, line) ");
        q.push_values(chunk, |mut row, (job, event)| {
            row.push_bind(job.to_string())
                .push_bind(db_ms(event.seq))
                .push_bind(i16::try_from(kind_code(event.kind)).unwrap_or(i16::MAX))
                .push_bind(event.text.as_bytes())
                .push_bind(db_ms(event.line));
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Applies `writes` in one transaction on `conn`. As a cluster node
/// (`fence`), only those for jobs the node holds (and new jobs), then
/// notifies the other nodes.
async fn write_all(
    conn: &mut PgConnection,
    writes: &[Write],
    fence: Option<&Fence>,
) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    let fenced = match fence {
        Some(fence) => not_held(&mut tx, writes, &fence.node).await?,
        None => HashSet::new(),
    };
    // Consecutive events go in multi-row inserts; anything else flushes
    // them first, so the order of the writes is kept.
    let mut events: Vec<(JobId, &Event)> = Vec::new();
    for write in writes {
        if fenced.contains(&job_of(write)) {
            continue;
        }
        if let Write::Event(job, event) = write {
            events.push((*job, event));
            continue;
        }
        insert_events(&mut tx, &events).await?;
        events.clear();
        match write {
            Write::Event(..) => unreachable!("handled above"),
            Write::Insert(job) => {
                sqlx::query(
                    "INSERT INTO jobs (id, owner, kind, params, display_name, locale, state, \
                     error, progress, progress_label, created_at, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(job.id.to_string())
                .bind(job.owner.to_string())
                .bind(pg_text(&job.kind))
                .bind(job.params.to_string())
                .bind(pg_text(&job.display_name))
                .bind(pg_text(&job.locale))
                .bind(job.state.as_str())
                .bind(job.error.as_deref().map(pg_text))
                .bind(job.progress)
                .bind(job.progress_label.as_deref().map(pg_text))
                .bind(db_ms(job.created_at))
                .bind(job.started_at.map(db_ms))
                .bind(job.finished_at.map(db_ms))
                .execute(&mut *tx)
                .await?;
            }
            Write::State {
                job,
                state,
                at,
                error,
            } => {
                sqlx::query(
                    "UPDATE jobs SET state = $1, error = $2, \
                     started_at = CASE WHEN $1 = 'running' THEN $3 ELSE started_at END, \
                     finished_at = CASE WHEN $1 IN ('queued', 'running') \
                     THEN finished_at ELSE $3 END WHERE id = $4",
                )
                .bind(state.as_str())
                .bind(error.as_deref().map(pg_text))
                .bind(db_ms(*at))
                .bind(job.to_string())
                .execute(&mut *tx)
                .await?;
            }
            Write::Progress {
                job,
                fraction,
                label,
            } => {
                sqlx::query("UPDATE jobs SET progress = $1, progress_label = $2 WHERE id = $3")
                    .bind(fraction)
                    .bind(label.as_deref().map(pg_text))
                    .bind(job.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    insert_events(&mut tx, &events).await?;
    if let Some(fence) = fence {
        notify(&mut tx, writes).await?;
        if !fenced.is_empty() {
            tracing::warn!(
                jobs = fenced.len(),
                "writes for jobs this node no longer holds were dropped"
            );
        }
        for job in fenced {
            // Full: the engine is told at the job's next write.
            let _ = fence.fenced.try_send(job);
        }
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        let fence = crate::engine::lock(&self.fence).clone();
        let mut conn = self.writer.acquire().await?;
        let written = write_all(&mut conn, writes, fence.as_ref()).await;
        if written.is_err() {
            // Whatever failed (a database that went away, a full disk),
            // the retry starts on a new connection.
            let _ = conn.detach().close().await;
        }
        written
    }

    async fn can_reclaim(&self, cutoff: u64) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT 1",
        )
        .bind(db_ms(cutoff))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    fn as_cluster(&self) -> Option<&dyn super::Cluster> {
        Some(self)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_JOBS} WHERE j.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn events(
        &self,
        id: JobId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let job = id.to_string();
        let rows = sqlx::query(
            "SELECT seq, kind, text, line FROM events \
             WHERE job_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(&job)
        .bind(db_count(limit))
        .fetch(&self.pool);
        let mut events = read_within(rows, max_bytes).await?;
        events.reverse();
        Ok(events)
    }

    async fn events_after(
        &self,
        id: JobId,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let job = id.to_string();
        let rows = sqlx::query(
            "SELECT seq, kind, text, line FROM events \
             WHERE job_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4",
        )
        .bind(&job)
        .bind(db_ms(after))
        .bind(db_ms(before))
        .bind(db_count(limit))
        .fetch(&self.pool);
        read_within(rows, max_bytes).await
    }

    async fn lines_before(
        &self,
        id: JobId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let job = id.to_string();
        let rows = sqlx::query(
            "SELECT seq, kind, text, line FROM events \
             WHERE job_id = $1 AND seq < $2 AND kind = 0 ORDER BY seq DESC LIMIT $3",
        )
        .bind(&job)
        .bind(db_ms(before))
        .bind(db_count(limit))
        .fetch(&self.pool);
        let mut lines = read_within(rows, crate::model::MAX_PAGE_BYTES).await?;
        lines.reverse();
        Ok(lines)
    }

    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_JOBS} WHERE j.owner = $1 ORDER BY j.created_at DESC, j.n DESC LIMIT $2"
        ))
        .bind(owner.to_string())
        .bind(db_count(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_JOBS} WHERE j.state IN ('queued', 'running') ORDER BY j.created_at, j.n"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        // Events go with their job (ON DELETE CASCADE).
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE finished_at IS NOT NULL AND finished_at < $1 ORDER BY finished_at LIMIT $2) \
             RETURNING id",
        )
        .bind(db_ms(cutoff))
        .bind(db_count(limit))
        .fetch_all(&self.writer)
        .await?;
        ids.iter().map(|id| parse("job id", id)).collect()
    }
}
