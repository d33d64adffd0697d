//! [`Cluster`] on PostgreSQL: the shared queue, heartbeats, rescue,
//! cancel requests and `LISTEN`/`NOTIFY` wake-ups (see `cluster.rs`).

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{Acquire, Row};
use tokio::sync::mpsc;

use super::cluster::{Claimed, Cluster, Notice, Rescue, Rescued};
use super::codec::{db_ms, parse};
use super::postgres::{record, Fence, PgStore};
use super::{StoreError, Write};
use crate::id::{JobId, SessionId};

/// The job a write is for.
pub(super) fn job_of(write: &Write) -> JobId {
    match write {
        Write::Insert(job) => job.id,
        Write::Event(job, _) | Write::State { job, .. } | Write::Progress { job, .. } => *job,
    }
}

/// Most jobs a notice names (each `id:owner`, 46 bytes): its payload stays
/// well under PostgreSQL's 8,000 bytes. A batch that touched more says
/// `*` (every node looks at all it mirrors).
const NOTICE_JOBS: usize = 120;

/// Of the jobs `writes` change (not those they insert), those `node` does
/// not hold: their writes are dropped. Their rows stay locked until the
/// commit, so a rescue cannot take them meanwhile.
pub(super) async fn not_held(
    conn: &mut PgConnection,
    writes: &[Write],
    node: &str,
) -> Result<HashSet<JobId>, StoreError> {
    let inserted: HashSet<JobId> = writes
        .iter()
        .filter(|w| matches!(w, Write::Insert(_)))
        .map(job_of)
        .collect();
    let mut changed: HashSet<JobId> = writes.iter().map(job_of).collect();
    changed.retain(|id| !inserted.contains(id));
    if changed.is_empty() {
        return Ok(changed);
    }
    // The node's row, shared-locked to the commit: a rescue (which
    // deletes it) waits for these writes, or these see the node gone and
    // write nothing for the jobs it held.
    let alive: Option<i32> = sqlx::query_scalar("SELECT 1 FROM nodes WHERE id = $1 FOR SHARE")
        .bind(node)
        .fetch_optional(&mut *conn)
        .await?;
    if alive.is_none() {
        return Ok(changed);
    }
    let ids: Vec<String> = changed.iter().map(ToString::to_string).collect();
    let held: Vec<String> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE id = ANY($1) AND node = $2 FOR UPDATE")
            .bind(&ids)
            .bind(node)
            .fetch_all(&mut *conn)
            .await?;
    for id in held {
        changed.remove(&parse("job id", &id)?);
    }
    Ok(changed)
}

