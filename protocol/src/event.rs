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

/// The data of an [`END`], [`GAP`] or [`PROGRESS`] event read as one
/// type: the union of their fields, each optional. A client that reads
/// all three needs one JSON decoder instead of three (the browser bundle
/// does); [`AnyPayload::end`] and the others then take the fields each
/// event must have. Unknown fields are ignored, as by the three types.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AnyPayload {
    /// [`End::state`].
    pub state: Option<JobState>,
    /// [`End::error`].
    pub error: Option<String>,
    /// [`Gap::lost`].
    pub lost: Option<u64>,
    /// [`Gap::from`].
    pub from: Option<u64>,
    /// [`Gap::to`].
    pub to: Option<u64>,
    /// [`Progress::fraction`].
    pub fraction: Option<f64>,
    /// [`Progress::label`].
    pub label: Option<String>,
}

impl AnyPayload {
    /// As an [`End`], if it has a state.
    pub fn end(self) -> Option<End> {
        Some(End {
            state: self.state?,
            error: self.error,
        })
    }

    /// As a [`Gap`], if it has its three numbers.
    pub fn gap(self) -> Option<Gap> {
        Some(Gap {
            lost: self.lost?,
            from: self.from?,
            to: self.to?,
        })
    }

    /// As a [`Progress`], if it has a fraction.
    pub fn progress(self) -> Option<Progress> {
        Some(Progress {
            fraction: self.fraction?,
            label: self.label,
        })
    }
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

    #[test]
    fn any_payload_reads_each_event_as_its_own_type_would() {
        let read = |json: &str| serde_json::from_str::<AnyPayload>(json).unwrap();
        let end = End {
            state: JobState::Failed,
            error: Some("boom".into()),
        };
        let json = serde_json::to_string(&end).unwrap();
        assert_eq!(read(&json).end(), Some(end));
        let ok = End {
            state: JobState::Succeeded,
            error: None,
        };
        assert_eq!(read(&serde_json::to_string(&ok).unwrap()).end(), Some(ok));
        let gap = Gap {
            lost: 2,
            from: 1,
            to: 2,
        };
        assert_eq!(read(&serde_json::to_string(&gap).unwrap()).gap(), Some(gap));
        let progress = Progress {
            fraction: 0.25,
            label: Some("Sieving".into()),
        };
        let json = serde_json::to_string(&progress).unwrap();
        assert_eq!(read(&json).progress(), Some(progress));
        // An event without its required fields is not taken for another.
        assert_eq!(read(r#"{"lost":2}"#).gap(), None);
        assert_eq!(read(r#"{"fraction":0.5}"#).end(), None);
        assert_eq!(read(r#"{"state":"failed","x":1}"#).progress(), None);
    }
}
