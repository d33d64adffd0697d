//! One-line summaries, and the side-by-side report with ratios, as text,
//! Markdown and an SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::args::Report;

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// A run's figures on one line, parameters first.
pub fn line(v: &Value) -> String {
    let mut out = String::new();
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            let x = match x.as_f64() {
                Some(n) if n.fract() != 0.0 => format!("{n:.3}"),
                _ => x.to_string().trim_matches('"').to_owned(),
            };
            let _ = write!(out, "{k}={x} ");
        }
    }
    out.trim_end().to_owned()
}

/// (scenario, n) → target → the latest run.
type Runs = BTreeMap<(String, u64), BTreeMap<String, Value>>;

fn load(file: &std::path::Path) -> Result<Runs, String> {
    let path = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{path}: {e}"))?;
    let mut runs = Runs::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("{path}: {e}"))?;
        let scenario = v["scenario"].as_str().unwrap_or("?").to_owned();
        let n = v["n"].as_u64().unwrap_or(0);
        let target = v["target"].as_str().unwrap_or("?").to_owned();
        runs.entry((scenario, n)).or_default().insert(target, v);
    }
    Ok(runs)
}

/// The metrics compared, with whether higher is better.
const METRICS: [(&str, &str, &str, bool); 11] = [
    (
        "idle",
        "rss_per_conn_kib",
        "memory per subscriber (KiB)",
        false,
    ),
    ("idle", "cpu_pct", "CPU while idle (%)", false),
    ("fanout", "events_per_s", "delivered events/s", true),
    (
        "fanout",
        "server_cpu_us_per_event",
        "server CPU per delivered event (µs)",
        false,
    ),
    ("fanout", "p50_ms", "p50 latency (ms)", false),
    ("fanout", "p99_ms", "p99 latency (ms)", false),
    ("fanout", "max_ms", "max latency (ms)", false),
    ("fanout-paced", "events_per_s", "delivered events/s", true),
    (
        "fanout-paced",
        "server_cpu_us_per_event",
        "server CPU per delivered event (µs)",
        false,
    ),
    ("fanout-paced", "p50_ms", "p50 latency (ms)", false),
    ("fanout-paced", "p99_ms", "p99 latency (ms)", false),
];

fn table(runs: &Runs) -> String {
    let mut out = String::from(
        "| scenario | N | metric | jobstream | Nchan | jobstream ÷ Nchan | better |\n|---|---|---|---|---|---|---|\n",
    );
    for ((scenario, n), by_target) in runs {
        for (s, key, label, higher_better) in METRICS {
            if s != scenario {
                continue;
            }
            let (Some(j), Some(c)) = (by_target.get("jobstream"), by_target.get("nchan")) else {
                continue;
            };
            let (a, b) = (f(j, key), f(c, key));
            let ratio = a / b;
            let better = if (a > b) == higher_better {
                "jobstream"
            } else {
                "Nchan"
            };
            let _ = writeln!(
                out,
                "| {scenario} | {n} | {label} | {a:.2} | {b:.2} | {ratio:.2} | {better} |"
            );
        }
        if scenario.starts_with("fanout") {
            for (target, v) in by_target {
                let _ = writeln!(
                    out,
                    "| {scenario} | {n} | lost / duplicated ({target}) | {} / {} | | | |",
                    v["lost"], v["duplicated"]
                );
            }
        }
    }
    out
}

/// `report --results FILE [--markdown FILE] [--svg FILE]`.
/// A results file of `cluster` runs has its own report, written between
/// `<!-- cluster:start -->` and `<!-- cluster:end -->`.
pub fn run(args: &Report) -> Result<(), String> {
    if let Some(table) = crate::cluster::table(&args.results)? {
        println!("{table}");
        if let Some(path) = &args.markdown {
            rewrite(path, "cluster", &table)?;
        }
        return Ok(());
    }
    let runs = load(&args.results)?;
    let table = table(&runs);
    println!("{table}");
    if let Some(path) = &args.markdown {
        rewrite(path, "results", &table)?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, chart(&runs)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Puts `table` between the `<!-- NAME:start -->` and `<!-- NAME:end -->`
/// markers of the Markdown file `path`.
fn rewrite(path: &std::path::Path, name: &str, table: &str) -> Result<(), String> {
    let md = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{md}: {e}"))?;
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let (Some(a), Some(b)) = (text.find(&start), text.find(&end)) else {
        return Err(format!("{md}: no {start} ... {end} markers"));
    };
    let new = format!("{}{start}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(path, new).map_err(|e| format!("{md}: {e}"))
}

/// Two panels, fan-out throughput and p99 latency against N (log scales),
/// one line per server.
fn chart(runs: &Runs) -> String {
    let series = |target: &str, key: &str| -> Vec<(f64, f64)> {
        runs.iter()
            .filter(|((s, _), _)| s == "fanout")
            .filter_map(|((_, n), t)| Some((*n as f64, f(t.get(target)?, key))))
            .filter(|(_, y)| y.is_finite() && *y > 0.0)
            .collect()
    };
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="860" height="360" font-family="sans-serif" font-size="12">
<rect width="860" height="360" fill="#fff"/>
"##,
    );
    let panels = [
        ("events_per_s", "fan-out: delivered events/s", 30.0),
        ("p99_ms", "fan-out: p99 emit-to-receive latency (ms)", 460.0),
    ];
    for (key, title, x0) in panels {
        let all: Vec<(f64, f64)> = ["jobstream", "nchan"]
            .iter()
            .flat_map(|t| series(t, key))
            .collect();
        if all.is_empty() {
            continue;
        }
        let (w, h, y0) = (360.0, 250.0, 50.0);
        let lx = |v: f64| v.log10();
        let (xmin, xmax) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(lx(*x)), b.max(lx(*x)))
        });
        let (ymin, ymax) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
            (a.min(lx(*y)), b.max(lx(*y)))
        });
        let (xmin, xmax) = (xmin - 0.1, xmax + 0.1);
        let (ymin, ymax) = (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0));
        let px = |x: f64| x0 + (lx(x) - xmin) / (xmax - xmin) * w;
        let py = |y: f64| y0 + h - (lx(y) - ymin) / (ymax - ymin) * h;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="30" font-weight="bold">{title}</text><rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##,
            x0
        );
        let mut e = ymin;
        while e <= ymax {
            let y = y0 + h - (e - ymin) / (ymax - ymin) * h;
            let _ = writeln!(
                svg,
                r##"<line x1="{x0}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + w,
                x0 - 4.0,
                y + 4.0,
                format_pow(e)
            );
            e += 1.0;
        }
        let mut ns: Vec<f64> = all.iter().map(|(x, _)| *x).collect();
        ns.sort_by(f64::total_cmp);
        ns.dedup();
        for n in ns {
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" text-anchor="middle">N={n}</text>"##,
                px(n),
                y0 + h + 16.0
            );
        }
        for (target, color, dy) in [("jobstream", "#2456d6", 0.0), ("nchan", "#c0392b", 16.0)] {
            let pts = series(target, key);
            let path: Vec<String> = pts
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
                path.join(" ")
            );
            for (x, y) in &pts {
                let _ = writeln!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                    px(*x),
                    py(*y)
                );
            }
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" fill="{color}">{target}</text>"##,
                x0 + 8.0,
                y0 + 16.0 + dy
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_pow(e: f64) -> String {
    let v = 10f64.powf(e);
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}
