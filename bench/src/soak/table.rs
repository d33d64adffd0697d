//! A check's figures: measured, bound, ok; printed as a Markdown table
//! and recorded as one JSON line.

use std::time::Instant;

use serde_json::Value;

/// Bytes in a MiB.
pub(super) const MIB: f64 = 1048576.0;

/// One figure: what was measured, the bound it must meet (empty: shown
/// for information), and whether it met it.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) measured: String,
    pub(super) bound: String,
    pub(super) ok: bool,
}

/// A check's figures, printed as a Markdown table.
pub(super) struct Table {
    pub(super) check: &'static str,
    pub(super) started: Instant,
    pub(super) rows: Vec<Row>,
    /// The figures, by name, for the JSON line.
    pub(super) values: serde_json::Map<String, Value>,
}

impl Table {
    pub(super) fn new(check: &'static str) -> Self {
        Table {
            check,
            started: Instant::now(),
            rows: Vec::new(),
            values: serde_json::Map::new(),
        }
    }

    /// A figure shown for information.
    pub(super) fn info(&mut self, name: &str, measured: impl std::fmt::Display) {
        self.push(name, measured.to_string(), String::new(), true);
    }

    /// A figure that must satisfy `ok`, described by `bound`.
    pub(super) fn check(
        &mut self,
        name: &str,
        measured: impl std::fmt::Display,
        bound: &str,
        ok: bool,
    ) {
        self.push(name, measured.to_string(), bound.to_owned(), ok);
    }

    pub(super) fn push(&mut self, name: &str, measured: String, bound: String, ok: bool) {
        let value = measured
            .parse::<f64>()
            .map_or(Value::from(measured.clone()), Value::from);
        self.values.insert(name.to_owned(), value);
        self.rows.push(Row {
            name: name.to_owned(),
            measured,
            bound,
            ok,
        });
    }

    /// The figures out of bounds, except those named in `known` (which are
    /// printed as known failures and do not fail the run).
    pub(super) fn failed(&self, known: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for r in self.rows.iter().filter(|r| !r.ok) {
            if known.iter().any(|k| r.name.starts_with(k.as_str())) {
                println!(
                    "KNOWN FAILURE: soak {}: {} = {} (bound {}); report-only",
                    self.check, r.name, r.measured, r.bound
                );
            } else {
                failed.push(r.name.clone());
            }
        }
        failed
    }

    pub(super) fn print(&self) {
        println!(
            "\n== soak {} ({:.0} s)\n",
            self.check,
            self.started.elapsed().as_secs_f64()
        );
        println!("| figure | measured | bound | ok |");
        println!("|---|---:|---|---|");
        for r in &self.rows {
            let ok = match (r.bound.is_empty(), r.ok) {
                (true, _) => "",
                (false, true) => "yes",
                (false, false) => "**NO**",
            };
            println!("| {} | {} | {} | {ok} |", r.name, r.measured, r.bound);
        }
        println!();
    }

    pub(super) fn json(&self) -> Value {
        let mut v = self.values.clone();
        v.insert("scenario".into(), format!("soak-{}", self.check).into());
        v.insert("target".into(), "jobstream".into());
        v.insert(
            "duration_s".into(),
            self.started.elapsed().as_secs_f64().into(),
        );
        let failed: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.name.as_str())
            .collect();
        v.insert("failed".into(), failed.into());
        Value::Object(v)
    }
}

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

pub(super) fn signed_mib(a: u64, b: u64) -> String {
    format!("{:+.1}", (a as f64 - b as f64) / MIB)
}
