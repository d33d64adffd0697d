//! Three nodes of the real binary on one PostgreSQL database (the issue
//! "Several nodes on PostgreSQL", "How it is checked"): a job started
//! through one node streams alike through the others and resumes through
//! any of them; a cancel through a node that does not run the job ends it
//! for every reader; the shared queue runs jobs on every node, each within
//! its own worker bound; a node killed with `kill -9` has its running job
//! end `interrupted` for the readers on the other nodes while the queue
//! runs on; a database restarted under load loses nothing committed, and
//! the streams resume.
//!
//! One client (one cookie jar) talks to every node: the session cookie is a
//! random id, so it is one session across the cluster. The tests run one at
//! a time ([`ONE_AT_A_TIME`]): one of them restarts the PostgreSQL they
//! share, and they all time heartbeats, which three clusters at once on two
//! cores would blur.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream_protocol::event;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;
#[path = "../engine/tests/support/postgres.rs"]
mod postgres;

/// Held by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The nodes' heartbeat period (`JOBSTREAM_HEARTBEAT_SECS`).
const HEARTBEAT_SECS: &str = "1";
/// How long a silent node lives on (`JOBSTREAM_NODE_TIMEOUT_SECS`): short,
/// so that a dead node is found within the test's patience.
const NODE_TIMEOUT_SECS: u64 = 3;
/// What a node logs (at `info`; a JSON line with the job's id) when it
/// claims a job from the shared queue.
const CLAIMED: &str = "job claimed";
/// The states a job ends in.
const TERMINAL: [&str; 4] = ["succeeded", "failed", "cancelled", "interrupted"];

