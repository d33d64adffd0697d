//! The cluster tests' harness: three nodes of the real binary on one
//! database, readers that follow a job's stream (reconnecting with
//! `Last-Event-ID`), and checks on what they got.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream_protocol::event;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{common, postgres};

/// Held by each test for its whole run.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The nodes' heartbeat period (`JOBSTREAM_HEARTBEAT_SECS`).
pub const HEARTBEAT_SECS: &str = "1";
/// How long a silent node lives on (`JOBSTREAM_NODE_TIMEOUT_SECS`): short,
/// so that a dead node is found within the test's patience.
pub const NODE_TIMEOUT_SECS: u64 = 3;
/// What a node logs (at `info`; a JSON line with the job's id) when it
/// claims a job from the shared queue.
pub const CLAIMED: &str = "job claimed";
/// The states a job ends in.
pub const TERMINAL: [&str; 4] = ["succeeded", "failed", "cancelled", "interrupted"];

/// Three nodes on a database of their own, and one session on all of them.
pub struct Cluster {
    pub nodes: Vec<common::Server>,
    /// Their database, for what a test does behind their backs.
    pub database: String,
    /// Each node's log (JSON lines at `info`), read by [`Cluster::claimed`]
    /// and shown when a test fails.
    pub logs: Vec<PathBuf>,
    /// One cookie jar: one session, whichever node it asks.
    pub client: reqwest::Client,
    /// Holds the logs; removed with the cluster.
    pub _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three nodes at once (their migrations and first heartbeats
    /// race, as in a deploy) with the settings above and `env` (which
    /// wins), and waits until each is ready.
    pub async fn start(env: &[(&str, &str)]) -> Cluster {
        let url = postgres::database().await;
        let dir = tempfile::tempdir().unwrap();
        let timeout = NODE_TIMEOUT_SECS.to_string();
        let mut all = vec![
            ("JOBSTREAM_DATABASE_URL", url.as_str()),
            ("JOBSTREAM_HEARTBEAT_SECS", HEARTBEAT_SECS),
            ("JOBSTREAM_NODE_TIMEOUT_SECS", timeout.as_str()),
            ("JOBSTREAM_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ];
        all.extend_from_slice(env);
        let logs: Vec<PathBuf> = (1..=3)
            .map(|n| dir.path().join(format!("node-{n}.log")))
            .collect();
        let nodes = futures_util::future::join_all(logs.iter().map(|log| {
            let file = std::fs::File::create(log).unwrap();
            common::start_logging_to(common::free_port(), dir.path(), &all, Stdio::from(file))
        }))
        .await;
        let cluster = Cluster {
            database: url.clone(),
            nodes,
            logs,
            client: common::session(),
            _dir: dir,
        };
        for node in 0..3 {
            cluster.until_ready(node).await;
        }
        cluster
    }

    /// `path` on `node` (0, 1, 2 for nodes 1, 2, 3).
    pub fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node].base)
    }

    /// The URL of `id`'s event stream on `node`.
    pub fn events_url(&self, node: usize, id: &str) -> String {
        self.url(node, &format!("/api/jobs/{id}/events"))
    }

