//! `echo`: says each of `messages` `repeat` times, with `interval_ms`
//! between emits. For scripts, tests, benchmarks.

use jobstream_engine::{Emitter, FieldError, FieldSchema, JobContext, JobError, Params, Problem};
use serde::Deserialize;

use super::pause;

/// Parameters of `echo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Echo {
    messages: Vec<String>,
    repeat: u32,
    interval_ms: u64,
}

impl Echo {
    /// Most events one echo job may emit in all.
    pub const MAX_TOTAL: u64 = 1_000_000;
}

impl Params for Echo {
    fn fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::lines("messages", 10_000, &["hello", "world"]),
            FieldSchema::integer("repeat", 1, 1_000_000, 1),
            FieldSchema::integer("interval_ms", 0, 60_000, 0),
        ]
    }

    fn validate(&self) -> Result<(), FieldError> {
        let total = self.messages.len() as u64 * u64::from(self.repeat);
        if total > Self::MAX_TOTAL {
            return Err(FieldError::new(
                "repeat",
                Problem::Invalid(format!(
                    "messages × repeat must be at most {}, got {total}",
                    Self::MAX_TOTAL
                )),
            ));
        }
        Ok(())
    }
}

pub async fn run(ctx: JobContext, p: Echo, out: Emitter) -> Result<(), JobError> {
    let mut step = 0;
    for m in &p.messages {
        for _ in 0..p.repeat {
            if step > 0 {
                pause(&ctx, p.interval_ms, step).await?;
            }
            step += 1;
            out.emit(m).await?;
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
    use super::super::{plan_err, registry};
    use serde_json::json;

    #[test]
    fn echo_params_are_checked() {
        assert!(registry(true)
            .plan("echo", &json!({"messages": ["a"]}))
            .is_ok());
        assert!(plan_err("echo", json!({})).contains("missing field `messages`"));
        assert!(plan_err("echo", json!({"messages": []}))
            .contains("messages: must be between 1 and 10000"));
        assert!(plan_err("echo", json!({"messages": ["a", ""]}))
            .contains("messages[1]: must not be empty"));
        assert!(
            plan_err("echo", json!({"messages": ["a", "b"], "repeat": 600000}))
                .contains("at most 1000000")
        );
    }
}
