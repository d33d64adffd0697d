//! The JSON handlers of jobs.
//!
//! * `POST /api/jobs` `{"kind": "...", "params": {...}}` → 201
//!   `{"id": "...", "url": "/jobs/..."}`.
//! * `GET /api/jobs` → `{"jobs": [summary, ...]}`, the session's newest
//!   jobs first (`?limit=` 1 to 500, default 100).
//! * `POST /api/jobs/{id}/cancel` → 202 with the job's summary (200 when it
//!   is already `cancelled`), 409 when it has ended otherwise.

use app::ssr::Visitor;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jobstream_engine::{Engine, JobId, NewJob};
use jobstream_protocol::routes;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Body of `POST /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// A registered kind, e.g. `demo`.
    pub kind: String,
    /// The kind's parameters; missing means defaults.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// Answer of `POST /api/jobs`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    /// The job's id.
    pub id: String,
    /// Its page.
    pub url: String,
}

/// `POST /api/jobs`.
pub async fn create_job(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::NotJson);
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    let request: CreateJob = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body at {path}: {inner}"))
        }
    })?;
    let job = engine
        .submit(NewJob {
            owner: visitor.session,
            kind: request.kind,
            params: request.params,
            display_name: visitor.display_name,
            locale: visitor.locale.tag().to_owned(),
            client: visitor.client,
        })
        .await?;
    let url = routes::job_page(&job.id.to_string());
    let location = HeaderValue::from_str(&url).expect("ids are URL-safe");
    let body = Json(Created {
        id: job.id.to_string(),
        url,
    });
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response())
}

/// Query of `GET /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many jobs, 1 to 500 (default 100).
    pub limit: Option<usize>,
}

/// Most jobs one list answer holds.
pub const MAX_LIST: usize = 500;

/// `GET /api/jobs`.
pub async fn list_jobs(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: ListQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be between 1 and {MAX_LIST}, got {limit}"
        )));
    }
    let jobs = engine.list(visitor.session, limit).await?;
    Ok(Json(serde_json::json!({ "jobs": jobs })).into_response())
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel_job(
    State(engine): State<Engine>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::JobNotFound)?;
    let job = engine.cancel(visitor.session, id).await?;
    let summary = job.summary();
    let status = if summary.state.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(summary)).into_response())
}
