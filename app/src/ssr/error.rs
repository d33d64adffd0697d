//! Every error a visitor or an API client can be shown, in one enum, with
//! its HTTP status and its text in each language (Fluent keys `error-*`).
//!
//! Both doors use it: the server functions behind the pages (through
//! [`UserError::into_server_error`]) and the JSON API (whose `ApiError`
//! answers with [`UserError::status`] and [`UserError::english`]). So a text
//! like "the job store is unavailable" is written once, in `en.ftl`, and
//! translated next to it. Internals (store failures) go to the log, never to
//! the visitor.

use jobstream_engine::{CancelError, PlanError, StoreError, SubmitError};
use jobstream_protocol::{JobState, Problem};
use leptos::prelude::{use_context, ServerFnError};

use crate::i18n::{tr, Arg, Locale};

/// Which limit on open streams was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamLimit {
    /// The session has this many streams open already.
    Session(usize),
    /// The server has this many streams open, its limit.
    Server(usize),
}

/// An error a person (or a script) is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// 400: a request the server cannot read; the detail says why. It names
    /// JSON and serde details, so it is shown as it is in every language.
    BadRequest(String),
    /// 400: no job kind of that name.
    UnknownKind { kind: String, known: Vec<String> },
    /// 400: the params do not fit the kind (`field` is `None` when the
    /// problem is with the whole object).
    BadParams {
        kind: String,
        field: Option<String>,
        problem: Problem,
    },
    /// 400: the language switcher got a tag we do not have.
    UnknownLanguage(String),
    /// 400: an empty display name.
    NameEmpty,
    /// 400: a display name longer than `max` characters.
    NameTooLong { max: usize, got: usize },
    /// 403: a cross-site request to a state-changing endpoint.
    CrossSite,
    /// 404: unknown job, or a job of another session (indistinguishable).
    JobNotFound,
    /// 404: no such endpoint (the path asked for).
    NoRoute(String),
    /// 409: the job has already ended (so it cannot be cancelled).
    Ended(JobState),
    /// 415: the body is not JSON.
    NotJson,
    /// 429: too many open streams.
    TooManyStreams(StreamLimit),
    /// 429: the session has `limit` queued or running jobs.
    TooManyJobs { limit: usize },
    /// 429: the client's address has `limit` queued or running jobs.
    TooManyJobsFromAddress { limit: usize },
    /// 429: the session started `limit` jobs within the minute; the next
    /// start is taken in `retry_after` seconds.
    TooManyStarts { limit: u32, retry_after: u64 },
    /// 500: a request the session middleware did not see (a bug).
    NoSession,
    /// 500: anything else that should not happen; details are logged.
    Internal,
    /// 503: the job store failed; the details go to the server log.
    StoreUnavailable,
    /// 503: the queue holds `capacity` jobs already.
    QueueFull { capacity: usize },
    /// 503: the engine is shutting down and takes no new jobs.
    ShuttingDown,
    /// 503: the server is draining its connections before it stops.
    Draining,
}

