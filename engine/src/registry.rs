//! Job kinds, registered by name, with typed and validated parameters.
//!
//! ```
//! use jobstream_engine::{Registry, Params, FieldError, JobContext, Emitter, JobError};
//! #[derive(serde::Deserialize)]
//! struct Hello { times: u32 }
//! impl Params for Hello {
//!     fn validate(&self) -> Result<(), FieldError> {
//!         FieldError::range("times", self.times, 1, 10)
//!     }
//! }
//! let mut registry = Registry::new();
//! registry.register("hello", |_ctx: JobContext, p: Hello, out: Emitter| async move {
//!     for _ in 0..p.times { out.emit("hello").await?; }
//!     Ok::<(), JobError>(())
//! });
//! assert!(registry.plan("hello", &serde_json::json!({"times": 2})).is_ok());
//! assert!(registry.plan("hello", &serde_json::json!({"times": 0})).is_err());
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::job::{Emitter, JobContext, JobError};

/// The future a job runs as.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A job whose parameters were checked, ready for a worker.
pub type Runner = Box<dyn FnOnce(JobContext, Emitter) -> JobFuture + Send>;

type Planner = Arc<dyn Fn(&serde_json::Value) -> Result<Runner, PlanError> + Send + Sync>;

/// Parameters of a job kind: deserialised from JSON, then checked.
pub trait Params: DeserializeOwned + Send + 'static {
    /// Checks ranges and relations serde cannot, naming the field at fault.
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }
}

/// What is wrong with a parameter. Structured, so a UI can say it in the
/// visitor's language; `Display` gives the English the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A number outside its range.
    #[error("must be between {min} and {max}, got {got}")]
    OutOfRange { min: i64, max: i64, got: i64 },
    /// A text longer than allowed (in characters).
    #[error("must be at most {max} characters, got {got}")]
    TooLong { max: usize, got: usize },
    /// A text or list that must not be empty.
    #[error("must not be empty")]
    Empty,
    /// Anything serde refused: wrong type, unknown field, ...
    #[error("{0}")]
    Invalid(String),
}

/// A parameter that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The parameter's name.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl FieldError {
    /// A failed check of `field`.
    pub fn new(field: &str, problem: Problem) -> Self {
        FieldError {
            field: field.to_owned(),
            problem,
        }
    }

    /// Checks that `got` is within `min..=max`.
    pub fn range<T: Into<i64>>(field: &str, got: T, min: i64, max: i64) -> Result<(), Self> {
        let got = got.into();
        if got < min || got > max {
            return Err(Self::new(field, Problem::OutOfRange { min, max, got }));
        }
        Ok(())
    }

    /// Checks that `text` has at most `max` characters and is not empty.
    pub fn text(field: &str, text: &str, max: usize) -> Result<(), Self> {
        let got = text.chars().count();
        if got == 0 {
            return Err(Self::new(field, Problem::Empty));
        }
        if got > max {
            return Err(Self::new(field, Problem::TooLong { max, got }));
        }
        Ok(())
    }
}

/// Why a job could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No kind of that name is registered.
    #[error("unknown job kind {kind:?}; known kinds: {}", known.join(", "))]
    UnknownKind { kind: String, known: Vec<String> },
    /// The parameters do not fit the kind. `field` is `None` when the
    /// problem is with the whole object (e.g. it is not an object).
    #[error("invalid params for {kind:?}: {}", match field { Some(f) => format!("{f}: {problem}"), None => problem.to_string() })]
    BadParams {
        kind: String,
        field: Option<String>,
        problem: Problem,
    },
}

/// The job kinds a server offers.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Planner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job kind. A later registration of the same name wins.
    pub fn register<P, F, Fut>(&mut self, name: &str, run: F) -> &mut Self
    where
        P: Params,
        F: Fn(JobContext, P, Emitter) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let kind = name.to_owned();
        let planner: Planner = Arc::new(move |params: &serde_json::Value| {
            let bad = |field: Option<String>, problem: Problem| PlanError::BadParams {
                kind: kind.clone(),
                field,
                problem,
            };
            // A missing or null params object means "all defaults".
            let value = if params.is_null() {
                serde_json::Value::Object(Default::default())
            } else {
                params.clone()
            };
            if !value.is_object() {
                return Err(bad(
                    None,
                    Problem::Invalid("params must be a JSON object".to_owned()),
                ));
            }
            let parsed: P = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let field = (path != ".").then_some(path);
                let message = e.into_inner().to_string();
                // serde names an unknown field only in its message.
                let field = field.or_else(|| {
                    let rest = message.strip_prefix("unknown field `")?;
                    Some(rest.split('`').next()?.to_owned())
                });
                bad(field, Problem::Invalid(message))
            })?;
            parsed
                .validate()
                .map_err(|e| bad(Some(e.field), e.problem))?;
            let run = run.clone();
            Ok(
                Box::new(move |ctx, emitter| Box::pin(run(ctx, parsed, emitter)) as JobFuture)
                    as Runner,
            )
        });
        self.kinds.insert(name.to_owned(), planner);
        self
    }

    /// Checks `params` against kind `kind` and returns the job to run.
    pub fn plan(&self, kind: &str, params: &serde_json::Value) -> Result<Runner, PlanError> {
        let planner = self.kinds.get(kind).ok_or_else(|| PlanError::UnknownKind {
            kind: kind.to_owned(),
            known: self.kinds.keys().cloned().collect(),
        })?;
        planner(params)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Steps {
        #[serde(default = "four")]
        steps: u32,
    }
    fn four() -> u32 {
        4
    }
    impl Params for Steps {
        fn validate(&self) -> Result<(), FieldError> {
            FieldError::range("steps", self.steps, 1, 10)
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register("steps", |_, _: Steps, _| async { Ok(()) });
        r
    }

    fn err(params: serde_json::Value) -> String {
        match registry().plan("steps", &params) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{params} was accepted"),
        }
    }

    #[test]
    fn defaults_apply_to_missing_and_null_params() {
        assert!(registry().plan("steps", &json!({})).is_ok());
        assert!(registry().plan("steps", &serde_json::Value::Null).is_ok());
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            err(json!({"steps": 0})),
            r#"invalid params for "steps": steps: must be between 1 and 10, got 0"#
        );
        assert!(err(json!({"steps": "x"})).contains("steps: invalid type: string \"x\""));
        assert!(err(json!({"stepz": 1})).contains("stepz: unknown field `stepz`"));
        assert!(err(json!([1])).ends_with("params must be a JSON object"));
        assert!(err(json!({"steps": -1})).contains("steps: invalid value"));
    }

    #[test]
    fn unknown_kind_lists_known_ones() {
        let e = registry().plan("nope", &json!({})).err().unwrap();
        assert_eq!(
            e.to_string(),
            r#"unknown job kind "nope"; known kinds: steps"#
        );
    }
}
