//! The HTTP API: JSON handlers and the two event streams. Paths come from
//! `jobstream_protocol::routes`, so the router, the lean stream path and the
//! pages agree on them.
//!
//! * [`jobs`]: `POST /api/jobs` (start), `GET /api/jobs` (list),
//!   `POST /api/jobs/{id}/cancel`.
//! * [`output`]: `GET /api/jobs/{id}/lines` (a page of numbered lines) and
//!   `GET /api/jobs/{id}/output` (the whole output as text, or followed).
//! * [`stream`]: `GET /api/jobs/{id}/events` (a job's stream, with resume)
//!   and `GET /api/events` (the session's job-list feed).
//! * [`timers`]: keep-alive, lifetime and shutdown of a stream.

use crate::error::ApiError;

pub mod jobs;
pub mod output;
pub mod stream;
pub mod timers;

pub use jobs::{cancel_job, create_job, list_jobs, CreateJob, Created, ListQuery, MAX_LIST};
pub use output::{lines, output};
pub use stream::{events, session_events};
pub use timers::KeepAliveTicks;

/// `GET /healthz`: 200 while the process serves (whatever its store).
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"healthy": true}))
}

/// `GET /readyz`: 200 while the server takes jobs, 503 with the reason
/// while its store fails to write, is behind or does not answer, or it is
/// shutting down.
pub async fn readyz(
    axum::extract::State(engine): axum::extract::State<jobstream_engine::Engine>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::Json;
    match engine.ready_and_answering().await {
        Ok(()) => Json(serde_json::json!({"ready": true})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "reason": reason})),
        )
            .into_response(),
    }
}

/// Any other path under `/api`.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}
