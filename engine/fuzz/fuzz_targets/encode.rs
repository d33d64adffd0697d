//! The SSE encoder on arbitrary text: the frame must be exactly one event
//! whose fields a parser reads back as the text (line ends as LF).
#![no_main]

use jobstream_engine::sse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, &str)| {
    let (id, text) = input;
    let frame = sse::event(id, None, text);
    let frame = std::str::from_utf8(&frame).expect("frames are UTF-8");
    // One event: it ends with the only blank line.
    let body = frame.strip_suffix("\n\n").expect("an event ends with a blank line");
    assert!(!body.contains("\n\n"), "one emit must be one event");
    assert!(!body.contains('\r'), "no CR may reach the wire");
    let mut lines = body.split('\n');
    assert_eq!(lines.next(), Some(format!("id: {id}").as_str()));
    let data: Vec<&str> = lines
        .map(|l| l.strip_prefix("data: ").expect("every other line is a data line"))
        .collect();
    assert_eq!(data.join("\n"), text.replace("\r\n", "\n").replace('\r', "\n"));
});
