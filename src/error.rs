//! The HTTP API's errors, mapped to status codes in one place. Messages say
//! what the caller can fix; internals go to the server log only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jobstream_engine::SubmitError;

/// An API error: a status and a message for the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// 403: a cross-site request to a state-changing endpoint.
    #[error("cross-site requests are not allowed")]
    CrossSite,
    /// 404: unknown job, or a job of another session (indistinguishable).
    #[error("no such job")]
    JobNotFound,
    /// 404: no such route.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// 409: the job has already ended (so it cannot be cancelled).
    #[error("{0}")]
    Conflict(String),
    /// 415: the body is not JSON.
    #[error("expected a JSON body with Content-Type: application/json")]
    NotJson,
    /// 429: too many open streams (for this session, or in all).
    #[error("{0}")]
    TooManyStreams(String),
    /// 503: the server is shutting down.
    #[error("the server is restarting; try again in a moment")]
    Draining,
    /// 503: the job store failed; the details go to the server log.
    #[error("the job store is unavailable; try again shortly")]
    Store,
    /// 503: the engine cannot take the job now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Plan(p) => ApiError::BadRequest(p.to_string()),
            e @ (SubmitError::QueueFull { .. } | SubmitError::ShuttingDown) => {
                ApiError::Unavailable(e.to_string())
            }
        }
    }
}

impl From<jobstream_engine::StoreError> for ApiError {
    fn from(e: jobstream_engine::StoreError) -> Self {
        tracing::error!(error = %e, "job store");
        ApiError::Store
    }
}

impl From<jobstream_engine::CancelError> for ApiError {
    fn from(e: jobstream_engine::CancelError) -> Self {
        use jobstream_engine::CancelError;
        match e {
            CancelError::NotFound => ApiError::JobNotFound,
            e @ CancelError::Ended(_) => ApiError::Conflict(e.to_string()),
            CancelError::Store => ApiError::Store,
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::JobNotFound | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Draining | ApiError::Store => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
