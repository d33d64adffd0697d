//! The report of a `cluster` results file, as Markdown: PostgreSQL (the
//! cluster) against SQLite (one node) for `persist` and `start`, and the
//! readers split over the nodes against all on the job's node for
//! `fanout`. The latest run of each kind counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// `persist` and `start` rows: (scenario, key, label).
const STORE_ROWS: [(&str, &str, &str); 12] = [
    (
        "persist",
        "said_per_s",
        "messages said/s (received on the job's node)",
    ),
    (
        "persist",
        "persisted_per_s",
        "events persisted/s (until the database held the last)",
    ),
    ("persist", "stored_ms", "first emit to last stored (ms)"),
    (
        "persist",
        "elsewhere_per_s",
        "events/s seen by a reader on another node",
    ),
    (
        "persist",
        "elsewhere_ms",
        "first emit to last received on another node (ms)",
    ),
    (
        "start",
        "jobs_per_s",
        "jobs started/s (POST /api/jobs answered 201)",
    ),
    ("start", "p50_ms", "POST p50 (ms)"),
    ("start", "p99_ms", "POST p99 (ms)"),
    ("start", "refused_503", "refused (503)"),
    ("start", "all_ran_s", "first start to last job run (s)"),
    ("start", "ran_per_s", "jobs run/s"),
    ("start", "ran_per_node", "jobs run by each node"),
];

/// `fanout` rows: (part of the run, key, label).
const FANOUT_ROWS: [(&str, &str, &str); 10] = [
    ("", "events_per_s", "delivered events/s"),
    ("", "p50_ms", "p50 latency, all readers (ms)"),
    ("", "p99_ms", "p99 latency, all readers (ms)"),
    ("", "p99_each_ms", "p99 of each repeat (ms)"),
    ("", "max_ms", "max latency, all readers (ms)"),
    (
        "on_other_nodes",
        "p50_ms",
        "p50 latency, readers on other nodes (ms)",
    ),
    (
        "on_other_nodes",
        "p99_ms",
        "p99 latency, readers on other nodes (ms)",
    ),
    (
        "on_other_nodes",
        "max_ms",
        "max latency, readers on other nodes (ms)",
    ),
    (
        "on_job_node",
        "p50_ms",
        "p50 latency, readers on the job's node (ms)",
    ),
    (
        "on_job_node",
        "p99_ms",
        "p99 latency, readers on the job's node (ms)",
    ),
];

/// The report of `path`, or `None` if it holds no `cluster` run.
pub fn table(path: &Path) -> Result<Option<String>, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    // (scenario, store) and (readers, rate) → the latest run.
    let mut by_store: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut fanouts: BTreeMap<(u64, u64), Value> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("{file}: {e}"))?;
        let Some(s) = v["scenario"]
            .as_str()
            .and_then(|s| s.strip_prefix("cluster-"))
        else {
            continue;
        };
        if s == "fanout" {
            let key = (
                v["readers"].as_u64().unwrap_or(0),
                v["rate"].as_u64().unwrap_or(0),
            );
            fanouts.insert(key, v);
        } else {
            let store = v["store"].as_str().unwrap_or("?").to_owned();
            by_store.insert((s.to_owned(), store), v);
        }
    }
    if by_store.is_empty() && fanouts.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    if !by_store.is_empty() {
        stores(&mut out, &by_store);
    }
    if !fanouts.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        fanout(&mut out, &fanouts);
    }
    Ok(Some(out))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A figure as the table shows it: a list joined with " / ", a number
/// with two decimals (none if whole), nothing if missing.
fn show(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(" / "),
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Value::Number(n) => format!("{:.2}", n.as_f64().unwrap_or(f64::NAN)),
        _ => String::new(),
    }
}

fn lost_dup(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    format!("{} / {}", v["lost"], v["duplicated"])
}

