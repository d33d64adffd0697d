//! Server-Sent Events framing.
//!
//! Every event is encoded here once, when it is appended to a job's log, and
//! the resulting bytes are shared by every subscriber (see [`crate::log`]).
//!
//! Text may contain LF, CRLF or a lone CR. The SSE grammar treats all three
//! as line ends, so each line of the text becomes its own `data:` line, and a
//! conforming client joins them back with `\n`:
//!
//! ```
//! use jobstream_engine::sse;
//! let frame = sse::event(7, None, "one\r\ntwo\rthree");
//! assert_eq!(&frame[..], b"id: 7\ndata: one\ndata: two\ndata: three\n\n");
//! ```
//!
//! A line is always written as `data: ` followed by the text: the parser
//! strips exactly one space after the colon, so text that itself starts with
//! a space or a colon survives.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

/// The data of the very last event of a job's stream (see the protocol).
pub use jobstream_protocol::CLOSE_SENTINEL;

/// A comment line sent on idle streams so proxies do not time them out.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Splits text at LF, CRLF and lone CR, the three line ends of the SSE
/// grammar. Always yields at least one (possibly empty) line.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

/// At least the length of [`event`]'s frame for `data`: what a frame may
/// take, known before it is made.
pub fn frame_bound(event_type: Option<&str>, data: &str) -> usize {
    data.len() + lines(data).count() * 7 + 32 + event_type.map_or(0, |t| t.len() + 8)
}

/// Encodes one event: `id:`, optional `event:` and one `data:` line per
/// line of `data`.
///
/// `event_type` must be a fixed name chosen by this crate (no line ends).
pub fn event(id: u64, event_type: Option<&str>, data: &str) -> Bytes {
    debug_assert!(event_type.is_none_or(|t| !t.contains(['\r', '\n'])));
    let mut buf = BytesMut::with_capacity(frame_bound(event_type, data));
    // Writing an integer into a growable buffer cannot fail.
    writeln!(buf, "id: {id}").expect("BytesMut grows as needed");
    if let Some(t) = event_type {
        buf.put_slice(b"event: ");
        buf.put_slice(t.as_bytes());
        buf.put_u8(b'\n');
    }
    for line in lines(data) {
        buf.put_slice(b"data: ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

/// Most digits an event id can have (`u64::MAX` has 20).
pub const MAX_EVENT_ID_DIGITS: usize = 20;

/// Why a `Last-Event-ID` is not an event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a decimal event id (0 to {})", u64::MAX)]
pub struct InvalidEventId;

/// Parses an event id as a client sends it back in `Last-Event-ID`: 1 to 20
/// ASCII digits, nothing else (no sign, no spaces), at most `u64::MAX`.
/// Runs in time linear in at most 20 bytes, whatever it is given.
pub fn parse_event_id(text: &str) -> Result<u64, InvalidEventId> {
    if text.is_empty()
        || text.len() > MAX_EVENT_ID_DIGITS
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(InvalidEventId);
    }
    text.parse().map_err(|_| InvalidEventId)
}

/// A `retry:` field telling the client how long to wait before reconnecting.
pub fn retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_kind_of_line_end() {
        let got: Vec<_> = lines("a\nb\r\nc\rd").collect();
        assert_eq!(got, ["a", "b", "c", "d"]);
        let got: Vec<_> = lines("\r\n\n\r").collect();
        assert_eq!(got, ["", "", "", ""]);
        assert_eq!(lines("").collect::<Vec<_>>(), [""]);
        assert_eq!(lines("x\n").collect::<Vec<_>>(), ["x", ""]);
        // CR then LF later is two line ends only when adjacent.
        assert_eq!(lines("a\r\rb").collect::<Vec<_>>(), ["a", "", "b"]);
    }

    #[test]
    fn parses_event_ids_strictly() {
        assert_eq!(parse_event_id("0"), Ok(0));
        assert_eq!(parse_event_id("42"), Ok(42));
        assert_eq!(parse_event_id("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            " 1",
            "1 ",
            "+1",
            "-1",
            "1.0",
            "0x10",
            "18446744073709551616",
            "000000000000000000001",
            "１",
        ] {
            assert_eq!(parse_event_id(bad), Err(InvalidEventId), "{bad:?}");
        }
    }

    #[test]
    fn encodes_single_line() {
        assert_eq!(&event(1, None, "hello")[..], b"id: 1\ndata: hello\n\n");
    }

    #[test]
    fn encodes_named_events() {
        assert_eq!(
            &event(42, Some("end"), r#"{"state":"succeeded"}"#)[..],
            b"id: 42\nevent: end\ndata: {\"state\":\"succeeded\"}\n\n"
        );
    }

    #[test]
    fn keeps_leading_space_and_field_lookalikes_inside_data() {
        assert_eq!(
            &event(3, None, " x\ndata: y\nid: 9\n: c")[..],
            b"id: 3\ndata:  x\ndata: data: y\ndata: id: 9\ndata: : c\n\n"
        );
    }

    #[test]
    fn crlf_and_cr_become_separate_data_lines() {
        assert_eq!(
            &event(5, None, "a\r\nb\rc\n")[..],
            b"id: 5\ndata: a\ndata: b\ndata: c\ndata: \n\n"
        );
    }
}