impl UserError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            UserError::BadRequest(_)
            | UserError::UnknownKind { .. }
            | UserError::BadParams { .. }
            | UserError::UnknownLanguage(_)
            | UserError::NameEmpty
            | UserError::NameTooLong { .. } => S::BAD_REQUEST,
            UserError::CrossSite => S::FORBIDDEN,
            UserError::JobNotFound | UserError::NoRoute(_) => S::NOT_FOUND,
            UserError::Ended(_) => S::CONFLICT,
            UserError::NotJson => S::UNSUPPORTED_MEDIA_TYPE,
            UserError::TooManyStreams(_)
            | UserError::TooManyJobs { .. }
            | UserError::TooManyJobsFromAddress { .. }
            | UserError::TooManyStarts { .. } => S::TOO_MANY_REQUESTS,
            UserError::NoSession | UserError::Internal => S::INTERNAL_SERVER_ERROR,
            UserError::StoreUnavailable
            | UserError::QueueFull { .. }
            | UserError::ShuttingDown
            | UserError::Draining => S::SERVICE_UNAVAILABLE,
        }
    }

    /// What to tell the visitor, in `locale`.
    pub fn message(&self, locale: Locale) -> String {
        let (id, args) = self.text(locale);
        let args: Vec<_> = args.iter().map(|(k, v)| (*k, Arg::Text(v))).collect();
        tr(locale, id, &args)
    }

    /// The English text: what the JSON API answers with.
    pub fn english(&self) -> String {
        self.message(Locale::En)
    }

    /// Seconds after which trying again may help (`Retry-After`), for
    /// the answers that say to wait (429, 503).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            UserError::TooManyStarts { retry_after, .. } => Some(*retry_after),
            _ if matches!(
                self.status(),
                http::StatusCode::SERVICE_UNAVAILABLE | http::StatusCode::TOO_MANY_REQUESTS
            ) =>
            {
                Some(5)
            }
            _ => None,
        }
    }

    /// For a server function: sets the response's status (and
    /// `Retry-After`) and gives the error with its text in `locale`.
    pub fn into_server_error(self, locale: Locale) -> ServerFnError {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(self.status());
            if let Some(secs) = self.retry_after() {
                response.insert_header(http::header::RETRY_AFTER, secs.into());
            }
        }
        ServerFnError::new(self.message(locale))
    }

    /// The Fluent message and its variables.
    fn text(&self, locale: Locale) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            UserError::BadRequest(detail) => {
                ("error-bad-request", vec![("detail", detail.clone())])
            }
            UserError::UnknownKind { kind, known } => (
                "error-unknown-kind",
                vec![("kind", format!("{kind:?}")), ("known", known.join(", "))],
            ),
            UserError::BadParams {
                kind,
                field,
                problem,
            } => {
                let mut args = vec![
                    ("kind", format!("{kind:?}")),
                    ("problem", problem_text(problem, locale)),
                ];
                match field {
                    Some(field) => {
                        args.push(("field", field.clone()));
                        ("error-bad-field", args)
                    }
                    None => ("error-bad-params", args),
                }
            }
            UserError::UnknownLanguage(tag) => {
                ("error-unknown-language", vec![("tag", format!("{tag:?}"))])
            }
            UserError::NameEmpty => ("error-name-empty", vec![]),
            UserError::NameTooLong { max, got } => (
                "error-name-too-long",
                vec![("max", max.to_string()), ("got", got.to_string())],
            ),
            UserError::CrossSite => ("error-cross-site", vec![]),
            UserError::JobNotFound => ("error-job-not-found", vec![]),
            UserError::NoRoute(path) => ("error-no-route", vec![("path", path.clone())]),
            UserError::Ended(state) => (
                "error-job-ended",
                vec![("state", tr(locale, &format!("state-{state}"), &[]))],
            ),
            UserError::NotJson => ("error-not-json", vec![]),
            UserError::TooManyStreams(StreamLimit::Session(limit)) => {
                ("error-session-streams", vec![("limit", limit.to_string())])
            }
            UserError::TooManyStreams(StreamLimit::Server(limit)) => {
                ("error-server-streams", vec![("limit", limit.to_string())])
            }
            UserError::TooManyJobs { limit } => {
                ("error-session-jobs", vec![("limit", limit.to_string())])
            }
            UserError::TooManyJobsFromAddress { limit } => {
                ("error-address-jobs", vec![("limit", limit.to_string())])
            }
            UserError::TooManyStarts { limit, retry_after } => (
                "error-session-starts",
                vec![
                    ("limit", limit.to_string()),
                    ("secs", retry_after.to_string()),
                ],
            ),
            UserError::NoSession => ("error-no-session", vec![]),
            UserError::Internal => ("error-internal", vec![]),
            UserError::StoreUnavailable => ("error-store", vec![]),
            UserError::QueueFull { capacity } => {
                ("error-queue-full", vec![("capacity", capacity.to_string())])
            }
            UserError::ShuttingDown => ("error-shutting-down", vec![]),
            UserError::Draining => ("error-draining", vec![]),
        }
    }
}

