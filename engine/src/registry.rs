//! Job kinds, registered by name, with typed and validated parameters.
//!
//! A kind declares its fields once, as a [`KindSchema`]: types, ranges,
//! defaults. [`Registry::plan`] fills in the defaults, lets serde check the
//! types, checks every field against its bounds, and only then calls the
//! kind's own [`Params::validate`] for relations between fields. The home
//! page renders its form from [`Registry::schemas`].
//!
//! ```
//! use jobstream_engine::{Registry, Params, FieldSchema, JobContext, Emitter, JobError};
//! #[derive(serde::Deserialize)]
//! struct Hello { times: u32 }
//! impl Params for Hello {
//!     fn fields() -> Vec<FieldSchema> {
//!         vec![FieldSchema::integer("times", 1, 10, 1)]
//!     }
//! }
//! let mut registry = Registry::new();
//! registry.register("hello", |_ctx: JobContext, p: Hello, out: Emitter| async move {
//!     for _ in 0..p.times { out.emit("hello").await?; }
//!     Ok::<(), JobError>(())
//! });
//! assert!(registry.plan("hello", &serde_json::json!({"times": 2})).is_ok());
//! assert!(registry.plan("hello", &serde_json::json!({})).is_ok());
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

pub use jobstream_protocol::schema::{FieldProblem as FieldError, Problem};
use jobstream_protocol::{FieldSchema, FieldType, FieldValue, KindSchema};

