//! The event log on its own, in memory: buffering, wake-ups, bounds and
//! shared bytes.

use std::sync::Arc;

use jobstream_engine::log::MAX_BATCH;
use jobstream_engine::{
    sse, AppendError, Batch, EventKind, EventLog, Gap, JobState, LogLimits, Poll,
};

fn seqs(b: &Batch) -> Vec<u64> {
    b.events.iter().map(|e| e.seq).collect()
}

fn texts(b: &Batch) -> Vec<&str> {
    b.events.iter().map(|e| &*e.text).collect()
}

fn batch(p: Poll) -> Batch {
    match p {
        Poll::Batch(b) => b,
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[tokio::test]
async fn buffers_before_anyone_subscribes() {
    let log = EventLog::new(LogLimits::default());
    log.append_message("one").await.unwrap();
    log.append_message("two").await.unwrap();
    let mut sub = log.subscribe(0);
    let b = batch(sub.try_next());
    assert_eq!(texts(&b), ["one", "two"]);
    assert_eq!(seqs(&b), [1, 2]);
    assert!(b.gap.is_none());
    assert!(matches!(sub.try_next(), Poll::Pending));
}

#[tokio::test]
async fn append_between_read_and_wait_is_not_missed() {
    // The recipe's race, forced: the reader has read the buffer and is
    // about to wait when the job appends.
    let log = EventLog::new(LogLimits::default());
    log.append_message("before").await.unwrap();
    let mut sub = log.subscribe(0);
    let first = sub.next().await.unwrap();
    assert_eq!(texts(&first), ["before"]);
    // `next` returned right after its read; the append now lands in the
    // window between that read and the next wait.
    log.append_message("between").await.unwrap();
    let second = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
        .await
        .expect("the reader was woken")
        .unwrap();
    assert_eq!(texts(&second), ["between"]);
    assert_eq!(seqs(&second), [2]);
}

#[tokio::test]
async fn subscriber_after_close_reads_everything_then_ends() {
    let log = EventLog::new(LogLimits::default());
    log.set_running().await.unwrap();
    log.append_message("a").await.unwrap();
    log.close(JobState::Succeeded, None).await.unwrap();
    let mut sub = log.subscribe(0);
    let b = sub.next().await.unwrap();
    let kinds: Vec<_> = b.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::State,
            EventKind::Message,
            EventKind::End,
            EventKind::Close
        ]
    );
    assert_eq!(&*b.events[2].text, r#"{"state":"succeeded"}"#);
    assert_eq!(&*b.events[3].text, sse::CLOSE_SENTINEL);
    assert!(sub.next().await.is_none());
    assert_eq!(log.state(), JobState::Succeeded);
    assert_eq!(log.append_message("late").await, Err(AppendError::Closed));
}

#[tokio::test]
async fn every_reader_shares_the_same_encoded_bytes() {
    let log = EventLog::new(LogLimits::default());
    log.append_message("shared").await.unwrap();
    let a = batch(log.subscribe(0).try_next());
    let b = batch(log.subscribe(0).try_next());
    let (fa, fb) = (a.frames().next().unwrap(), b.frames().next().unwrap());
    // Same allocation: encoded once, reference-counted for each reader.
    assert_eq!(fa.as_ptr(), fb.as_ptr());
    assert_eq!(fa.as_ptr(), log.snapshot().events[0].frame.as_ptr());
}

#[tokio::test]
async fn message_equal_to_sentinel_is_an_ordinary_message() {
    let log = EventLog::new(LogLimits::default());
    log.append_message(sse::CLOSE_SENTINEL).await.unwrap();
    log.append_message("after").await.unwrap();
    assert!(!log.is_closed());
    let b = batch(log.subscribe(0).try_next());
    assert_eq!(b.events[0].kind, EventKind::Message);
    assert_eq!(texts(&b), [sse::CLOSE_SENTINEL, "after"]);
}

#[tokio::test]
async fn oversized_and_empty_messages_are_refused() {
    let limits = LogLimits {
        max_message_bytes: 8,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    assert_eq!(
        log.append_message("123456789").await,
        Err(AppendError::TooLarge { size: 9, limit: 8 })
    );
    assert_eq!(log.append_message("").await, Err(AppendError::Empty));
    assert_eq!(log.append_message("12345678").await, Ok(1));
}

#[tokio::test]
async fn a_job_may_say_at_most_its_byte_bound_in_all() {
    let limits = LogLimits {
        max_job_bytes: 10,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    assert_eq!(log.append_message("123456").await, Ok(1));
    assert_eq!(log.append_message("1234").await, Ok(2));
    assert_eq!(
        log.append_message("x").await,
        Err(AppendError::JobTooLarge { limit: 10 })
    );
    // Nothing was kept of the refused one; the job can still end.
    assert_eq!(log.snapshot().events.len(), 2);
    log.close(JobState::Failed, Some("too much".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_job_may_say_at_most_its_bound_of_messages_in_all() {
    let limits = LogLimits {
        max_job_events: 3,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    for i in 1..=3 {
        assert_eq!(log.append_message("x").await, Ok(i));
    }
    assert_eq!(
        log.append_message("x").await,
        Err(AppendError::JobTooManyMessages { limit: 3 })
    );
    assert_eq!(log.snapshot().events.len(), 3);
    log.close(JobState::Failed, Some("too many".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn bound_on_events_drops_oldest_and_reports_gap() {
    let limits = LogLimits {
        max_events: 3,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    for i in 1..=5 {
        log.append_message(&format!("m{i}")).await.unwrap();
    }
    let snap = log.snapshot();
    assert_eq!(snap.dropped, 2);
    assert_eq!(snap.events.len(), 3);
    assert_eq!(snap.last_seq, 5);

    let mut from_start = log.subscribe(0);
    let b = batch(from_start.try_next());
    assert_eq!(
        b.gap,
        Some(Gap {
            lost: 2,
            from: 1,
            to: 2
        })
    );
    assert_eq!(seqs(&b), [3, 4, 5]);
    let frames: Vec<u8> = b.frames().flat_map(|f| f.to_vec()).collect();
    assert!(frames.starts_with(b"id: 2\nevent: gap\ndata: {\"lost\":2,\"from\":1,\"to\":2}\n\n"));

    // A reader that had seen event 2 lost nothing.
    let b = batch(log.subscribe(2).try_next());
    assert_eq!(b.gap, None);
    assert_eq!(seqs(&b), [3, 4, 5]);
}

#[tokio::test]
async fn bound_on_bytes_drops_oldest() {
    // Each event holds its text (10 bytes), its frame ("id: N\ndata:
    // xxxxxxxxxx\n\n", 24 bytes) and itself: room for two, not three.
    let one = 10 + 24 + std::mem::size_of::<jobstream_engine::Event>();
    let limits = LogLimits {
        max_bytes: 2 * one + one / 2,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    for _ in 0..4 {
        log.append_message("xxxxxxxxxx").await.unwrap();
    }
    let snap = log.snapshot();
    assert_eq!(snap.events.len(), 2);
    assert_eq!(snap.events[0].seq, 3);
    assert!(snap.events.iter().map(|e| e.size()).sum::<usize>() <= limits.max_bytes);
    assert_eq!(snap.events[0].size(), one);
}

#[tokio::test]
async fn terminal_events_are_kept_even_past_the_bound() {
    let limits = LogLimits {
        max_events: 1,
        ..LogLimits::default()
    };
    let log = EventLog::new(limits);
    log.append_message("a").await.unwrap();
    log.close(JobState::Failed, Some("boom".into()))
        .await
        .unwrap();
    let snap = log.snapshot();
    assert_eq!(snap.state, JobState::Failed);
    assert_eq!(snap.error.as_deref(), Some("boom"));
    // Only the sentinel is retained, but the state survives in the log.
    assert_eq!(snap.events.len(), 1);
    assert_eq!(snap.events[0].kind, EventKind::Close);
}

#[tokio::test]
async fn a_far_behind_reader_gets_bounded_batches() {
    let log = EventLog::new(LogLimits::default());
    for i in 0..(MAX_BATCH + 10) {
        log.append_message(&i.to_string()).await.unwrap();
    }
    let mut sub = log.subscribe(0);
    assert_eq!(batch(sub.try_next()).events.len(), MAX_BATCH);
    assert_eq!(batch(sub.try_next()).events.len(), 10);
    assert!(matches!(sub.try_next(), Poll::Pending));
}

#[test]
fn the_race_under_real_threads_never_gaps_or_duplicates() {
    // Many readers subscribe at arbitrary moments while a writer
    // appends from another thread; each must see 1..=N exactly once.
    const N: u64 = 2_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..20 {
        let log = EventLog::new(LogLimits::default());
        let readers: Vec<_> = (0..8)
            .map(|r| {
                let log = Arc::clone(&log);
                rt.spawn(async move {
                    // Stagger the moment each reader connects.
                    for _ in 0..(r * round % 7) {
                        tokio::task::yield_now().await;
                    }
                    let mut sub = log.subscribe(0);
                    let mut seen = Vec::new();
                    while let Some(b) = sub.next().await {
                        assert!(b.gap.is_none());
                        seen.extend(b.events.iter().map(|e| e.seq));
                    }
                    seen
                })
            })
            .collect();
        let writer = {
            let log = Arc::clone(&log);
            let handle = rt.handle().clone();
            std::thread::spawn(move || {
                for i in 0..N - 2 {
                    handle.block_on(log.append_message(&i.to_string())).unwrap();
                    if i % 97 == 0 {
                        std::thread::yield_now();
                    }
                }
                handle
                    .block_on(log.close(JobState::Succeeded, None))
                    .unwrap();
            })
        };
        writer.join().unwrap();
        for r in readers {
            let seen = rt.block_on(r).unwrap();
            assert_eq!(seen, (1..=N).collect::<Vec<_>>(), "round {round}");
        }
    }
}
