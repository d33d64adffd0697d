//! What several nodes on one database share (PostgreSQL only): the queue,
//! the nodes' heartbeats, cancel requests and wake-ups.
//!
//! A job is *held* by the node that claimed it (`jobs.node`): from the
//! shared queue, oldest first, with `FOR UPDATE SKIP LOCKED`, or to cancel
//! it while queued. Only its holder writes its events and state: the
//! store drops a write for a job the node does not hold (fencing: a node
//! that was declared dead and comes back cannot write to a job taken from
//! it) and reports the job as fenced. A node whose heartbeat is older than
//! the timeout is dead; any live node rescues its jobs: running ones end
//! `interrupted` with their terminal events, claimed queued ones go back
//! to the queue.
//!
//! Each batch the writer commits notifies the other nodes once, after the
//! commit, with the jobs it touched (and their owners, for live job lists
//! elsewhere); a queued job wakes idle nodes; a cancel request wakes the
//! job's holder. Notifications can be missed (a connection lost): nodes
//! also poll, bounded (see the engine's `cluster.rs`).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{JobRecord, StoreError};
use crate::id::{JobId, SessionId};

/// A wake-up from another node (or this one's writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A job was queued (or put back in the queue).
    Queued,
    /// These jobs (with their owners) have new events or changed.
    Changed(Vec<(JobId, SessionId)>),
    /// Too many jobs changed to name: every mirror should look.
    ChangedMany,
    /// Someone asked to cancel this job.
    Cancel(JobId),
    /// The connection notices come on was lost (some may be missed) and is
    /// back: look at everything.
    Reconnected,
}

/// A job this node has just claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its record (`last_seq` filled in).
    pub record: JobRecord,
    /// Cancelled while it waited: it ends `cancelled` without running.
    pub cancel_requested: bool,
    /// Claimed before, by a node that died before it was seen running:
    /// that node may have shown its readers ids the store never got.
    pub again: bool,
}

/// The texts of a rescued job's terminal events.
#[derive(Debug, Clone)]
pub struct Rescue {
    /// This node's id (never rescued by itself).
    pub me: String,
    /// A node not seen for this long is dead.
    pub timeout: Duration,
    /// The error its running jobs end with.
    pub error: String,
    /// The `end` event's data.
    pub end: String,
    /// The close sentinel.
    pub close: String,
    /// How far ids jump before the terminal events (past anything the dead
    /// node may have shown its own readers without storing).
    pub gap: u64,
}

/// What a rescue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescued {
    /// Nodes declared dead.
    pub nodes: Vec<String>,
    /// Running jobs ended: `interrupted`, or as they had said (their end
    /// was stored, their state not).
    pub ended: Vec<JobId>,
    /// Claimed queued jobs put back in the queue.
    pub requeued: usize,
}

/// The shared part of a store several nodes use at once.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Registers node `node`, alive now. From then on the store's writes
    /// are fenced for it (see the module docs); fenced jobs go to `fenced`.
    async fn join(&self, node: &str, fenced: mpsc::Sender<JobId>) -> Result<(), StoreError>;

    /// Records that `node` is alive. False when it was declared dead (its
    /// row is gone): it must join again under a new id.
    async fn beat(&self, node: &str) -> Result<bool, StoreError>;

    /// Removes `node` (a clean stop: its jobs have ended or stay queued).
    async fn leave(&self, node: &str) -> Result<(), StoreError>;

    /// Declares dead the nodes not seen for `rescue.timeout` and takes back
    /// their jobs (and any running job no live node holds).
    async fn rescue(&self, rescue: &Rescue) -> Result<Rescued, StoreError>;

    /// Claims the oldest queued job of one of `kinds` that no node holds,
    /// for `node` (if it is alive).
    async fn claim(&self, node: &str, kinds: &[String]) -> Result<Option<Claimed>, StoreError>;

    /// Claims the queued job `job` for `node` if no node holds it (to
    /// cancel it). `None`: another node holds it, or it is not queued.
    async fn claim_queued(&self, node: &str, job: JobId) -> Result<Option<Claimed>, StoreError>;

    /// Asks the holder of `job` to cancel it. False if it has ended.
    async fn request_cancel(&self, job: JobId) -> Result<bool, StoreError>;

    /// Jobs `node` holds that someone asked to cancel (for a missed notice).
    async fn cancel_requests(&self, node: &str) -> Result<Vec<JobId>, StoreError>;

    /// Jobs queued in the whole cluster.
    async fn queued(&self) -> Result<usize, StoreError>;

    /// Jobs of `owner` queued or running in the whole cluster.
    async fn unfinished_of(&self, owner: SessionId) -> Result<usize, StoreError>;

    /// The id of the last stored event of each of `jobs` that has any.
    async fn last_seqs(&self, jobs: &[JobId]) -> Result<Vec<(JobId, u64)>, StoreError>;

    /// Sends every notice to `to` until `to` is closed; reconnects (saying
    /// so with [`Notice::Reconnected`]) when the connection is lost.
    async fn listen(&self, to: mpsc::Sender<Notice>);
}
