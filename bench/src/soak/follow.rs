//! Following a `bench` job's stream across reconnections: every numbered
//! message exactly once and in order, only a `gap` event excusing one that
//! is missing.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::server::{Open, Server};
use crate::hist::Histogram;
use crate::now_ns;

/// The ids of complete events, read from the raw stream next to
/// `sse::Parser` (which leaves ids to the caller): the id of the last
/// complete event is where a resume starts.
#[derive(Default)]
pub(super) struct Ids {
    pub(super) line: Vec<u8>,
    pub(super) current: u64,
    /// The id of the last event completed (its blank line seen).
    pub(super) complete: u64,
}

impl Ids {
    /// jobstream ends its lines with LF only.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            if self.line.is_empty() {
                self.complete = self.complete.max(self.current);
            } else if let Some(id) = self.line.strip_prefix(b"id: ") {
                if let Some(id) = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()) {
                    self.current = id;
                }
            }
            self.line.clear();
        }
    }
}

/// What a follower of one `bench` job saw, over all its connections.
#[derive(Default)]
pub(super) struct Follow {
    /// The last message's number (`SEQ` of the payload).
    pub(super) seq: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) dup: u64,
    /// Messages missing but announced by a `gap` event.
    pub(super) gapped: u64,
    /// Events a `gap` event announced, not yet matched to a jump.
    pub(super) gap_allowance: u64,
    pub(super) gaps: u64,
    /// The `end` event and then the sentinel came.
    pub(super) ended: bool,
    pub(super) saw_end: bool,
    /// Connections after the first.
    pub(super) resumes: u64,
    /// Connections the server ended before the job's end.
    pub(super) server_closed: u64,
    pub(super) hist: Histogram,
}

impl Follow {
    /// Reads a chunk of the stream.
    pub(super) fn feed(&mut self, parser: &mut crate::sse::Parser, ids: &mut Ids, chunk: &[u8]) {
        ids.feed(chunk);
        let now = now_ns();
        parser.feed(chunk, &mut |event, data| match event {
            "gap" => {
                self.gaps += 1;
                let lost = serde_json::from_str::<Value>(data)
                    .ok()
                    .and_then(|v| v["lost"].as_u64())
                    .unwrap_or(0);
                self.gap_allowance += lost;
            }
            "end" => self.saw_end = true,
            "message" if data == "__CLOSE_SSE__" && self.saw_end => self.ended = true,
            "message" => {
                let mut parts = data.splitn(3, ' ');
                let (Some(Ok(seq)), Some(Ok(emitted))) = (
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    return;
                };
                self.received += 1;
                if seq <= self.seq {
                    self.dup += 1;
                    return;
                }
                let missing = seq - self.seq - 1;
                let excused = missing.min(self.gap_allowance);
                self.gap_allowance -= excused;
                self.gapped += excused;
                self.lost += missing - excused;
                self.seq = seq;
                self.hist.record(now.saturating_sub(emitted) / 1000);
            }
            _ => {}
        });
    }

    /// The job said `events` messages: those not seen (nor excused by a
    /// gap) are lost.
    pub(super) fn finish(&mut self, events: u64) {
        let missing = events.saturating_sub(self.seq);
        let excused = missing.min(self.gap_allowance);
        self.gapped += excused;
        self.lost += missing - excused;
    }
}

/// How a follower behaves.
#[derive(Clone, Copy)]
pub(super) struct Manner {
    /// Drop the connection after this many messages on it, and resume.
    pub(super) drop_every: Option<u64>,
    pub(super) source: usize,
}

/// Follows job `id` (a `bench` job of `events` messages) to its end, from
/// `from` (a `Last-Event-ID`), reconnecting with the last complete id when
/// the server or the manner ends a connection.
pub(super) async fn follow(
    server: &Server,
    id: &str,
    events: u64,
    from: u64,
    mut f: Follow,
    manner: Manner,
) -> Result<Follow, String> {
    let mut ids = Ids {
        complete: from,
        ..Ids::default()
    };
    let mut connections = 0;
    while !f.ended {
        if connections > 0 {
            f.resumes += 1;
        }
        connections += 1;
        if connections > 1000 {
            return Err(format!("job {id}: 1,000 connections and no end"));
        }
        let path = format!("/api/jobs/{id}/events?last_event_id={}", ids.complete);
        let (status, open) = server.open(&path, manner.source).await?;
        match status {
            200 => {}
            204 => break, // nothing after that id: the stream had ended
            other => return Err(format!("GET {path} answered {other}")),
        }
        let Open { mut tcp, first } = open;
        // Each connection starts with a fresh parser, as a browser's does.
        let mut parser = crate::sse::Parser::new();
        let at_start = f.received;
        f.feed(&mut parser, &mut ids, &first);
        let mut buf = vec![0u8; 64 * 1024];
        while !f.ended {
            if manner
                .drop_every
                .is_some_and(|n| f.received - at_start >= n)
            {
                break;
            }
            let read = tokio::time::timeout(Duration::from_secs(60), tcp.read(&mut buf))
                .await
                .map_err(|_| format!("job {id}: no bytes for 60 s"))?;
            match read {
                Ok(0) | Err(_) => {
                    f.server_closed += 1;
                    break;
                }
                Ok(n) => f.feed(&mut parser, &mut ids, &buf[..n]),
            }
        }
    }
    f.finish(events);
    Ok(f)
}

/// A `bench` job's parameters.
pub(super) fn bench_params(
    events: u64,
    size: usize,
    rate: u64,
    readers: u64,
    wait_ms: u64,
) -> Value {
    json!({"events": events, "size": size, "rate": rate, "readers": readers, "wait_ms": wait_ms})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_those_of_complete_events() {
        let mut ids = Ids::default();
        ids.feed(b"id: 1\nevent: state\ndata: running\n\nid: 2\nda");
        assert_eq!((ids.current, ids.complete), (2, 1));
        ids.feed(b"ta: x\n\n");
        assert_eq!(ids.complete, 2);
    }

    #[test]
    fn a_follower_counts_lost_duplicated_and_gap_excused_messages() {
        let mut f = Follow::default();
        let (mut p, mut ids) = (crate::sse::Parser::new(), Ids::default());
        let msg = |seq: u64| format!("id: {}\ndata: {seq} 1 xx\n\n", seq + 1);
        let stream = [
            msg(1),
            msg(2),
            msg(2),
            msg(4),
            "id: 6\nevent: gap\ndata: {\"lost\":2,\"from\":5,\"to\":6}\n\n".to_owned(),
            msg(7),
            "id: 9\nevent: end\ndata: {}\n\nid: 10\ndata: __CLOSE_SSE__\n\n".to_owned(),
        ]
        .concat();
        f.feed(&mut p, &mut ids, stream.as_bytes());
        f.finish(8);
        assert_eq!((f.received, f.dup, f.lost, f.gapped), (5, 1, 2, 2));
        assert!(f.ended);
        assert_eq!(ids.complete, 10);
    }
}
