//! The paths of the HTTP API, in axum's syntax (`{id}` is a path segment).
//! The server's router and its lean stream path both read [`STREAMS`], and
//! the pages build their URLs with the functions below.

/// `POST`: start a job (JSON); `GET`: the session's jobs.
pub const JOBS: &str = "/api/jobs";
/// `GET`: a job's event stream (SSE).
pub const JOB_EVENTS: &str = "/api/jobs/{id}/events";
/// `POST`: cancel a job.
pub const JOB_CANCEL: &str = "/api/jobs/{id}/cancel";
/// `GET`: a page of a job's lines (JSON [`crate::LinesPage`]), see [`crate::lines`].
pub const JOB_LINES: &str = "/api/jobs/{id}/lines";
/// `GET`: a job's messages as plain text, one per line (`?follow=1`: live).
pub const JOB_OUTPUT: &str = "/api/jobs/{id}/output";
/// `GET`: the session's job feed (SSE), one `job` event per change.
pub const SESSION_EVENTS: &str = "/api/events";
/// Anything else under `/api/` is answered with a JSON 404.
pub const API_FALLBACK: &str = "/api/{*rest}";
/// `GET`: whether this server takes jobs: 200 `{"ready":true}`, or 503
/// `{"ready":false,"reason":"..."}` while its store fails or it shuts down.
/// For load balancers; it sets no cookie.
pub const READYZ: &str = "/readyz";
/// `GET`: 200 `{"healthy":true}` while the process serves, whatever its
/// store (liveness, for load balancers and orchestrators); no cookie.
pub const HEALTHZ: &str = "/healthz";
/// `GET`: the Prometheus text of the node's metrics (on the main port, or
/// only on `JOBSTREAM_METRICS_ADDR` when set); no cookie.
pub const METRICS: &str = "/metrics";
/// A job's page.
pub const JOB_PAGE: &str = "/jobs/{id}";

/// The routes that answer with an event stream.
pub const STREAMS: [&str; 2] = [JOB_EVENTS, SESSION_EVENTS];

/// Query parameter a client may resume with instead of `Last-Event-ID`
/// (an `EventSource` cannot set headers on its first request).
pub const LAST_EVENT_ID_PARAM: &str = "last_event_id";

/// `/api/jobs/ID/events`.
pub fn job_events(id: &str) -> String {
    JOB_EVENTS.replace("{id}", id)
}

/// `/api/jobs/ID/cancel`.
pub fn job_cancel(id: &str) -> String {
    JOB_CANCEL.replace("{id}", id)
}

/// `/api/jobs/ID/lines`.
pub fn job_lines(id: &str) -> String {
    JOB_LINES.replace("{id}", id)
}

/// `/api/jobs/ID/output`.
pub fn job_output(id: &str) -> String {
    JOB_OUTPUT.replace("{id}", id)
}

/// `/jobs/ID`.
pub fn job_page(id: &str) -> String {
    JOB_PAGE.replace("{id}", id)
}

/// Whether `path` (no query) matches `pattern`, where a `{name}` segment
/// matches one non-empty segment. Enough for the fixed routes above.
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let ok = if want.starts_with('{') && want.ends_with('}') {
                    !got.is_empty()
                } else {
                    want == got
                };
                if !ok {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether `path` is one of the [`STREAMS`].
pub fn is_stream(path: &str) -> bool {
    STREAMS.iter().any(|route| matches(route, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fill_in_the_id() {
        assert_eq!(job_events("abc"), "/api/jobs/abc/events");
        assert_eq!(job_cancel("abc"), "/api/jobs/abc/cancel");
        assert_eq!(job_page("abc"), "/jobs/abc");
        assert_eq!(job_lines("abc"), "/api/jobs/abc/lines");
        assert_eq!(job_output("abc"), "/api/jobs/abc/output");
    }

    #[test]
    fn stream_paths_match_segment_by_segment() {
        assert!(is_stream("/api/events"));
        assert!(is_stream("/api/jobs/abc/events"));
        assert!(!is_stream("/api/jobs//events"));
        assert!(!is_stream("/api/jobs/a/b/events"));
        assert!(!is_stream("/api/jobs/abc/cancel"));
        assert!(!is_stream("/api/jobs/abc/output"));
        assert!(!is_stream("/api/events/"));
        assert!(!is_stream("/api/jobs"));
    }
}
