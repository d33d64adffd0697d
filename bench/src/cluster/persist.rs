//! `cluster persist`: events persisted per second. A `bench` job says
//! `--events` messages as fast as it can (an emit waits only when the
//! node's write buffer is full, so over a long run it goes at the store's
//! pace). The clock starts at the first message's emit time and stops when
//! a separate connection to the database sees the last message stored
//! (its row in `events`, polled every 2 ms). On SQLite and PostgreSQL alike.
//!
//! Readers: one on the job's node from the start (it gets the messages
//! from memory: when they were said), and, with several nodes, one on
//! another node, which only sees what was stored (its node mirrors the job
//! from the events table after each batch the running node commits and
//! notifies): when the whole output was visible elsewhere.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{PgPool, SqlitePool};

use super::{ms_between, Nodes};
use crate::args::cluster::Persist;
use crate::client::Seen;
use crate::now_ns;

/// Longest the run waits for the database to hold every message.
const STORE_WAIT: Duration = Duration::from_secs(600);

/// How often the database is asked.
const POLL: Duration = Duration::from_millis(2);

/// A read-only connection to the nodes' database.
enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The line number of a job's newest stored event (messages up to it).
const LAST_LINE: &str = "SELECT line FROM events WHERE job_id = $1 ORDER BY seq DESC LIMIT 1";

impl Db {
    async fn open(url: &str) -> Result<Self, String> {
        let err = |e: sqlx::Error| format!("{url}: {e}");
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .map_err(err)?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            // Read-only: the server's file is only looked at.
            let ro = format!("{url}{}mode=ro", if url.contains('?') { '&' } else { '?' });
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(&ro)
                .await
                .map_err(err)?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(format!(
                "--db {url:?}: expected postgres://... or sqlite://PATH"
            ))
        }
    }

    async fn last_line(&self, job: &str) -> Result<u64, String> {
        let line = match self {
            Db::Postgres(pool) => {
                sqlx::query_scalar::<_, i64>(LAST_LINE)
                    .bind(job)
                    .fetch_optional(pool)
                    .await
            }
            Db::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>(LAST_LINE)
                    .bind(job)
                    .fetch_optional(pool)
                    .await
            }
        };
        Ok(line.map_err(|e| e.to_string())?.unwrap_or(0).max(0) as u64)
    }

    /// Unix time (ns) at which the database was first seen holding
    /// message `events` of `job`.
    async fn stored(&self, job: &str, events: u64) -> Result<u64, String> {
        let began = Instant::now();
        loop {
            if self.last_line(job).await? >= events {
                return Ok(now_ns());
            }
            if began.elapsed() > STORE_WAIT {
                return Err(format!("{events} messages not stored after {STORE_WAIT:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

pub async fn run(nodes: &Nodes, a: &Persist) -> Result<Value, String> {
    let db = Db::open(&a.db).await?;
    nodes.settle().await?;
    let job = nodes
        .start_bench(json!({
            "events": a.events, "size": a.size, "rate": 0, "readers": 1, "wait_ms": 60_000,
        }))
        .await?;
    let here = nodes.running().await?;
    // The reader elsewhere first: the job waits for the one on its node.
    let elsewhere = if nodes.len() > 1 {
        let conn = nodes
            .node((here + 1) % nodes.len())
            .subscribe(&job, 1)
            .await?;
        Some(tokio::spawn(conn.read_events(a.events)))
    } else {
        None
    };
    let conn = nodes.node(here).subscribe(&job, 0).await?;
    let local = tokio::spawn(conn.read_events(a.events));
    let stored_ns = db.stored(&job, a.events).await?;
    let local = local.await.map_err(|e| e.to_string())?;
    let elsewhere = match elsewhere {
        Some(r) => Some(r.await.map_err(|e| e.to_string())?),
        None => None,
    };
    let t0 = local.first_emit_ns;
    let per_s = |ms: f64| a.events as f64 / (ms / 1e3).max(1e-9);
    let (stored_ms, said_ms) = (
        ms_between(t0, stored_ns),
        ms_between(t0, local.last_receipt_ns),
    );
    let mut v = json!({
        "scenario": "cluster-persist", "events": a.events, "size": a.size,
        "job_node": here + 1,
        "stored_ms": stored_ms, "persisted_per_s": per_s(stored_ms),
        "said_ms": said_ms, "said_per_s": per_s(said_ms),
        "lost": local.lost, "duplicated": local.dup,
    });
    let mut incomplete = usize::from(!local.complete);
    if let Some(e) = &elsewhere {
        let m = v.as_object_mut().expect("an object");
        let elsewhere_ms = ms_between(t0, e.last_receipt_ns);
        m.insert("elsewhere_ms".into(), elsewhere_ms.into());
        m.insert("elsewhere_per_s".into(), per_s(elsewhere_ms).into());
        m.insert("lost".into(), (local.lost + e.lost).into());
        m.insert("duplicated".into(), (local.dup + e.dup).into());
        incomplete += usize::from(!e.complete);
        warn(e, a.events, "the reader on another node");
    }
    warn(&local, a.events, "the reader on the job's node");
    v["incomplete_readers"] = incomplete.into();
    Ok(v)
}

/// Says so when a reader did not get every message once (the figures
/// record it too).
fn warn(seen: &Seen, events: u64, who: &str) {
    if !seen.complete || seen.lost > 0 || seen.dup > 0 {
        eprintln!(
            "cluster persist: {who} got {} of {events} messages ({} lost, {} duplicated)",
            seen.received, seen.lost, seen.dup
        );
    }
}
