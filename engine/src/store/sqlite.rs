//! The embedded store: one SQLite file through sqlx.
//!
//! WAL mode with `synchronous = NORMAL`: a committed batch survives a crash
//! of the process (`kill -9`); a power cut may lose the last batches, never
//! corrupt the file. Migrations are embedded and run on open.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, SqlitePool};

use super::codec::{db_count, db_ms, kind_code, kind_from, ms, parse};
use super::{JobRecord, Reserve, Store, StoreError, StoredEvent, Write};
use crate::id::{JobId, SessionId};
use crate::model::Event;

/// Rows per multi-row `INSERT` of events (5 variables each, far below
/// SQLite's limit of 32766).
const EVENT_ROWS_PER_INSERT: usize = 256;

/// Connections for reads (the writer has one more of its own).
const READERS: u32 = 4;

/// A [`Store`] in a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads: pages, streams catching up, loads.
    pool: SqlitePool,
    /// Writes (the writer task's batches, the sweeper's deletes): a
    /// connection of their own, so readers can never take the one the
    /// writer needs. The same pool as `pool` for an in-memory database.
    writer: SqlitePool,
    /// Space kept back for a full disk; none for an in-memory database.
    reserve: Option<Arc<Reserve>>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the database at `url`,
    /// e.g. `sqlite://data/jobstream.db`, and brings its schema up to date.
    /// `sqlite::memory:` gives a private in-memory database.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError(format!("JOBSTREAM_DATABASE_URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            if let Some(dir) = options.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError(format!("cannot create the folder {}: {e}", dir.display()))
                    })?;
                }
            }
        }
        if in_memory {
            // An in-memory database exists once per connection: exactly
            // one, kept forever, for reads and writes alike.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations").run(&pool).await?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                pool,
                reserve: None,
            });
        }
        // One writer at a time is all SQLite allows, with its own
        // connection; a few readers beside it (WAL lets them read while it
        // writes).
        let sized = |n| {
            SqlitePoolOptions::new()
                .max_connections(n)
                .idle_timeout(Some(Duration::from_secs(600)))
                .max_lifetime(Some(Duration::from_secs(3600)))
        };
        let writer = sized(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reserve = Reserve::new(options.get_filename());
        let pool = sized(READERS).connect_with(options).await?;
        let reserve = Arc::new(reserve);
        let taking = Arc::clone(&reserve);
        // Writes 8 MiB when it is missing: not on a runtime thread.
        let _ = tokio::task::spawn_blocking(move || taking.take()).await;
        Ok(SqliteStore {
            pool,
            writer,
            reserve: Some(reserve),
        })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn stored_event(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: ms(row.try_get("seq")?).unwrap_or(0),
        kind: kind_from(row.try_get("kind")?)?,
        text: row.try_get("text")?,
        line: ms(row.try_get("line")?).unwrap_or(0),
    })
}

/// Events from `rows` until their texts reach `max_bytes` (at least one).
/// Rows are read one by one, so a page of large messages stops at the
/// budget instead of being held whole.
async fn read_within<'r>(
    mut rows: impl futures_util::Stream<Item = Result<sqlx::sqlite::SqliteRow, sqlx::Error>>
        + Unpin
        + 'r,
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

