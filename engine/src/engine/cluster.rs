//! Several nodes on one PostgreSQL database (see `store/cluster.rs` for
//! what the store shares).
//!
//! A node's workers claim jobs from the shared queue, oldest first; a job
//! queued anywhere wakes idle nodes through a notice, and each worker also
//! looks every [`ClusterConfig::poll`] for one it missed. A job that runs
//! here has a log that persists its changes, as on one node. Any other job
//! this node is asked about (a page, a stream, a job list) is a *mirror*:
//! its log is fed from the events table after each batch the running
//! node's writer commits and notices, so its readers here get every event
//! once, in order, from memory. Mirrors are also polled every
//! [`ClusterConfig::poll`] (a notice can be missed).
//!
//! Every node records a heartbeat and rescues dead nodes' jobs; one that
//! finds itself declared dead (its heartbeat row gone) stops the jobs it
//! ran (their ends were written by its rescuer) and joins again under a
//! new id; its writes for them are dropped by the store meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobstream_protocol::End;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::{lock, Engine, Job};
use crate::id::JobId;
use crate::model::JobState;
use crate::store::{Cluster, Notice, Rescue, StoreError, RESTART_SEQ_GAP};

/// How a node takes part in a cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterConfig {
    /// How often the node records that it is alive.
    pub heartbeat: Duration,
    /// A node not seen for this long is dead: its jobs are taken back.
    pub node_timeout: Duration,
    /// How often idle workers look for queued jobs and mirrors for new
    /// events, in case a notice was missed.
    pub poll: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            heartbeat: Duration::from_secs(2),
            node_timeout: Duration::from_secs(10),
            poll: Duration::from_secs(2),
        }
    }
}

/// The end message of a job whose node stopped answering.
pub const NODE_LOST: &str = "the node running this job stopped answering";

/// The end message of a job this node was declared dead while running.
pub(super) const FENCED: &str = "this node lost its claim on the job (it was declared dead)";

/// A node's part in the cluster.
pub(super) struct Node {
    pub(super) config: ClusterConfig,
    /// Its id in the `nodes` table (a new one after being declared dead).
    id: Mutex<String>,
    /// Jobs here that run elsewhere or wait in the shared queue.
    pub(super) mirrors: Mutex<HashMap<JobId, Arc<Job>>>,
    /// Mirrors (or jobs a live list here may want) with news to read.
    pub(super) dirty: Mutex<HashSet<JobId>>,
    pub(super) news: Notify,
    /// Jobs queued in the whole cluster, at the last count.
    queued: AtomicUsize,
    /// Whether the last heartbeat was recorded (`/readyz`).
    heard: std::sync::atomic::AtomicBool,
    /// Stops the node's own tasks, once it has left.
    pub(super) stop: CancellationToken,
}

impl Node {
    pub(super) fn new(config: ClusterConfig) -> Self {
        Node {
            config,
            id: Mutex::new(new_id()),
            mirrors: Mutex::default(),
            dirty: Mutex::default(),
            news: Notify::new(),
            queued: AtomicUsize::new(0),
            heard: std::sync::atomic::AtomicBool::new(true),
            stop: CancellationToken::new(),
        }
    }

    /// Whether this node's last heartbeat was recorded.
    pub(super) fn is_heard(&self) -> bool {
        self.heard.load(Ordering::Relaxed)
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(super) fn id(&self) -> String {
        lock(&self.id).clone()
    }

    pub(super) fn mark(&self, jobs: impl IntoIterator<Item = JobId>) {
        lock(&self.dirty).extend(jobs);
        self.news.notify_one();
    }
}

/// A node id: short, random, and unique enough.
fn new_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let rand = JobId::random().to_string();
    let short = &rand[..10];
    if host.is_empty() {
        short.to_owned()
    } else {
        format!("{host}-{short}")
    }
}

impl Engine {
    pub(super) fn cluster(&self) -> Option<(&Node, &dyn Cluster)> {
        self.inner.node.as_ref().zip(self.inner.store.as_cluster())
    }

    /// This node's id in the cluster, if it is part of one.
    pub fn node_id(&self) -> Option<String> {
        self.inner.node.as_ref().map(Node::id)
    }

