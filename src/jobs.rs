//! The job kinds this server offers.
//!
//! * `demo`: the recipe's job. Says `finish i: ...(NAME)` for i = 1..=steps,
//!   `interval_ms` apart. Params: `steps` (1 to 1000, default 4),
//!   `interval_ms` (0 to 60000, default 1000).
//! * `echo`: says each of `messages` `repeat` times (default 1), with
//!   `interval_ms` (default 0) between emits. For scripts, tests, benchmarks.

use std::time::Duration;

use jobstream_engine::{Emitter, JobContext, JobError, Params, Registry};
use serde::Deserialize;

/// The registry with every kind above.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("demo", demo).register("echo", echo);
    r
}

fn range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    v: T,
    min: T,
    max: T,
) -> Result<(), String> {
    if v < min || v > max {
        return Err(format!("{field}: must be between {min} and {max}, got {v}"));
    }
    Ok(())
}

/// Waits `ms` milliseconds, or fails the job if it is asked to stop.
async fn pause(ctx: &JobContext, ms: u64) -> Result<(), JobError> {
    if ms == 0 {
        return Ok(());
    }
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
        () = ctx.cancel.cancelled() => Err(JobError::new("stopped: the server is shutting down")),
    }
}

/// Parameters of `demo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    #[serde(default = "Demo::default_steps")]
    steps: u32,
    #[serde(default = "Demo::default_interval")]
    interval_ms: u64,
}

impl Demo {
    fn default_steps() -> u32 {
        4
    }
    fn default_interval() -> u64 {
        1000
    }
}

impl Params for Demo {
    fn validate(&self) -> Result<(), String> {
        range("steps", self.steps, 1, 1000)?;
        range("interval_ms", self.interval_ms, 0, 60_000)
    }
}

async fn demo(ctx: JobContext, p: Demo, out: Emitter) -> Result<(), JobError> {
    for i in 1..=p.steps {
        out.emit(&format!("finish {i}: ...({})", ctx.display_name))?;
        if i < p.steps {
            pause(&ctx, p.interval_ms).await?;
        }
    }
    Ok(())
}

/// Parameters of `echo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Echo {
    messages: Vec<String>,
    #[serde(default = "Echo::default_repeat")]
    repeat: u32,
    #[serde(default)]
    interval_ms: u64,
}

impl Echo {
    fn default_repeat() -> u32 {
        1
    }
    /// Most events one echo job may emit in all.
    pub const MAX_TOTAL: u64 = 1_000_000;
}

impl Params for Echo {
    fn validate(&self) -> Result<(), String> {
        range("messages: count", self.messages.len(), 1, 10_000)?;
        if let Some(i) = self.messages.iter().position(String::is_empty) {
            return Err(format!(
                "messages[{i}]: must not be empty (an SSE event cannot carry empty data)"
            ));
        }
        range("repeat", self.repeat, 1, 1_000_000)?;
        range("interval_ms", self.interval_ms, 0, 60_000)?;
        let total = self.messages.len() as u64 * u64::from(self.repeat);
        if total > Self::MAX_TOTAL {
            return Err(format!(
                "messages × repeat: must be at most {}, got {total}",
                Self::MAX_TOTAL
            ));
        }
        Ok(())
    }
}

async fn echo(ctx: JobContext, p: Echo, out: Emitter) -> Result<(), JobError> {
    let mut first = true;
    for m in &p.messages {
        for _ in 0..p.repeat {
            if !first {
                pause(&ctx, p.interval_ms).await?;
            }
            first = false;
            out.emit(m)?;
            // A long burst without pauses still lets other tasks run.
            if p.interval_ms == 0 {
                tokio::task::consume_budget().await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_err(kind: &str, params: serde_json::Value) -> String {
        registry()
            .plan(kind, &params)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn demo_params_are_checked() {
        assert!(registry().plan("demo", &json!({})).is_ok());
        assert!(plan_err("demo", json!({"steps": 0}))
            .ends_with("steps: must be between 1 and 1000, got 0"));
        assert!(plan_err("demo", json!({"steps": 1001})).contains("got 1001"));
        assert!(plan_err("demo", json!({"interval_ms": 60001}))
            .contains("interval_ms: must be between 0 and 60000"));
        assert!(plan_err("demo", json!({"steps": "4"})).contains("steps: invalid type"));
    }

    #[test]
    fn echo_params_are_checked() {
        assert!(registry().plan("echo", &json!({"messages": ["a"]})).is_ok());
        assert!(plan_err("echo", json!({})).contains("missing field `messages`"));
        assert!(plan_err("echo", json!({"messages": []}))
            .contains("messages: count: must be between 1 and 10000"));
        assert!(plan_err("echo", json!({"messages": ["a", ""]}))
            .contains("messages[1]: must not be empty"));
        assert!(
            plan_err("echo", json!({"messages": ["a", "b"], "repeat": 600000}))
                .contains("at most 1000000")
        );
    }
}
