//! Our SSE encoding, read back by an independent, spec-conformant parser.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream_engine::{EventLog, JobState, LogLimits};

async fn parse(bytes: Vec<u8>) -> Vec<eventsource_stream::Event> {
    let chunks = futures_util::stream::iter(
        // Split at every byte so no framing relies on chunk boundaries.
        bytes.into_iter().map(|b| Ok::<_, std::io::Error>(vec![b])),
    );
    chunks
        .eventsource()
        .map(|e| e.expect("valid SSE"))
        .collect()
        .await
}

#[tokio::test]
async fn every_message_comes_back_as_one_event_with_its_id() {
    let messages = [
        "plain",
        "two\nlines",
        "crlf\r\nline",
        "lone\rcr",
        "trailing newline\n",
        "\nleading newline",
        " leading space",
        ":colon first",
        "data: injected\n\nid: 99\nevent: end",
        "__CLOSE_SSE__",
        "</script><img src=x onerror=alert(1)>",
        "tab\tand unicode é ✓ 🦀",
        "nul\0inside",
    ];
    let log = EventLog::new(LogLimits::default());
    for m in messages {
        log.append_message(m).await.unwrap();
    }
    log.close(JobState::Succeeded, None).await.unwrap();
    let mut bytes = Vec::new();
    for e in log.snapshot().events {
        bytes.extend_from_slice(&e.frame);
    }
    let events = parse(bytes).await;
    assert_eq!(events.len(), messages.len() + 2);
    for (i, (event, sent)) in events.iter().zip(messages).enumerate() {
        // SSE has one line end on the wire; clients rebuild lines with LF.
        let expected = sent.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(event.data, expected, "message {i}");
        assert_eq!(event.event, "message");
        assert_eq!(event.id, (i + 1).to_string());
    }
    let end = &events[messages.len()];
    assert_eq!(end.event, "end");
    assert_eq!(end.data, r#"{"state":"succeeded"}"#);
    let close = &events[messages.len() + 1];
    assert_eq!(
        (close.event.as_str(), close.data.as_str()),
        ("message", "__CLOSE_SSE__")
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Text that stresses the framing: line ends of all three kinds, field
    /// look-alikes, the sentinel, NUL, spaces and non-ASCII, in any mix.
    fn message() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\n".to_owned()),
            Just("\r".to_owned()),
            Just("\r\n".to_owned()),
            Just("data: ".to_owned()),
            Just("id: 7".to_owned()),
            Just("event: end".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\0".to_owned()),
            Just("__CLOSE_SSE__".to_owned()),
            Just("é🦀".to_owned()),
            "[a-z]{1,5}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 1..8)
            .prop_map(|p| p.concat())
            .prop_filter("non-empty", |s| !s.is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_messages_come_back_with_their_ids(
            messages in prop::collection::vec(message(), 1..20),
            chunk in 1usize..64,
        ) {
            let log = EventLog::new(LogLimits::default());
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for m in &messages {
                rt.block_on(log.append_message(m)).unwrap();
            }
            let bytes: Vec<u8> = log.snapshot().events.iter().flat_map(|e| e.frame.to_vec()).collect();
            let events: Vec<eventsource_stream::Event> = rt.block_on(
                futures_util::stream::iter(bytes.chunks(chunk).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>())
                    .eventsource()
                    .map(|e| e.expect("valid SSE"))
                    .collect(),
            );
            prop_assert_eq!(events.len(), messages.len());
            for (i, (event, sent)) in events.iter().zip(&messages).enumerate() {
                prop_assert_eq!(&event.data, &sent.replace("\r\n", "\n").replace('\r', "\n"));
                prop_assert_eq!(&event.id, &(i + 1).to_string());
                prop_assert_eq!(&event.event, "message");
            }
        }
    }
}