fn record(row: &sqlx::sqlite::SqliteRow) -> Result<JobRecord, StoreError> {
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

const SELECT_JOBS: &str = "SELECT j.*, \
     (SELECT max(seq) FROM events e WHERE e.job_id = j.id) AS last_seq FROM jobs j";

async fn insert_events(
    tx: &mut sqlx::SqliteConnection,
    events: &[(JobId, &Event)],
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
        let mut q = QueryBuilder::new("INSERT INTO events (job_id, seq, kind, text, line) ");
        q.push_values(chunk, |mut row, (job, event)| {
            row.push_bind(job.to_string())
                .push_bind(db_ms(event.seq))
                .push_bind(kind_code(event.kind))
                .push_bind(&*event.text)
                .push_bind(db_ms(event.line));
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Applies `writes` in one transaction on `conn`.
async fn write_all(conn: &mut SqliteConnection, writes: &[Write]) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    // Consecutive events go in multi-row inserts; anything else flushes
    // them first, so the order of the writes is kept.
    let mut events: Vec<(JobId, &Event)> = Vec::new();
    for write in writes {
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
                    "INSERT INTO jobs (id, owner, kind, params, display_name, locale, \
                         state, error, progress, progress_label, created_at, started_at, \
                         finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(job.id.to_string())
                .bind(job.owner.to_string())
                .bind(&job.kind)
                .bind(job.params.to_string())
                .bind(&job.display_name)
                .bind(&job.locale)
                .bind(job.state.as_str())
                .bind(&job.error)
                .bind(job.progress)
                .bind(&job.progress_label)
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
                    "UPDATE jobs SET state = ?1, error = ?2, \
                         started_at = CASE WHEN ?1 = 'running' THEN ?3 ELSE started_at END, \
                         finished_at = CASE WHEN ?1 IN ('queued', 'running') \
                         THEN finished_at ELSE ?3 END WHERE id = ?4",
                )
                .bind(state.as_str())
                .bind(error)
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
                sqlx::query("UPDATE jobs SET progress = ?, progress_label = ? WHERE id = ?")
                    .bind(fraction)
                    .bind(label)
                    .bind(job.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    insert_events(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes up to `limit` jobs that finished before `cutoff`, with their
/// events, in one transaction on `conn`.
async fn purge(
    conn: &mut SqliteConnection,
    cutoff: u64,
    limit: usize,
) -> Result<Vec<JobId>, StoreError> {
    let mut tx = conn.begin().await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? \
         ORDER BY finished_at LIMIT ?",
    )
    .bind(db_ms(cutoff))
    .bind(db_count(limit))
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        sqlx::query("DELETE FROM events WHERE job_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    ids.iter().map(|id| parse("job id", id)).collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await?;
        let written = write_all(&mut conn, writes).await;
        if written.is_err() && self.reserve.is_some() {
            // A transaction that failed to commit (a full disk) can leave
            // the connection inside it without the driver knowing: the
            // retry then ran in a savepoint of the dead transaction and was
            // lost with it. A new connection starts clean. (Not for an
            // in-memory database, which its one connection is.)
            let _ = conn.detach().close().await;
        }
        written
    }

    async fn can_reclaim(&self, cutoff: u64) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT 1",
        )
        .bind(db_ms(cutoff))
        .fetch_optional(&self.pool)
        .await?;
        // Pages freed by earlier deletes: reused by the writes once the
        // write-ahead log has room to hold them until a checkpoint.
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&self.pool)
            .await?;
        Ok(found.is_some() || free > 0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_JOBS} WHERE j.id = ?"))
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
             WHERE job_id = ? ORDER BY seq DESC LIMIT ?",
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
             WHERE job_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?",
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
             WHERE job_id = ? AND seq < ? AND kind = 0 ORDER BY seq DESC LIMIT ?",
        )
        .bind(&job)
        .bind(db_ms(before))
        .bind(db_count(limit))
        .fetch(&self.pool);
        // A page of lines is bounded like a page of events.
        let mut lines = read_within(rows, crate::model::MAX_PAGE_BYTES).await?;
        lines.reverse();
        Ok(lines)
    }

    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_JOBS} WHERE j.owner = ? ORDER BY j.created_at DESC, j.rowid DESC LIMIT ?"
        ))
        .bind(owner.to_string())
        .bind(db_count(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_JOBS} WHERE j.state IN ('queued', 'running') ORDER BY j.created_at, j.rowid"
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
        let mut conn = self.writer.acquire().await?;
        let purged = purge(&mut conn, cutoff, limit).await;
        if purged.is_err() && self.reserve.is_some() {
            // As after a failed write: the next transaction starts clean.
            let _ = conn.detach().close().await;
        }
        purged
    }

    fn release_reserve(&self) -> bool {
        self.reserve.as_ref().is_some_and(|r| r.release())
    }

    fn take_reserve(&self) {
        if let Some(reserve) = &self.reserve {
            reserve.take();
        }
    }
}