/// Three nodes on a database of their own, and one session on all of them.
struct Cluster {
    nodes: Vec<common::Server>,
    /// Each node's log (JSON lines at `info`), read by [`Cluster::claimed`]
    /// and shown when a test fails.
    logs: Vec<PathBuf>,
    /// One cookie jar: one session, whichever node it asks.
    client: reqwest::Client,
    /// Holds the logs; removed with the cluster.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts three nodes at once (their migrations and first heartbeats
    /// race, as in a deploy) with the settings above and `env` (which
    /// wins), and waits until each is ready.
    async fn start(env: &[(&str, &str)]) -> Cluster {
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
    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node].base)
    }

    /// The URL of `id`'s event stream on `node`.
    fn events_url(&self, node: usize, id: &str) -> String {
        self.url(node, &format!("/api/jobs/{id}/events"))
    }

    async fn until_ready(&self, node: usize) {
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
    async fn echo(&self, node: usize, params: Value) -> String {
        common::start_job(
            &self.client,
            &self.nodes[node].base,
            json!({"kind": "echo", "params": params}),
        )
        .await
    }

    /// The session's jobs as `node` lists them, by id (none while it
    /// answers with an error).
    async fn jobs(&self, node: usize) -> HashMap<String, Value> {
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
    async fn until_ended(
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
    async fn output(&self, node: usize, id: &str) -> String {
        let url = self.url(node, &format!("/api/jobs/{id}/output"));
        let resp = self.client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        resp.text().await.unwrap()
    }

    /// The one node of `among` with a busy worker, once exactly one has one
    /// (at most 10 s): the node that runs the only running job.
    async fn runner(&self, among: &[usize]) -> usize {
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
    fn kill(&mut self, node: usize) {
        let mut child = self.nodes[node].take_child();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The ids of the jobs each node's log says it claimed.
    fn claimed(&self) -> Vec<Vec<String>> {
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
async fn metric(client: &reqwest::Client, base: &str, key: &str) -> Option<f64> {
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
struct Ev {
    id: u64,
    event: String,
    data: String,
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
    fn is_message(&self) -> bool {
        self.event == event::MESSAGE && self.data != event::CLOSE_SENTINEL
    }

    fn is_sentinel(&self) -> bool {
        self.event == event::MESSAGE && self.data == event::CLOSE_SENTINEL
    }
}

/// Whether a stream has ended: `end`, then the sentinel.
fn ended(events: &[Ev]) -> bool {
    matches!(events, [.., end, last] if end.event == event::END && last.is_sentinel())
}

/// The job's messages among `events`.
fn messages(events: &[Ev]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.is_message())
        .map(|e| e.data.clone())
        .collect()
}

/// Every event once, in order, none missing: ids 1, 2, 3, ...
fn assert_consecutive(events: &[Ev], who: &str) {
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let want: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(ids, want, "{who}: not every event once, in order");
}

/// The last two events: `end` with `state`, then the sentinel.
fn assert_ends(events: &[Ev], state: &str, who: &str) {
    assert!(ended(events), "{who}: no `end` then sentinel: {events:?}");
    let end = &events[events.len() - 2];
    let payload: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(payload["state"], state, "{who}: {end:?}");
}

/// One connection to a job's stream (`Last-Event-ID: after`), read until
/// the server closes it, or until it has given `stop_after` messages.
async fn read(
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
type Got = Arc<Mutex<Vec<(Ev, Instant)>>>;

/// A reader of a job's stream through one node, run as a task.
struct Reader {
    node: usize,
    got: Got,
    /// How many connections it took.
    task: tokio::task::JoinHandle<usize>,
}

impl Reader {
    /// Reads `id`'s stream through `node` from its start. With
    /// `reconnect`, a stream that closes (or breaks, or is refused) before
    /// its end is resumed through the same node with `Last-Event-ID`, as a
    /// browser does; without, the first connection must carry it all.
    fn spawn(cluster: &Cluster, node: usize, id: &str, reconnect: bool) -> Reader {
        let got = Got::default();
        let task = tokio::spawn(follow(
            cluster.client.clone(),
            cluster.events_url(node, id),
            got.clone(),
            reconnect,
        ));
        Reader { node, got, task }
    }

    fn messages(&self) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e.is_message())
            .count()
    }

    /// Waits (at most `within`) until it has `n` messages.
    async fn until_messages(&self, n: usize, within: Duration) {
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
    async fn finish(self, within: Duration) -> (Vec<(Ev, Instant)>, usize) {
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
fn events(got: &[(Ev, Instant)]) -> Vec<Ev> {
    got.iter().map(|(e, _)| e.clone()).collect()
}

/// When the `end` event came.
fn end_time(got: &[(Ev, Instant)]) -> Instant {
    got.iter()
        .find(|(e, _)| e.event == event::END)
        .map(|(_, at)| *at)
        .expect("an end event")
}

/// [`Reader`]'s task: reads `url` into `got` until `end` and the sentinel;
/// the number of connections it took.
async fn follow(client: reqwest::Client, url: String, got: Got, reconnect: bool) -> usize {
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
async fn job_list(
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

#[tokio::test]
async fn a_job_streams_alike_through_every_node_and_resumes_through_any() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[]).await;
    // The session's cookie, from node 1; every request after it, on any
    // node, is that session.
    cluster.jobs(0).await;
    let (list, list_task) = job_list(&cluster, 2).await;

    let said: Vec<String> = (1..=12).map(|i| format!("line {i:02} ä")).collect();
    let id = cluster
        .echo(0, json!({"messages": said, "interval_ms": 150}))
        .await;
    // Through node 2 and node 3 at once. Whichever node runs the job, at
    // least one of them reads it from another node.
    let on2 = Reader::spawn(&cluster, 1, &id, false);
    let on3 = Reader::spawn(&cluster, 2, &id, false);
    // A third reader, through node 3, leaves after the fourth message and
    // comes back with the last id it got while the job still runs.
    let url = cluster.events_url(2, &id);
    let before = read(&cluster.client, &url, None, Some(4)).await;
    let after = read(&cluster.client, &url, Some(before.last().unwrap().id), None).await;

    let (on2, connections) = on2.finish(Duration::from_secs(20)).await;
    assert_eq!(connections, 1);
    let all = events(&on2);
    assert_consecutive(&all, "node 2");
    assert_ends(&all, "succeeded", "node 2");
    assert_eq!(messages(&all), said, "node 2");
    let (on3, _) = on3.finish(Duration::from_secs(20)).await;
    assert_eq!(events(&on3), all, "node 3 got other events than node 2");
    assert!(
        !messages(&after).is_empty(),
        "the job had ended before the reader came back"
    );
    let mut resumed = before;
    resumed.extend(after);
    assert_eq!(
        resumed, all,
        "a resume through node 3 repeated or missed events"
    );

    // After the end, from the middle: exactly what came after it.
    let half = all.len() / 2;
    let rest = read(&cluster.client, &url, Some(all[half - 1].id), None).await;
    assert_eq!(rest, all[half..].to_vec());
    // From the last one: nothing more, and a 204 that stops a browser's
    // reconnecting.
    let last = all.last().unwrap().id.to_string();
    let resp = cluster
        .client
        .get(&url)
        .header("Last-Event-ID", last)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // The session's job list on node 3 showed the job started on node 1
    // until it succeeded.
    let started = Instant::now();
    let states = loop {
        let states: Vec<String> = list
            .lock()
            .unwrap()
            .iter()
            .filter(|job| job["id"] == id.as_str())
            .map(|job| job["state"].as_str().unwrap().to_owned())
            .collect();
        if states.last().is_some_and(|s| s == "succeeded") {
            break states;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "node 3's job list: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let order = ["queued", "running", "succeeded"];
    let ranks: Vec<usize> = states
        .iter()
        .map(|s| {
            order
                .iter()
                .position(|o| *o == s.as_str())
                .expect("a known state")
        })
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "node 3's job list went back: {states:?}"
    );
    list_task.abort();
}

#[tokio::test]
async fn a_cancel_through_another_node_ends_the_job_for_every_reader() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[]).await;
    let id = cluster
        .echo(
            0,
            json!({"messages": ["tick"], "repeat": 600, "interval_ms": 100}),
        )
        .await;
    let runner = cluster.runner(&[0, 1, 2]).await;
    let readers: Vec<Reader> = (0..3)
        .map(|node| Reader::spawn(&cluster, node, &id, false))
        .collect();
    for reader in &readers {
        reader.until_messages(2, Duration::from_secs(10)).await;
    }

    // Through node 2, or node 3 when node 2 is the one running it.
    let through = if runner == 1 { 2 } else { 1 };
    let cancel = cluster.url(through, &format!("/api/jobs/{id}/cancel"));
    let resp = cluster.client.post(&cancel).send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "a running job's cancel"
    );
    let asked = Instant::now();

    let mut seen = Vec::new();
    for reader in readers {
        let who = format!("node {}", reader.node + 1);
        let (got, _) = reader.finish(Duration::from_secs(15)).await;
        let took = end_time(&got).duration_since(asked);
        assert!(
            took < Duration::from_secs(5),
            "{who}: end {took:?} after the cancel"
        );
        let got = events(&got);
        assert_consecutive(&got, &who);
        assert_ends(&got, "cancelled", &who);
        assert!(messages(&got).iter().all(|m| m == "tick"), "{who}");
        seen.push(got);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the nodes' readers got different events"
    );
    assert_eq!(cluster.jobs(0).await[&id]["state"], "cancelled");
    let again = cluster.client.post(&cancel).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "a cancel of an ended job"
    );
}

#[tokio::test]
async fn thirty_jobs_started_through_one_node_run_on_all_three_each_within_its_bound() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(&[("JOBSTREAM_WORKERS", "2")]).await;
    // Each node's busy workers, sampled every 20 ms while the jobs run;
    // the highest seen.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (client, sampling) = (cluster.client.clone(), sampling.clone());
        let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
        tokio::spawn(async move {
            let mut peaks = [0.0_f64; 3];
            while sampling.load(Ordering::SeqCst) {
                for (peak, base) in peaks.iter_mut().zip(&bases) {
                    let busy = metric(&client, base, "jobstream_workers_busy").await;
                    *peak = peak.max(busy.unwrap_or(0.0));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peaks
        })
    };

    let mut ids = Vec::new();
    for i in 0..30 {
        let params = json!({"messages": [format!("job {i}")], "repeat": 5, "interval_ms": 100});
        ids.push(cluster.echo(0, params).await);
    }
    let states = cluster.until_ended(1, &ids, Duration::from_secs(30)).await;
    sampling.store(false, Ordering::SeqCst);
    let peaks = sampler.await.unwrap();
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");

    let mut started = Vec::new();
    for node in &cluster.nodes {
        let key = "jobstream_jobs_started_total{kind=\"echo\"}";
        started.push(metric(&cluster.client, &node.base, key).await.unwrap());
    }
    assert!(
        started.iter().all(|&n| n >= 1.0),
        "not every node ran jobs: {started:?}"
    );
    assert_eq!(started.iter().sum::<f64>(), 30.0, "{started:?}");
    assert!(
        peaks.iter().all(|&p| p <= 2.0),
        "a node ran more than its 2 workers: {peaks:?}"
    );
    assert_eq!(
        peaks.iter().copied().fold(0.0, f64::max),
        2.0,
        "no node ever had both workers busy: the bound was not tested"
    );
    // Each job claimed once, by one node.
    let mut claims: HashMap<String, usize> = HashMap::new();
    for id in cluster.claimed().into_iter().flatten() {
        *claims.entry(id).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(claims.get(id), Some(&1), "claims of {id}: {claims:?}");
    }
    // Their output through node 3, whichever node ran them.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(cluster.output(2, id).await, format!("job {i}\n").repeat(5));
    }
}

#[tokio::test]
async fn a_killed_nodes_job_ends_interrupted_for_readers_elsewhere_and_the_queue_runs_on() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start(&[("JOBSTREAM_WORKERS", "1")]).await;
    let slow = cluster
        .echo(
            0,
            json!({"messages": ["slow"], "repeat": 300, "interval_ms": 100}),
        )
        .await;
    let dead = cluster.runner(&[0, 1, 2]).await;
    let alive: Vec<usize> = (0..3).filter(|&n| n != dead).collect();
    let readers: Vec<Reader> = alive
        .iter()
        .map(|&node| Reader::spawn(&cluster, node, &slow, true))
        .collect();
    for reader in &readers {
        reader.until_messages(2, Duration::from_secs(10)).await;
    }
    // Work for the other nodes' workers (3 s each), so that the short jobs
    // after them wait in the queue while the node dies.
    let mut others = Vec::new();
    for _ in 0..2 {
        let params = json!({"messages": ["medium"], "repeat": 30, "interval_ms": 100});
        others.push(cluster.echo(alive[0], params).await);
    }
    for i in 0..4 {
        let params = json!({"messages": [format!("short {i}")], "repeat": 2, "interval_ms": 50});
        others.push(cluster.echo(alive[1], params).await);
    }

    cluster.kill(dead);
    let killed = Instant::now();
    let mut seen = Vec::new();
    for reader in readers {
        let who = format!("node {}", reader.node + 1);
        let (got, _) = reader.finish(Duration::from_secs(30)).await;
        let took = end_time(&got).duration_since(killed);
        let within = Duration::from_secs(NODE_TIMEOUT_SECS + 5);
        assert!(
            took <= within,
            "{who}: `interrupted` {took:?} after the kill"
        );
        let got = events(&got);
        assert_ends(&got, "interrupted", &who);
        // What the dead node had written, once and in order; the end may
        // come with a higher id (what it had not written is lost).
        assert_consecutive(&got[..got.len() - 2], &who);
        assert!(got.windows(2).all(|w| w[0].id < w[1].id), "{who}: {got:?}");
        let said = messages(&got);
        assert!(
            !said.is_empty() && said.iter().all(|m| m == "slow"),
            "{who}"
        );
        seen.push(got);
    }
    assert_eq!(
        seen[0], seen[1],
        "the two nodes' readers got different events"
    );

    let states = cluster
        .until_ended(alive[0], &others, Duration::from_secs(30))
        .await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    assert_eq!(cluster.jobs(alive[1]).await[&slow]["state"], "interrupted");
}

#[tokio::test]
async fn a_database_restarted_under_load_loses_nothing_and_the_streams_resume() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The outage (about 4 s) is longer than the node timeout (3 s): every
    // node's heartbeat is old when the database is back, and none may take
    // the others for dead (a node judges others only once it has itself
    // been heard for a whole timeout).
    let cluster = Cluster::start(&[("JOBSTREAM_WORKERS", "2")]).await;
    let said: Vec<String> = (1..=60).map(|i| format!("event {i:02}")).collect();
    let long = cluster
        .echo(0, json!({"messages": said, "interval_ms": 80}))
        .await;
    let mut ids = vec![long.clone()];
    for i in 0..8 {
        let params = json!({"messages": [format!("other {i}")], "repeat": 10, "interval_ms": 100});
        ids.push(cluster.echo(1, params).await);
    }
    let readers: Vec<Reader> = (0..3)
        .map(|node| Reader::spawn(&cluster, node, &long, true))
        .collect();
    for reader in &readers {
        reader.until_messages(5, Duration::from_secs(10)).await;
    }

    // Blocking calls (they wait for the server), off the test's runtime.
    tokio::task::spawn_blocking(|| postgres::server().kill())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(NODE_TIMEOUT_SECS + 1)).await;
    tokio::task::spawn_blocking(|| postgres::server().restart())
        .await
        .unwrap();

    let mut seen = Vec::new();
    for reader in readers {
        let who = format!("node {}", reader.node + 1);
        let (got, _) = reader.finish(Duration::from_secs(60)).await;
        let got = events(&got);
        assert_consecutive(&got, &who);
        assert_ends(&got, "succeeded", &who);
        assert_eq!(messages(&got), said, "{who}");
        seen.push(got);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the nodes' readers got different events"
    );
    let states = cluster.until_ended(2, &ids, Duration::from_secs(60)).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    assert_eq!(cluster.output(2, &long).await, said.join("\n") + "\n");
    for (i, id) in ids[1..].iter().enumerate() {
        assert_eq!(
            cluster.output(2, id).await,
            format!("other {i}\n").repeat(10)
        );
    }
}
