//! `log`: a build log. Says `lines` numbered lines ("line N of TOTAL" in
//! the visitor's language) at `rate` per second (0: as fast as it can). As
//! real build output does, some lines carry ANSI colour codes: every 10th
//! is green, every 25th bold red. For trying the log view with big outputs.

use std::time::Duration;

use app::i18n::{tr, Arg};
use jobstream_engine::{Emitter, FieldSchema, JobContext, JobError, Params};
use serde::Deserialize;

use super::{locale, step_text, stop_requested};

/// Parameters of `log`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    lines: u64,
    rate: u64,
}

impl Params for Log {
    fn fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::integer("lines", 1, 1_000_000, 1000),
            FieldSchema::integer("rate", 0, 1_000_000, 1000),
        ]
    }
}

/// Line `n`'s text, with its colour codes.
fn line(ctx: &JobContext, n: u64, total: u64) -> String {
    let (n_text, total_text) = (n.to_string(), total.to_string());
    let text = tr(
        locale(ctx),
        "log-line",
        &[("n", Arg::Text(&n_text)), ("total", Arg::Text(&total_text))],
    );
    if n.is_multiple_of(25) {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else if n.is_multiple_of(10) {
        format!("\x1b[32m{text}\x1b[0m")
    } else {
        text
    }
}

pub async fn run(ctx: JobContext, p: Log, out: Emitter) -> Result<(), JobError> {
    let started = tokio::time::Instant::now();
    for n in 1..=p.lines {
        if p.rate > 0 {
            let due = started + Duration::from_secs_f64((n - 1) as f64 / p.rate as f64);
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = ctx.cancel.cancelled() => {
                    return Err(JobError::new(step_text(&ctx, n as u32)));
                }
            }
        } else if n.is_multiple_of(1024) {
            stop_requested(&ctx, n as u32)?;
            tokio::task::consume_budget().await;
        }
        out.emit(&line(&ctx, n, p.lines)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::plan_err;
    use serde_json::json;

    #[test]
    fn bounds_are_checked() {
        assert_eq!(plan_err("log", json!({})), "");
        assert!(plan_err("log", json!({"lines": 0})).contains("lines"));
        assert!(plan_err("log", json!({"lines": 1_000_001})).contains("lines"));
        assert!(plan_err("log", json!({"rate": -1})).contains("rate"));
    }
}