/// A field's problem as the API says it after the field's name
/// (`must be between 1 and 1000, got 0`), in `locale`.
fn problem_text(problem: &Problem, locale: Locale) -> String {
    let t = |id, args: &[(&str, String)]| {
        let args: Vec<_> = args.iter().map(|(k, v)| (*k, Arg::Text(v))).collect();
        tr(locale, id, &args)
    };
    match problem {
        Problem::OutOfRange { min, max, got } => t(
            "problem-range",
            &[
                ("min", min.to_string()),
                ("max", max.to_string()),
                ("got", got.to_string()),
            ],
        ),
        Problem::TooLong { max, got } => t(
            "problem-too-long",
            &[("max", max.to_string()), ("got", got.to_string())],
        ),
        Problem::Empty => t("problem-empty", &[]),
        Problem::NotANumber => t("problem-number", &[]),
        // Serde's and the kinds' own words: not ours to translate.
        Problem::Invalid(text) => text.clone(),
    }
}

/// A field's problem as the start form shows it under the field
/// (`Must be a whole number from 1 to 1000.`), in `locale`.
pub fn form_problem(problem: &Problem, locale: Locale) -> String {
    match problem {
        Problem::OutOfRange { min, max, .. } => tr(
            locale,
            "err-range",
            &[
                ("min", Arg::Text(&min.to_string())),
                ("max", Arg::Text(&max.to_string())),
            ],
        ),
        Problem::TooLong { max, .. } => tr(
            locale,
            "err-too-long",
            &[("max", Arg::Text(&max.to_string()))],
        ),
        Problem::Empty => tr(locale, "err-empty", &[]),
        Problem::NotANumber => tr(locale, "err-number", &[]),
        Problem::Invalid(detail) => tr(locale, "err-invalid", &[("detail", Arg::Text(detail))]),
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.english())
    }
}

impl std::error::Error for UserError {}

/// The JSON door: `{"error": "<English text>"}` with the status, and a
/// `Retry-After` when trying again later will help (429, 503).
impl axum::response::IntoResponse for UserError {
    fn into_response(self) -> axum::response::Response {
        use http::{header, HeaderValue};
        let status = self.status();
        let body = serde_json::json!({ "error": self.english() });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<PlanError> for UserError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::UnknownKind { kind, known } => UserError::UnknownKind { kind, known },
            PlanError::BadParams {
                kind,
                field,
                problem,
            } => UserError::BadParams {
                kind,
                field,
                problem,
            },
        }
    }
}

impl From<SubmitError> for UserError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Plan(e) => e.into(),
            SubmitError::QueueFull { capacity } => {
                tracing::warn!(capacity, "job refused: the queue is full");
                UserError::QueueFull { capacity }
            }
            SubmitError::ShuttingDown => UserError::ShuttingDown,
            SubmitError::StoreUnavailable => {
                tracing::warn!("job refused: the store is unavailable");
                UserError::StoreUnavailable
            }
            SubmitError::TooManyJobs { limit } => UserError::TooManyJobs { limit },
            SubmitError::TooManyJobsFromAddress { limit } => {
                tracing::info!(limit, "job refused: its address has too many jobs");
                UserError::TooManyJobsFromAddress { limit }
            }
            SubmitError::TooManyStarts { limit, retry_after } => UserError::TooManyStarts {
                limit,
                retry_after: retry_after.as_secs().max(1),
            },
        }
    }
}

impl From<CancelError> for UserError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NotFound => UserError::JobNotFound,
            CancelError::Ended(state) => UserError::Ended(state),
            CancelError::Store => {
                // The engine has logged the store's own error already.
                tracing::warn!("cancel refused: the job store is unavailable");
                UserError::StoreUnavailable
            }
        }
    }
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "job store");
        UserError::StoreUnavailable
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
