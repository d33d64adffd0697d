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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

#[path = "../common/mod.rs"]
mod common;
mod harness;
#[path = "../../engine/tests/support/postgres.rs"]
mod postgres;

use harness::*;

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

    // One of the queued jobs, claimed by the node about to die (as if it
    // had taken it and died before starting it): it must run elsewhere.
    let db = sqlx::PgPool::connect(&cluster.database).await.unwrap();
    let taken = sqlx::query(
        "UPDATE jobs SET node = $1, claims = claims + 1 \
         WHERE id = $2 AND state = 'queued' AND node IS NULL",
    )
    .bind(cluster.node_id(dead))
    .bind(others.last().unwrap())
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1, "still queued when claimed");

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
