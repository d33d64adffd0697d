//! `cluster fanout`: one `bench` job says `--events` messages at `--rate`
//! per second to `--per-node` × nodes readers, twice: first with every
//! reader on the job's node (the baseline: one node's fan-out from memory),
//! then with `--per-node` readers on each node (the job's node serves its
//! share from memory, the others from their mirrors, fed from the events
//! table after each batch the job's node commits and notifies). The
//! latency of each event is from its emit time (in the payload, stamped on
//! the job's node; every node shares this machine's clock) to its receipt;
//! lost and duplicated events are counted per reader by sequence number.
//! The difference between the two layouts' latencies is what crossing
//! nodes adds. Each layout runs `--repeats` times, alternating, and the
//! run with the median p99 is reported.

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::Nodes;
use crate::args::cluster::Fanout;
use crate::client::Seen;
use crate::Tally;

pub async fn run(nodes: &Nodes, a: &Fanout) -> Result<Value, String> {
    let readers = a.per_node * nodes.len();
    let (mut one, mut split) = (Vec::new(), Vec::new());
    for _ in 0..a.repeats.max(1) {
        one.push(layout(nodes, a, false).await?);
        if nodes.len() > 1 {
            split.push(layout(nodes, a, true).await?);
        }
    }
    let mut v = json!({
        "scenario": "cluster-fanout", "readers": readers, "per_node": a.per_node,
        "events": a.events, "size": a.size, "rate": a.rate, "repeats": a.repeats.max(1),
        "one_node": median(one),
    });
    if !split.is_empty() {
        v["split"] = median(split);
    }
    Ok(v)
}

/// The run with the median p99 latency (all readers), with the p99 of
/// every run, and the lost, duplicated and incomplete of all runs summed.
fn median(mut runs: Vec<Value>) -> Value {
    let p99 = |v: &Value| v["p99_ms"].as_f64().unwrap_or(f64::NAN);
    let each: Vec<f64> = runs.iter().map(p99).collect();
    let sum = |key: &str| runs.iter().filter_map(|v| v[key].as_u64()).sum::<u64>();
    let (lost, dup, incomplete) = (
        sum("lost"),
        sum("duplicated"),
        sum("incomplete_subscribers"),
    );
    runs.sort_by(|a, b| p99(a).total_cmp(&p99(b)));
    let mut v = runs.swap_remove(runs.len() / 2);
    v["p99_each_ms"] = each.into();
    v["lost"] = lost.into();
    v["duplicated"] = dup.into();
    v["incomplete_subscribers"] = incomplete.into();
    v
}

/// One job and its readers: all on the job's node, or `split` over every
/// node. The figures of all readers, and of those on the job's node and
/// on the others apart.
async fn layout(nodes: &Nodes, a: &Fanout, split: bool) -> Result<Value, String> {
    let k = nodes.len();
    let here_n = if split { a.per_node } else { a.per_node * k };
    nodes.settle().await?;
    let job = nodes
        .start_bench(json!({
            "events": a.events, "size": a.size, "rate": a.rate,
            "readers": here_n, "wait_ms": 600_000,
        }))
        .await?;
    let here = nodes.running().await?;
    // The readers elsewhere first: the job starts once its node has its
    // share, and the others must not miss the start (they would catch up
    // from the store, and their first latencies would measure that).
    let mut elsewhere = Vec::new();
    if split {
        for i in (0..k).filter(|i| *i != here) {
            elsewhere.extend(spawn_readers(nodes, i, &job, a.per_node, a.events).await?);
        }
    }
    let local = spawn_readers(nodes, here, &job, here_n, a.events).await?;
    let (mut all, mut on_job_node, mut on_others) =
        (Tally::default(), Tally::default(), Tally::default());
    for (readers, part) in [(local, &mut on_job_node), (elsewhere, &mut on_others)] {
        for reader in readers {
            let seen: Seen = reader.await.map_err(|e| e.to_string())?;
            all.merge(seen.clone());
            part.merge(seen);
        }
    }
    let mut v = all.json(json!({"job_node": here + 1, "readers": a.per_node * k}));
    v["on_job_node"] = on_job_node.json(json!({"readers": here_n}));
    if split {
        v["on_other_nodes"] = on_others.json(json!({"readers": a.per_node * (k - 1)}));
    }
    Ok(v)
}

async fn spawn_readers(
    nodes: &Nodes,
    node: usize,
    job: &str,
    n: usize,
    events: u64,
) -> Result<Vec<JoinHandle<Seen>>, String> {
    let conns = nodes.readers(node, job, n).await?;
    Ok(conns
        .into_iter()
        .map(|c| tokio::spawn(c.read_events(events)))
        .collect())
}