    pub async fn until_ready(&self, node: usize) {
        let url = self.url(node, "/readyz");
        let started = Instant::now();
        loop {
            if let Ok(resp) = self.client.get(&url).send().await {
                if resp.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "node {} never ready",
                node + 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts an `echo` job through `node`; its id.
    pub async fn echo(&self, node: usize, params: Value) -> String {
        common::start_job(
            &self.client,
            &self.nodes[node].base,
            json!({"kind": "echo", "params": params}),
        )
        .await
    }

    /// The session's jobs as `node` lists them, by id (none while it
    /// answers with an error).
    pub async fn jobs(&self, node: usize) -> HashMap<String, Value> {
        let list = common::get_json(&self.client, &self.url(node, "/api/jobs?limit=500")).await;
        list["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|job| (job["id"].as_str().unwrap().to_owned(), job.clone()))
            .collect()
    }

    /// Waits (at most `within`) until every job of `ids` has ended, as
    /// `node` lists them; their states.
    pub async fn until_ended(
        &self,
        node: usize,
        ids: &[String],
        within: Duration,
    ) -> HashMap<String, String> {
        let started = Instant::now();
        loop {
            let jobs = self.jobs(node).await;
            let states: HashMap<String, String> = ids
                .iter()
                .map(|id| {
                    let state = jobs.get(id).and_then(|j| j["state"].as_str());
                    (id.clone(), state.unwrap_or("not listed").to_owned())
                })
                .collect();
            if states.values().all(|s| TERMINAL.contains(&s.as_str())) {
                return states;
            }
            assert!(
                started.elapsed() < within,
                "not ended within {within:?}: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A job's text output through `node`.
    pub async fn output(&self, node: usize, id: &str) -> String {
        let url = self.url(node, &format!("/api/jobs/{id}/output"));
        let resp = self.client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        resp.text().await.unwrap()
    }

    /// The one node of `among` with a busy worker, once exactly one has one
    /// (at most 10 s): the node that runs the only running job.
    pub async fn runner(&self, among: &[usize]) -> usize {
        let started = Instant::now();
        loop {
            let mut busy = Vec::new();
            for &node in among {
                let base = &self.nodes[node].base;
                let busy_here = metric(&self.client, base, "jobstream_workers_busy").await;
                if busy_here.unwrap_or(0.0) > 0.0 {
                    busy.push(node);
                }
            }
            if let [one] = busy.as_slice() {
                return *one;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "not one node runs the job: busy {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9` of `node`.
    pub fn kill(&mut self, node: usize) {
        let mut child = self.nodes[node].take_child();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The ids of the jobs each node's log says it claimed.
    /// The id `node` has in the cluster (from its "joined the cluster" line).
    pub fn node_id(&self, node: usize) -> String {
        std::fs::read_to_string(&self.logs[node])
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry["fields"]["message"] == "joined the cluster")
            .and_then(|entry| entry["fields"]["node"].as_str().map(str::to_owned))
            .expect("a node logs its id when it joins")
    }

    pub fn claimed(&self) -> Vec<Vec<String>> {
        self.logs
            .iter()
            .map(|log| {
                std::fs::read_to_string(log)
                    .unwrap()
                    .lines()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .filter(|entry| entry["fields"]["message"] == CLAIMED)
                    .map(|entry| {
                        let id = [
                            &entry["fields"]["job"],
                            &entry["fields"]["id"],
                            &entry["span"]["id"],
                        ]
                        .into_iter()
                        .find_map(Value::as_str);
                        id.unwrap_or_else(|| panic!("`{CLAIMED}` without the job's id: {entry}"))
                            .to_owned()
                    })
                    .collect()
            })
            .collect()
    }
}

impl Drop for Cluster {
    /// A failed test shows the end of each node's log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (n, log) in self.logs.iter().enumerate() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- node {}: the end of its log", n + 1);
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// A sample of a node's `/metrics`, by its key as the text writes it
/// (`name`, or `name{label="value"}`): 0 when the node has not written it
/// (a counter that counted nothing yet), `None` when the node does not
/// answer.
pub async fn metric(client: &reqwest::Client, base: &str, key: &str) -> Option<f64> {
    let resp = client.get(format!("{base}/metrics")).send().await.ok()?;
    let text = resp.text().await.ok()?;
    let value = text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        if name == key {
            value.parse().ok()
        } else {
            None
        }
    });
    Some(value.unwrap_or(0.0))
}

/// One event as a reader got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub id: u64,
    pub event: String,
    pub data: String,
}

impl From<eventsource_stream::Event> for Ev {
    fn from(e: eventsource_stream::Event) -> Ev {
        let id: u64 =
            e.id.parse()
                .unwrap_or_else(|_| panic!("an event without a numeric id: {e:?}"));
        Ev {
            id,
            event: e.event,
            data: e.data,
        }
    }
}

impl Ev {
    /// A job's message (not the sentinel).
    pub fn is_message(&self) -> bool {
        self.event == event::MESSAGE && self.data != event::CLOSE_SENTINEL
    }

    pub fn is_sentinel(&self) -> bool {
        self.event == event::MESSAGE && self.data == event::CLOSE_SENTINEL
    }
}

/// Whether a stream has ended: `end`, then the sentinel.
pub fn ended(events: &[Ev]) -> bool {
    matches!(events, [.., end, last] if end.event == event::END && last.is_sentinel())
}

/// The job's messages among `events`.
pub fn messages(events: &[Ev]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.is_message())
        .map(|e| e.data.clone())
        .collect()
}

/// Every event once, in order, none missing: ids 1, 2, 3, ...
pub fn assert_consecutive(events: &[Ev], who: &str) {
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let want: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(ids, want, "{who}: not every event once, in order");
}

/// The last two events: `end` with `state`, then the sentinel.
pub fn assert_ends(events: &[Ev], state: &str, who: &str) {
    assert!(ended(events), "{who}: no `end` then sentinel: {events:?}");
    let end = &events[events.len() - 2];
    let payload: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(payload["state"], state, "{who}: {end:?}");
}

/// One connection to a job's stream (`Last-Event-ID: after`), read until
/// the server closes it, or until it has given `stop_after` messages.
pub async fn read(
    client: &reqwest::Client,
    url: &str,
    after: Option<u64>,
    stop_after: Option<usize>,
) -> Vec<Ev> {
    let mut req = client.get(url);
    if let Some(after) = after {
        req = req.header("Last-Event-ID", after.to_string());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{url} from {after:?}");
    let mut stream = resp.bytes_stream().eventsource();
    let mut got = Vec::new();
    let reading = async {
        while let Some(e) = stream.next().await {
            got.push(Ev::from(e.expect("valid SSE")));
            let said = got.iter().filter(|e| e.is_message()).count();
            if stop_after.is_some_and(|n| said >= n) {
                break;
            }
        }
    };
    let read_in_time = tokio::time::timeout(Duration::from_secs(20), reading).await;
    assert!(read_in_time.is_ok(), "{url}: not closed within 20 s");
    got
}

/// What a reader got: each event with when it came.
pub type Got = Arc<Mutex<Vec<(Ev, Instant)>>>;

/// A reader of a job's stream through one node, run as a task.
pub struct Reader {
    pub node: usize,
    pub got: Got,
    /// How many connections it took.
    pub task: tokio::task::JoinHandle<usize>,
}

impl Reader {
    /// Reads `id`'s stream through `node` from its start. With
    /// `reconnect`, a stream that closes (or breaks, or is refused) before
    /// its end is resumed through the same node with `Last-Event-ID`, as a
    /// browser does; without, the first connection must carry it all.
    pub fn spawn(cluster: &Cluster, node: usize, id: &str, reconnect: bool) -> Reader {
        let got = Got::default();
        let task = tokio::spawn(follow(
            cluster.client.clone(),
            cluster.events_url(node, id),
            got.clone(),
            reconnect,
        ));
        Reader { node, got, task }
    }

    pub fn messages(&self) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e.is_message())
            .count()
    }

    /// Waits (at most `within`) until it has `n` messages.
    pub async fn until_messages(&self, n: usize, within: Duration) {
        let started = Instant::now();
        while self.messages() < n {
            assert!(
                started.elapsed() < within,
                "node {}: {} of {n} messages after {within:?}",
                self.node + 1,
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most `within`) for the end of its stream: the events, each
    /// with when it came, and how many connections it took.
    pub async fn finish(self, within: Duration) -> (Vec<(Ev, Instant)>, usize) {
        let connections = match tokio::time::timeout(within, self.task).await {
            Ok(done) => done.expect("the reader panicked"),
            Err(_) => {
                let got = self.got.lock().unwrap().clone();
                panic!(
                    "node {}: no end within {within:?}; got {:?}",
                    self.node + 1,
                    events(&got)
                )
            }
        };
        let got = self.got.lock().unwrap().clone();
        (got, connections)
    }
}

/// The events alone.
pub fn events(got: &[(Ev, Instant)]) -> Vec<Ev> {
    got.iter().map(|(e, _)| e.clone()).collect()
}

/// When the `end` event came.
pub fn end_time(got: &[(Ev, Instant)]) -> Instant {
    got.iter()
        .find(|(e, _)| e.event == event::END)
        .map(|(_, at)| *at)
        .expect("an end event")
}

/// [`Reader`]'s task: reads `url` into `got` until `end` and the sentinel;
/// the number of connections it took.
pub async fn follow(client: reqwest::Client, url: String, got: Got, reconnect: bool) -> usize {
    let started = Instant::now();
    let mut connections = 0;
    let mut refused = Vec::new();
    loop {
        let after = got.lock().unwrap().last().map(|(e, _)| e.id);
        let mut req = client.get(&url);
        if let Some(after) = after {
            req = req.header("Last-Event-ID", after.to_string());
        }
        match req.send().await {
            Ok(resp) if resp.status() == StatusCode::OK => {
                connections += 1;
                let mut stream = resp.bytes_stream().eventsource();
                // A broken connection ends this read as a closed one does.
                while let Some(Ok(e)) = stream.next().await {
                    let e = Ev::from(e);
                    got.lock().unwrap().push((e, Instant::now()));
                }
            }
            Ok(resp) => refused.push(resp.status().as_u16()),
            Err(_) => refused.push(0),
        }
        let so_far = events(&got.lock().unwrap());
        if ended(&so_far) {
            return connections;
        }
        assert!(
            reconnect,
            "{url}: the stream closed before its end (refused: {refused:?}): {so_far:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{url}: no end after 90 s of reconnecting (refused: {refused:?}): {so_far:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The session's job list stream (`/api/events`) through `node`, read by a
/// task: every `job` summary it sends. Connected when this returns.
pub async fn job_list(
    cluster: &Cluster,
    node: usize,
) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let resp = cluster
        .client
        .get(cluster.url(node, "/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let into = got.clone();
    let task = tokio::spawn(async move {
        let mut stream = resp.bytes_stream().eventsource();
        while let Some(Ok(e)) = stream.next().await {
            if e.event == event::JOB {
                let summary: Value = serde_json::from_str(&e.data).unwrap();
                into.lock().unwrap().push(summary);
            }
        }
    });
    (got, task)
}
