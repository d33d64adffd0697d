//! The `Last-Event-ID` parser on arbitrary input: never panics, and accepts
//! exactly the canonical-length decimal numbers that fit in a u64.
#![no_main]

use jobstream_engine::sse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let parsed = sse::parse_event_id(text);
    let expected = (!text.is_empty()
        && text.len() <= sse::MAX_EVENT_ID_DIGITS
        && text.bytes().all(|b| b.is_ascii_digit()))
    .then(|| text.parse::<u64>().ok())
    .flatten();
    assert_eq!(parsed.ok(), expected);
    if let Ok(n) = parsed {
        assert!(n.to_string().len() <= text.len());
    }
});