/// Parameters of a job kind: declared by [`Params::fields`], deserialised
/// from JSON with the defaults filled in, checked against the fields'
/// bounds, then by [`Params::validate`].
pub trait Params: DeserializeOwned + Send + 'static {
    /// The kind's fields. Their defaults are the only ones: the struct
    /// needs no `#[serde(default)]`. A field left out here is still
    /// checked by serde, but has no default and no place in the form.
    fn fields() -> Vec<FieldSchema> {
        Vec::new()
    }

    /// Whether the home page's form offers the kind (not for tools).
    const IN_FORM: bool = true;

    /// Longest a job of the kind may run (the engine's
    /// [`max_duration`](crate::EngineConfig::max_duration) caps it too):
    /// then it is asked to stop and ends `failed`.
    const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

    /// Checks relations between fields that the schema cannot express,
    /// naming the field at fault.
    fn validate(&self) -> Result<(), FieldError> {
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
    kinds: BTreeMap<String, (KindSchema, Planner, std::time::Duration)>,
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
        let schema = KindSchema {
            name: kind.clone(),
            fields: P::fields(),
            in_form: P::IN_FORM,
        };
        let fields = schema.fields.clone();
        let planner: Planner = Arc::new(move |params: &serde_json::Value| {
            let bad = |field: Option<String>, problem: Problem| PlanError::BadParams {
                kind: kind.clone(),
                field,
                problem,
            };
            // A missing or null params object means "all defaults".
            let mut value = if params.is_null() {
                serde_json::Value::Object(Default::default())
            } else {
                params.clone()
            };
            let Some(object) = value.as_object_mut() else {
                return Err(bad(
                    None,
                    Problem::Invalid("params must be a JSON object".to_owned()),
                ));
            };
            with_defaults(object, &fields);
            let checked = bounds(object, &fields);
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
            // Types first (serde's messages name them), then bounds.
            checked.map_err(|e| bad(Some(e.field), e.problem))?;
            parsed
                .validate()
                .map_err(|e| bad(Some(e.field), e.problem))?;
            let run = run.clone();
            Ok(
                Box::new(move |ctx, emitter| Box::pin(run(ctx, parsed, emitter)) as JobFuture)
                    as Runner,
            )
        });
        self.kinds
            .insert(name.to_owned(), (schema, planner, P::MAX_DURATION));
        self
    }

    /// Checks `params` against kind `kind` and returns the job to run.
    pub fn plan(&self, kind: &str, params: &serde_json::Value) -> Result<Runner, PlanError> {
        let (_, planner, _) = self.kinds.get(kind).ok_or_else(|| PlanError::UnknownKind {
            kind: kind.to_owned(),
            known: self.kinds.keys().cloned().collect(),
        })?;
        planner(params)
    }

    /// Every kind's schema, sorted by name.
    pub fn schemas(&self) -> impl Iterator<Item = &KindSchema> {
        self.kinds.values().map(|(schema, ..)| schema)
    }

    /// Longest a job of `kind` may run ([`Params::MAX_DURATION`]).
    pub fn max_duration(&self, kind: &str) -> Option<std::time::Duration> {
        self.kinds.get(kind).map(|(.., max)| *max)
    }

    /// The schema of `kind`.
    pub fn schema(&self, kind: &str) -> Option<&KindSchema> {
        self.kinds.get(kind).map(|(schema, ..)| schema)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

/// Puts each field's default where the field is missing or `null`.
fn with_defaults(object: &mut serde_json::Map<String, serde_json::Value>, fields: &[FieldSchema]) {
    for field in fields {
        let Some(default) = &field.default else {
            continue;
        };
        let slot = object
            .entry(field.name.clone())
            .or_insert(serde_json::Value::Null);
        if slot.is_null() {
            // A number, a string or a list of strings always serialises.
            *slot = serde_json::to_value(default).expect("a field value serialises");
        }
    }
}

/// Checks every given field against its bounds. A value of the wrong type
/// is left to serde, whose message names the expected type.
fn bounds(
    object: &serde_json::Map<String, serde_json::Value>,
    fields: &[FieldSchema],
) -> Result<(), FieldError> {
    for field in fields {
        let Some(value) = object
            .get(&field.name)
            .and_then(|v| as_field_value(field.ty, v))
        else {
            continue;
        };
        field.check(&value)?;
    }
    Ok(())
}

fn as_field_value(ty: FieldType, value: &serde_json::Value) -> Option<FieldValue> {
    Some(match ty {
        FieldType::Integer { .. } => FieldValue::Integer(match value {
            serde_json::Value::Number(n) => n
                .as_i64()
                // Larger than i64: surely out of range; report it as the largest.
                .or_else(|| n.as_u64().map(|_| i64::MAX))?,
            _ => return None,
        }),
        FieldType::Text { .. } => FieldValue::Text(value.as_str()?.to_owned()),
        FieldType::Lines { .. } => FieldValue::Lines(
            value
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Steps {
        steps: u32,
        words: Option<Vec<String>>,
    }
    impl Params for Steps {
        fn fields() -> Vec<FieldSchema> {
            let mut words = FieldSchema::lines("words", 2, &["a"]);
            words.required = false;
            vec![FieldSchema::integer("steps", 1, 10, 4), words]
        }
        fn validate(&self) -> Result<(), FieldError> {
            if self
                .words
                .as_ref()
                .is_some_and(|w| w.len() as u32 > self.steps)
            {
                return Err(FieldError::new(
                    "words",
                    Problem::Invalid("more words than steps".into()),
                ));
            }
            Ok(())
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
        assert!(err(json!({"steps": 99999999999u64})).contains("steps: invalid value"));
        assert!(err(json!({"words": []})).ends_with("words: must be between 1 and 2, got 0"));
        assert!(err(json!({"words": ["a", ""]})).contains("words[1]: must not be empty"));
        assert!(
            err(json!({"steps": 1, "words": ["a", "b"]})).ends_with("words: more words than steps")
        );
        assert!(registry()
            .plan("steps", &json!({"steps": 2, "words": ["a", "b"]}))
            .is_ok());
    }

    #[test]
    fn the_schema_is_what_was_declared() {
        let r = registry();
        let schema = r.schema("steps").unwrap();
        assert_eq!(schema.fields.len(), 2);
        assert_eq!(
            schema.field("steps").unwrap().default,
            Some(FieldValue::Integer(4))
        );
        assert!(schema.in_form);
        assert_eq!(r.schemas().count(), 1);
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
