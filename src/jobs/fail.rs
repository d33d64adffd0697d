//! `fail`: reports `steps` steps and fails at step `at` with `message`
//! (or a default text): how a failure looks on the page and in the list.

use app::i18n::{tr, Arg};
use jobstream_engine::{Emitter, FieldError, FieldSchema, JobContext, JobError, Params, Problem};
use serde::Deserialize;

use super::{locale, pause};

/// Parameters of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    steps: u32,
    at: u32,
    #[serde(default)]
    message: Option<String>,
    interval_ms: u64,
}

impl Params for Fail {
    fn fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::integer("steps", 1, 1000, 5),
            FieldSchema::integer("at", 1, 1000, 3),
            FieldSchema::optional_text("message", 200),
            FieldSchema::integer("interval_ms", 0, 60_000, 500),
        ]
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.at > self.steps {
            return Err(FieldError::new(
                "at",
                Problem::OutOfRange {
                    min: 1,
                    max: self.steps.into(),
                    got: self.at.into(),
                },
            ));
        }
        Ok(())
    }
}

pub async fn run(ctx: JobContext, p: Fail, out: Emitter) -> Result<(), JobError> {
    let l = locale(&ctx);
    for i in 1..p.at {
        let (step, at) = (l.int(i.into()), l.int(p.steps.into()));
        out.emit(&tr(
            l,
            "fail-step",
            &[("step", Arg::Text(&step)), ("at", Arg::Text(&at))],
        ))
        .await?;
        out.progress(f64::from(i) / f64::from(p.steps), None)
            .await?;
        pause(&ctx, p.interval_ms, i).await?;
    }
    Err(JobError::new(p.message.unwrap_or_else(|| {
        tr(
            l,
            "fail-default",
            &[("step", Arg::Text(&l.int(p.at.into())))],
        )
    })))
}

#[cfg(test)]
mod tests {
    use super::super::plan_err;
    use serde_json::json;

    #[test]
    fn fail_params_are_checked() {
        assert!(plan_err("fail", json!({"steps": 2, "at": 3}))
            .ends_with("at: must be between 1 and 2, got 3"));
        assert!(plan_err("fail", json!({"message": ""})).ends_with("message: must not be empty"));
        assert!(plan_err("fail", json!({"message": "x".repeat(201)}))
            .ends_with("message: must be at most 200 characters, got 201"));
        assert_eq!(plan_err("fail", json!({"message": null})), "");
    }
}