fn stores(out: &mut String, runs: &BTreeMap<(String, String), Value>) {
    let nodes = runs
        .iter()
        .find(|((_, store), _)| store == "postgres")
        .and_then(|(_, v)| v["nodes"].as_u64())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "| run | metric | PostgreSQL, {nodes} nodes | SQLite, one node | PostgreSQL ÷ SQLite |\n|---|---|---:|---:|---:|"
    );
    let get = |s: &str, store: &str| runs.get(&(s.to_owned(), store.to_owned()));
    for scenario in ["persist", "start"] {
        let (pg, lite) = (get(scenario, "postgres"), get(scenario, "sqlite"));
        let Some(any) = pg.or(lite) else {
            continue;
        };
        let run = match scenario {
            "persist" => format!("persist, {} messages", show(&any["events"])),
            _ => scenario.to_owned(),
        };
        for (_, key, label) in STORE_ROWS.iter().filter(|(s, _, _)| *s == scenario) {
            let (a, b) = (pg.map(|v| &v[*key]), lite.map(|v| &v[*key]));
            if a.is_none_or(Value::is_null) && b.is_none_or(Value::is_null) {
                continue;
            }
            let ratio = match (a.and_then(num), b.and_then(num)) {
                (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
                _ => String::new(),
            };
            let cell = |v: Option<&Value>| v.map_or(String::new(), show);
            let _ = writeln!(
                out,
                "| {run} | {label} | {} | {} | {ratio} |",
                cell(a),
                cell(b)
            );
        }
        if scenario == "persist" {
            let (a, b) = (
                pg.map_or(String::new(), lost_dup),
                lite.map_or(String::new(), lost_dup),
            );
            let _ = writeln!(out, "| {run} | lost / duplicated | {a} | {b} | |");
        }
    }
}

fn fanout(out: &mut String, runs: &BTreeMap<(u64, u64), Value>) {
    let nodes = runs
        .values()
        .next()
        .and_then(|v| v["nodes"].as_u64())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "| readers, rate | metric | split over {nodes} nodes | all on the job's node | added by the split |\n|---|---|---:|---:|---:|"
    );
    for ((readers, rate), v) in runs {
        let run = format!("{readers}, {rate}/s");
        let (split, one) = (&v["split"], &v["one_node"]);
        for (part, key, label) in FANOUT_ROWS {
            let pick = |layout: &Value| -> Value {
                let p = if part.is_empty() {
                    layout
                } else {
                    &layout[part]
                };
                p[key].clone()
            };
            // Readers on other nodes are compared with all the readers of
            // the run with none there.
            let (a, b) = (
                pick(split),
                if part.is_empty() {
                    pick(one)
                } else {
                    one[key].clone()
                },
            );
            if a.is_null() && b.is_null() {
                continue;
            }
            let added = match (num(&a), num(&b)) {
                (Some(x), Some(y)) if key != "events_per_s" => format!("{:+.2}", x - y),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {run} | {label} | {} | {} | {added} |",
                show(&a),
                show(&b)
            );
        }
        let _ = writeln!(
            out,
            "| {run} | lost / duplicated (all repeats) | {} | {} | |",
            lost_dup(split),
            lost_dup(one)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_the_latest_runs() {
        let dir = std::env::temp_dir().join(format!("cluster-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let lines = [
            r#"{"scenario":"cluster-persist","store":"postgres","nodes":3,"events":10,"persisted_per_s":1.0,"lost":0,"duplicated":0}"#,
            r#"{"scenario":"cluster-persist","store":"postgres","nodes":3,"events":10,"persisted_per_s":500.0,"elsewhere_ms":20.5,"lost":0,"duplicated":0}"#,
            r#"{"scenario":"cluster-persist","store":"sqlite","nodes":1,"events":10,"persisted_per_s":1000.0,"lost":0,"duplicated":0}"#,
            r#"{"scenario":"cluster-start","store":"postgres","nodes":3,"jobs_per_s":10.0,"ran_per_node":[3,4,3]}"#,
            r#"{"scenario":"cluster-fanout","nodes":3,"readers":30,"rate":1000,"one_node":{"p99_ms":4.0,"lost":0,"duplicated":0},"split":{"p99_ms":9.5,"lost":0,"duplicated":1,"on_other_nodes":{"p99_ms":12.0}}}"#,
            r#"{"scenario":"fanout","target":"nchan"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let t = table(&path).unwrap().unwrap();
        assert!(t.contains("| persist, 10 messages | events persisted/s (until the database held the last) | 500.00 | 1000.00 | 0.50 |"), "{t}");
        assert!(
            t.contains("| persist, 10 messages | lost / duplicated | 0 / 0 | 0 / 0 | |"),
            "{t}"
        );
        assert!(
            t.contains("| start | jobs run by each node | 3 / 4 / 3 |  |  |"),
            "{t}"
        );
        assert!(
            t.contains("| 30, 1000/s | p99 latency, all readers (ms) | 9.50 | 4.00 | +5.50 |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| 30, 1000/s | p99 latency, readers on other nodes (ms) | 12.00 | 4.00 | +8.00 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| 30, 1000/s | lost / duplicated (all repeats) | 0 / 1 | 0 / 0 | |"),
            "{t}"
        );
        std::fs::write(&path, lines[5]).unwrap();
        assert!(table(&path).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
