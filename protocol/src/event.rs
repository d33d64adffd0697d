//! The events of a job's stream and of the session feed.
//!
//! A job stream (`GET /api/jobs/{id}/events`) carries, each with an `id:`
//! counting up from 1 within the job:
//!
//! * job messages as default (`message`) events, the text as data;
//! * [`STATE`] with the new state's name (`running`);
//! * [`PROGRESS`] with a [`Progress`];
//! * [`GAP`] with a [`Gap`] when events the reader needed no longer exist;
//! * [`END`] with an [`End`], then a default event whose data is
//!   [`CLOSE_SENTINEL`]: the last event of every stream.
//!
//! The session feed (`GET /api/events`) carries [`JOB`] events whose data is
//! a [`crate::JobSummary`].

use serde::{Deserialize, Serialize};

use crate::JobState;

/// The default event type: a job's message, and the sentinel.
pub const MESSAGE: &str = "message";
/// The job changed state; data is the state's name.
pub const STATE: &str = "state";
/// The job reported progress; data is a [`Progress`].
pub const PROGRESS: &str = "progress";
/// The job ended; data is an [`End`]. The sentinel follows.
pub const END: &str = "end";
/// Events were lost; data is a [`Gap`].
pub const GAP: &str = "gap";
/// A job of the session's list changed; data is a [`crate::JobSummary`].
pub const JOB: &str = "job";

/// The data of the very last event of a job's stream. A client closes its
/// `EventSource` on it once it has seen [`END`], so the browser does not
/// reconnect to a stream that has nothing more to say. A job message with
/// the same text comes before `end` and is an ordinary message.
pub const CLOSE_SENTINEL: &str = "__CLOSE_SSE__";

/// Longest progress label, in bytes.
pub const MAX_PROGRESS_LABEL: usize = 200;

/// The data of an [`END`] event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// The final state.
    pub state: JobState,
    /// Why it failed or was interrupted, for the job's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The data of a [`GAP`] event: events a reader missed because they no
/// longer exist. The event's id is `to`, so a reconnect resumes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// How many events were lost.
    pub lost: u64,
    /// Sequence id of the first lost event.
    pub from: u64,
    /// Sequence id of the last lost event; the stream resumes after it.
    pub to: u64,
}

/// The data of a [`PROGRESS`] event: how far along a job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// From 0 to 1.
    pub fraction: f64,
    /// What it is doing, in the job's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_their_documented_json() {
        let end = End {
            state: JobState::Failed,
            error: Some("boom".into()),
        };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"state":"failed","error":"boom"}"#
        );
        let ok = End {
            state: JobState::Succeeded,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"state":"succeeded"}"#
        );
        let gap = Gap {
            lost: 2,
            from: 1,
            to: 2,
        };
        assert_eq!(
            serde_json::to_string(&gap).unwrap(),
            r#"{"lost":2,"from":1,"to":2}"#
        );
        let p = Progress {
            fraction: 0.5,
            label: None,
        };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"fraction":0.5}"#);
        let back: End = serde_json::from_str(r#"{"state":"succeeded"}"#).unwrap();
        assert_eq!(back, ok);
    }
}