    /// Joins the cluster.
    pub(super) async fn join(&self) -> Result<(), StoreError> {
        let Some((node, cluster)) = self.cluster() else {
            return Err(StoreError(
                "several nodes need a PostgreSQL store (JOBSTREAM_DATABASE_URL=postgres://...)"
                    .into(),
            ));
        };
        let (fenced, rx) = mpsc::channel(1024);
        cluster.join(&node.id(), fenced).await?;
        tracing::info!(node = %node.id(), "joined the cluster");
        self.spawn_fenced(rx);
        // Dead nodes' jobs are taken back once this node has been heard
        // for a whole timeout (see `heartbeat`).
        Ok(())
    }

    /// Starts the node's heartbeat, its listener and its mirrors' reader.
    pub(super) fn spawn_cluster(&self) {
        let Some((node, _)) = self.cluster() else {
            return;
        };
        let (tx, rx) = mpsc::channel(1024);
        let stop = node.stop.clone();
        let engine = self.clone();
        tokio::spawn(async move {
            if let Some((_, cluster)) = engine.cluster() {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = cluster.listen(tx) => {}
                }
            }
        });
        let engine = self.clone();
        tokio::spawn(async move { engine.on_notices(rx).await });
        let engine = self.clone();
        tokio::spawn(async move { engine.heartbeat().await });
        let engine = self.clone();
        tokio::spawn(async move { engine.read_mirrors().await });
    }

    /// Leaves the cluster (a clean stop) and stops the node's tasks.
    pub(super) async fn leave(&self) {
        if let Some((node, cluster)) = self.cluster() {
            // Stopped first: a heartbeat after the row is gone would take
            // this node for declared dead and join again.
            node.stop.cancel();
            if let Err(e) = cluster.leave(&node.id()).await {
                tracing::warn!(error = %e, "could not leave the cluster; other nodes will time it out");
            }
        }
    }

    async fn rescue(&self) -> Result<(), StoreError> {
        let Some((node, cluster)) = self.cluster() else {
            return Ok(());
        };
        let end = End {
            state: JobState::Interrupted,
            error: Some(NODE_LOST.to_owned()),
        };
        let rescued = cluster
            .rescue(&Rescue {
                me: node.id(),
                timeout: node.config.node_timeout,
                error: NODE_LOST.to_owned(),
                end: serde_json::to_string(&end).expect("an end serialises"),
                close: crate::sse::CLOSE_SENTINEL.to_owned(),
                gap: RESTART_SEQ_GAP,
            })
            .await?;
        if !rescued.nodes.is_empty() || !rescued.ended.is_empty() || rescued.requeued > 0 {
            tracing::warn!(
                nodes = ?rescued.nodes,
                ended = rescued.ended.len(),
                requeued = rescued.requeued,
                "took back the jobs of nodes that stopped answering"
            );
            node.mark(rescued.ended);
        }
        Ok(())
    }

    /// Every heartbeat: records that this node lives, rescues dead ones,
    /// counts the shared queue, and looks for cancel requests it missed.
    async fn heartbeat(&self) {
        let Some((node, cluster)) = self.cluster() else {
            return;
        };
        let mut tick = tokio::time::interval(node.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        // Since when every heartbeat succeeded, each within a period of
        // the last. Only a node heard without a break for a whole timeout
        // judges others: after an outage of the database (or a pause of
        // this process) every node's heartbeat is old, and the first one
        // back must not take the others for dead.
        let mut heard_since = tokio::time::Instant::now();
        let mut last_heard = heard_since;
        loop {
            tokio::select! {
                () = node.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let beat = async {
                if !cluster.beat(&node.id()).await? {
                    self.declared_dead().await?;
                    return Ok(false);
                }
                Ok::<_, StoreError>(true)
            };
            let beat = match tokio::time::timeout(node.config.heartbeat, beat).await {
                Ok(beat) => beat,
                Err(_) => Err(StoreError(
                    "the heartbeat took longer than its period".into(),
                )),
            };
            let now = tokio::time::Instant::now();
            if !matches!(beat, Ok(true)) || now - last_heard > 2 * node.config.heartbeat {
                heard_since = now;
            }
            if beat.is_ok() {
                last_heard = now;
            }
            node.heard.store(beat.is_ok(), Ordering::Relaxed);
            let beat = match beat {
                Ok(_) => {
                    self.after_beat(heard_since.elapsed() >= node.config.node_timeout)
                        .await
                }
                Err(e) => Err(e),
            };
            match beat {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the cluster's heartbeat is back");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "cannot record this node's heartbeat");
                }
                Err(_) => {}
            }
        }
    }

    /// What a node does on each heartbeat once it is heard: rescues dead
    /// nodes (if it may judge them), counts the shared queue, and looks
    /// for cancel requests a lost notice did not bring.
    async fn after_beat(&self, may_judge: bool) -> Result<(), StoreError> {
        let Some((node, cluster)) = self.cluster() else {
            return Ok(());
        };
        if may_judge {
            self.rescue().await?;
        }
        node.queued
            .store(cluster.queued().await?, Ordering::Relaxed);
        for id in cluster.cancel_requests(&node.id()).await? {
            self.cancel_here(id);
        }
        Ok(())
    }

    /// This node was declared dead (it did not answer in time): the jobs it
    /// runs were ended by another node. Stops them and joins again.
    async fn declared_dead(&self) -> Result<(), StoreError> {
        let Some((node, cluster)) = self.cluster() else {
            return Ok(());
        };
        if node.stop.is_cancelled() {
            return Ok(()); // it left the cluster (a clean stop)
        }
        let running: Vec<JobId> = lock(&self.inner.table)
            .jobs
            .values()
            .filter(|j| j.log.is_attached() && !j.log.is_closed())
            .map(|j| j.id)
            .collect();
        tracing::error!(node = %node.id(), jobs = running.len(), "this node was declared dead; its jobs were taken back; joining again");
        for id in running {
            self.fence(id);
        }
        let id = new_id();
        let (fenced, rx) = mpsc::channel(1024);
        cluster.join(&id, fenced).await?;
        *lock(&node.id) = id;
        self.spawn_fenced(rx);
        Ok(())
    }

    fn spawn_fenced(&self, mut rx: mpsc::Receiver<JobId>) {
        let engine = self.clone();
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                engine.fence(id);
            }
        });
    }

    /// Stops job `id` here: it was taken from this node, which may no
    /// longer write to it.
    fn fence(&self, id: JobId) {
        let job = lock(&self.inner.table).jobs.get(&id).cloned();
        if let Some(job) = job.filter(|j| !j.log.is_closed()) {
            tracing::warn!(job = %id, "{FENCED}");
            job.fenced.store(true, Ordering::SeqCst);
            job.cancel.cancel();
        }
    }

    /// A cancel request for job `id`: stopped if it runs here.
    fn cancel_here(&self, id: JobId) {
        let job = lock(&self.inner.table).jobs.get(&id).cloned();
        if let Some(job) = job.filter(|j| j.log.is_attached() && !j.log.is_closed()) {
            job.cancelled.store(true, Ordering::SeqCst);
            job.cancel.cancel();
        }
    }

    async fn on_notices(&self, mut rx: mpsc::Receiver<Notice>) {
        let Some((node, _)) = self.cluster() else {
            return;
        };
        while let Some(notice) = rx.recv().await {
            match notice {
                Notice::Queued => self.inner.queued.notify_one(),
                Notice::Cancel(id) => self.cancel_here(id),
                Notice::Changed(jobs) => {
                    let mirrors = lock(&node.mirrors);
                    let wanted: Vec<JobId> = jobs
                        .into_iter()
                        .filter(|(id, owner)| mirrors.contains_key(id) || self.is_watched(*owner))
                        .map(|(id, _)| id)
                        .collect();
                    drop(mirrors);
                    node.mark(wanted);
                }
                Notice::ChangedMany | Notice::Reconnected => {
                    let all: Vec<JobId> = lock(&node.mirrors).keys().copied().collect();
                    node.mark(all);
                    self.inner.queued.notify_one();
                    // Jobs new to this node that a live list here shows.
                    let engine = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.refresh_watched().await {
                            tracing::warn!(error = %e, "cannot look up the jobs of the lists open here");
                        }
                    });
                }
            }
        }
    }
}