/// Tells the other nodes, on commit, that `jobs` changed: one notice
/// naming them with their owners, or `*` when they are too many to name.
async fn notify_changed(conn: &mut PgConnection, jobs: &[JobId]) -> Result<(), StoreError> {
    if jobs.len() > NOTICE_JOBS {
        sqlx::query("SELECT pg_notify('jobstream_jobs', '*')")
            .execute(&mut *conn)
            .await?;
    } else if !jobs.is_empty() {
        let ids: Vec<String> = jobs.iter().map(ToString::to_string).collect();
        sqlx::query(
            "SELECT pg_notify('jobstream_jobs', string_agg(id || ':' || owner, ',')) \
             FROM jobs WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Tells the other nodes, on commit, which jobs `writes` touched, and wakes
/// idle ones when a job was queued.
pub(super) async fn notify(conn: &mut PgConnection, writes: &[Write]) -> Result<(), StoreError> {
    let touched: Vec<JobId> = writes
        .iter()
        .map(job_of)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    notify_changed(conn, &touched).await?;
    if writes.iter().any(|w| matches!(w, Write::Insert(_))) {
        sqlx::query("SELECT pg_notify('jobstream_queue', '')")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether running job `id` had in fact ended: its node stored its end
/// and sentinel but died before its state (they can fall in two batches).
/// Its state is then taken from that end, and nothing is appended.
async fn ended_before(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    let last: Vec<(i16, Vec<u8>)> =
        sqlx::query_as("SELECT kind, text FROM events WHERE job_id = $1 ORDER BY seq DESC LIMIT 2")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    let end = match last.as_slice() {
        [(3, _), (2, end)] => serde_json::from_slice::<jobstream_protocol::End>(end).ok(),
        _ => None,
    };
    let Some(end) = end else { return Ok(false) };
    sqlx::query(&format!(
        "UPDATE jobs SET state = $2, error = $3, finished_at = {NOW_MS}, node = NULL WHERE id = $1"
    ))
    .bind(id)
    .bind(end.state.as_str())
    .bind(end.error)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// The database's clock in Unix milliseconds: every node's heartbeat is
/// timed by the same clock.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// What a claim returns: the job's record (as `SELECT_JOBS` reads it),
/// whether a cancel was asked for, and how often it was claimed.
const CLAIMED: &str = "RETURNING id, owner, kind, params, display_name, locale, state, error, \
     progress, progress_label, created_at, started_at, finished_at, cancel_requested, claims, \
     (SELECT max(seq) FROM events e WHERE e.job_id = jobs.id) AS last_seq";

/// The claim a row returned by a `CLAIMED` statement is.
fn claimed(row: Option<sqlx::postgres::PgRow>) -> Result<Option<Claimed>, StoreError> {
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Claimed {
        record: record(&row)?,
        cancel_requested: row.try_get("cancel_requested")?,
        again: row.try_get::<i32, _>("claims")? > 1,
    }))
}

/// `id:owner,id:owner` or `*`, as `notify` in `postgres.rs` sends it.
fn changed(payload: &str) -> Notice {
    if payload == "*" {
        return Notice::ChangedMany;
    }
    let jobs = payload
        .split(',')
        .filter_map(|pair| {
            let (job, owner) = pair.split_once(':')?;
            Some((job.parse::<JobId>().ok()?, owner.parse::<SessionId>().ok()?))
        })
        .collect();
    Notice::Changed(jobs)
}

#[async_trait]
impl Cluster for PgStore {
    async fn join(&self, node: &str, fenced: mpsc::Sender<JobId>) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO nodes (id, started_at, seen_at) VALUES ($1, {NOW_MS}, {NOW_MS})"
        ))
        .bind(node)
        .execute(&self.pool)
        .await?;
        *crate::engine::lock(&self.fence) = Some(Fence {
            node: node.to_owned(),
            fenced,
        });
        Ok(())
    }

    async fn beat(&self, node: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE nodes SET seen_at = {NOW_MS} WHERE id = $1"
        ))
        .bind(node)
        // On a connection of its own: readers busy on the pool's never
        // hold up the heartbeat.
        .execute(&self.beats)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rescue(&self, r: &Rescue) -> Result<Rescued, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // A rescue never waits long on a lock (a stalled node's writer may
        // hold some): it gives up and tries again at the next heartbeat.
        sqlx::query("SET LOCAL lock_timeout = '1s'")
            .execute(&mut *tx)
            .await?;
        let timeout = i64::try_from(r.timeout.as_millis()).unwrap_or(i64::MAX);
        // Locked, skipping those another node is rescuing now.
        let nodes: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM nodes WHERE id IN (SELECT id FROM nodes \
             WHERE seen_at < {NOW_MS} - $1 AND id <> $2 FOR UPDATE SKIP LOCKED) RETURNING id"
        ))
        .bind(timeout)
        .bind(&r.me)
        .fetch_all(&mut *tx)
        .await?;
        // Running jobs no live node holds: the dead ones', and any left by
        // a process that ran alone on this database before.
        let orphans = sqlx::query(
            "SELECT id, owner FROM jobs j WHERE state = 'running' AND (node IS NULL \
             OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node)) \
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut ended = Vec::with_capacity(orphans.len());
        for row in &orphans {
            let id: String = row.try_get("id")?;
            if ended_before(&mut tx, &id).await? {
                ended.push(parse("job id", &id)?);
                continue;
            }
            let (seq, line): (i64, i64) = sqlx::query_as(
                "SELECT coalesce(max(seq), 0), coalesce(max(line), 0) FROM events WHERE job_id = $1",
            )
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            let first = seq.saturating_add(db_ms(r.gap)).saturating_add(1);
            sqlx::query(
                "INSERT INTO events (job_id, seq, kind, text, line) \
                 VALUES ($1, $2, 2, $3, $5), ($1, $2 + 1, 3, $4, $5)",
            )
            .bind(&id)
            .bind(first)
            .bind(r.end.as_bytes())
            .bind(r.close.as_bytes())
            .bind(line)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE jobs SET state = 'interrupted', error = $2, finished_at = {NOW_MS}, \
                 node = NULL WHERE id = $1"
            ))
            .bind(&id)
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            ended.push(parse("job id", &id)?);
        }
        notify_changed(&mut tx, &ended).await?;
        // Queued jobs a dead node had claimed (and not started) go back.
        let requeued = sqlx::query(
            "UPDATE jobs SET node = NULL WHERE id IN (SELECT id FROM jobs j \
             WHERE state = 'queued' AND node IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node) \
             FOR UPDATE SKIP LOCKED)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if requeued > 0 {
            sqlx::query("SELECT pg_notify('jobstream_queue', '')")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Rescued {
            nodes,
            ended,
            requeued: usize::try_from(requeued).unwrap_or(usize::MAX),
        })
    }

    async fn claim(&self, node: &str, kinds: &[String]) -> Result<Option<Claimed>, StoreError> {
        // One statement: the claim and what the node needs to run the job
        // commit together, or not at all. Only by a node that is alive
        // (one declared dead must join again first), only of kinds it
        // knows (nodes of an older version leave newer kinds to others).
        let row = sqlx::query(&format!(
            "UPDATE jobs SET node = $1, claims = claims + 1 WHERE id = (SELECT id FROM jobs \
             WHERE state = 'queued' AND node IS NULL AND kind = ANY($2) \
             AND EXISTS (SELECT 1 FROM nodes WHERE id = $1) \
             ORDER BY created_at, n LIMIT 1 FOR UPDATE SKIP LOCKED) {CLAIMED}"
        ))
        .bind(node)
        .bind(kinds)
        .fetch_optional(&self.pool)
        .await?;
        claimed(row)
    }

    async fn claim_queued(&self, node: &str, job: JobId) -> Result<Option<Claimed>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET node = $1, claims = claims + 1 WHERE id = $2 AND state = 'queued' \
             AND node IS NULL AND EXISTS (SELECT 1 FROM nodes WHERE id = $1) {CLAIMED}"
        ))
        .bind(node)
        .bind(job.to_string())
        .fetch_optional(&self.pool)
        .await?;
        claimed(row)
    }

    async fn request_cancel(&self, job: JobId) -> Result<bool, StoreError> {
        let id = job.to_string();
        let asked = sqlx::query(
            "UPDATE jobs SET cancel_requested = true \
             WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .bind(&id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if asked == 0 {
            return Ok(false);
        }
        // After the commit above: the holder that wakes finds the request.
        sqlx::query("SELECT pg_notify('jobstream_cancel', $1)")
            .bind(&id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn cancel_requests(&self, node: &str) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE node = $1 AND cancel_requested \
             AND state IN ('queued', 'running')",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        ids.iter().map(|id| parse("job id", id)).collect()
    }

    async fn queued(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn unfinished_of(&self, owner: SessionId) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE owner = $1 AND state IN ('queued', 'running')",
        )
        .bind(owner.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn last_seqs(&self, jobs: &[JobId]) -> Result<Vec<(JobId, u64)>, StoreError> {
        let ids: Vec<String> = jobs.iter().map(ToString::to_string).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT job_id, max(seq) FROM events WHERE job_id = ANY($1) GROUP BY job_id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, seq)| Ok((parse("job id", &id)?, u64::try_from(seq).unwrap_or(0))))
            .collect()
    }

    async fn listen(&self, to: mpsc::Sender<Notice>) {
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let listening = async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener
                    .listen_all(["jobstream_queue", "jobstream_jobs", "jobstream_cancel"])
                    .await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listening.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' notices; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                    continue;
                }
            };
            pause = std::time::Duration::from_millis(100);
            // Anything may have been missed while not listening.
            if to.send(Notice::Reconnected).await.is_err() {
                return;
            }
            loop {
                let notice = match listener.try_recv().await {
                    Ok(Some(n)) => match n.channel() {
                        "jobstream_queue" => Notice::Queued,
                        "jobstream_cancel" => match n.payload().parse() {
                            Ok(id) => Notice::Cancel(id),
                            Err(_) => continue,
                        },
                        _ => changed(n.payload()),
                    },
                    // The connection was lost: listen again.
                    Ok(None) | Err(_) => break,
                };
                if to.send(notice).await.is_err() {
                    return;
                }
            }
        }
    }
}
