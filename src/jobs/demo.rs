//! `demo`: the job of the recipe jobstream grew from. Says `finish i: ...(NAME)` for i = 1..=steps,
//! `interval_ms` apart, with progress.

use app::i18n::{tr, Arg};
use jobstream_engine::{Emitter, FieldSchema, JobContext, JobError, Params};
use serde::Deserialize;

use super::{locale, pause};

/// Parameters of `demo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    steps: u32,
    interval_ms: u64,
}

impl Params for Demo {
    fn fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::integer("steps", 1, 1000, 4),
            FieldSchema::integer("interval_ms", 0, 60_000, 1000),
        ]
    }
}

pub async fn run(ctx: JobContext, p: Demo, out: Emitter) -> Result<(), JobError> {
    let l = locale(&ctx);
    for i in 1..=p.steps {
        let step = l.int(i.into());
        out.emit(&tr(
            l,
            "demo-step",
            &[
                ("step", Arg::Text(&step)),
                ("name", Arg::Text(&ctx.display_name)),
            ],
        ))
        .await?;
        out.progress(f64::from(i) / f64::from(p.steps), None)
            .await?;
        if i < p.steps {
            pause(&ctx, p.interval_ms, i).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{plan_err, registry};
    use serde_json::json;

    #[test]
    fn demo_params_are_checked() {
        assert!(registry(true).plan("demo", &json!({})).is_ok());
        assert!(plan_err("demo", json!({"steps": 0}))
            .ends_with("steps: must be between 1 and 1000, got 0"));
        assert!(plan_err("demo", json!({"steps": 1001})).contains("got 1001"));
        assert!(plan_err("demo", json!({"interval_ms": 60001}))
            .contains("interval_ms: must be between 0 and 60000"));
        assert!(plan_err("demo", json!({"steps": "4"})).contains("steps: invalid type"));
    }
}
