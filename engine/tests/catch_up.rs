//! A reader whose position is older than the log's window in memory
//! catches up from the store: every event once, in order, with no hole at
//! the seam between store and memory, whatever the job appends meanwhile;
//! `gap` only for events that exist nowhere any more. And paging back
//! through a job's lines, from memory and the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jobstream_engine::store::{JobRecord, StoredEvent, Write};
use jobstream_engine::{
    Batch, Emitter, Engine, EngineConfig, EventKind, EventLog, JobContext, JobId, JobState,
    LogLimits, NewJob, Params, Registry, SessionId, SqliteStore, Store, StoreError,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

/// Runs around each read of events from the store.
type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A SQLite store that runs a hook just before or just after each read of
/// events: the test's way to put the job's appends at a chosen point of the
/// reader's catch-up.
struct HookStore {
    inner: SqliteStore,
    hook: Mutex<Option<(Hook, bool)>>,
    /// Bytes of text the last `events` call (a load) returned.
    loaded: std::sync::atomic::AtomicUsize,
    /// `events` calls (loads) so far.
    loads: std::sync::atomic::AtomicUsize,
    /// Loads wait while this is false.
    loads_open: tokio::sync::watch::Sender<bool>,
}

impl HookStore {
    fn hook(&self) -> Option<(Hook, bool)> {
        self.hook.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Store for HookStore {
    async fn write(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.inner.write(writes).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }
    async fn events(
        &self,
        id: JobId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.loads_open.subscribe().wait_for(|open| *open).await;
        let events = self.inner.events(id, limit, max_bytes).await?;
        let bytes = events.iter().map(|e| e.text.len()).sum();
        self.loaded
            .store(bytes, std::sync::atomic::Ordering::SeqCst);
        Ok(events)
    }
    async fn events_after(
        &self,
        id: JobId,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let hook = self.hook();
        if let Some((hook, true)) = &hook {
            hook().await;
        }
        let page = self
            .inner
            .events_after(id, after, before, limit, max_bytes)
            .await;
        if let Some((hook, false)) = &hook {
            hook().await;
        }
        page
    }
    async fn lines_before(
        &self,
        id: JobId,
        before: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.lines_before(id, before, limit).await
    }
    async fn jobs_of(&self, owner: SessionId, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.jobs_of(owner, limit).await
    }
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.unfinished().await
    }
    async fn purge_finished_before(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        self.inner.purge_finished_before(cutoff, limit).await
    }
}

#[derive(Deserialize)]
struct NoParams {}
impl Params for NoParams {}

/// `held`: says nothing itself (the test appends to its log) and ends
/// when the gate opens.
fn registry(gate: Arc<Semaphore>) -> Registry {
    let mut r = Registry::new();
    r.register("held", move |_: JobContext, _: NoParams, _: Emitter| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.expect("open").forget();
            Ok(())
        }
    });
    r
}

/// The window in memory: 100 events.
const WINDOW: usize = 100;

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<HookStore>,
    engine: Engine,
    gate: Arc<Semaphore>,
    owner: SessionId,
}

async fn setup(config: EngineConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = Arc::new(HookStore {
        inner: SqliteStore::open(&url).await.unwrap(),
        hook: Mutex::new(None),
        loaded: Default::default(),
        loads: Default::default(),
        loads_open: tokio::sync::watch::Sender::new(true),
    });
    let gate = Arc::new(Semaphore::new(0));
    // The window of 100 events, unless the test sets its own bounds.
    let config = if config.log_limits == LogLimits::default() {
        EngineConfig {
            log_limits: LogLimits {
                max_events: WINDOW,
                ..LogLimits::default()
            },
            ..config
        }
    } else {
        config
    };
    let engine = Engine::open(
        config,
        registry(Arc::clone(&gate)),
        Arc::clone(&store) as Arc<dyn Store>,
    )
    .await
    .unwrap();
    Setup {
        _dir: dir,
        store,
        engine,
        gate,
        owner: SessionId::random(),
    }
}

/// Starts a `held` job and waits until it runs. Returns it and the task
/// running it (which ends when the gate opens).
async fn running(
    s: &Setup,
) -> (
    Arc<jobstream_engine::Job>,
    tokio::task::JoinHandle<JobState>,
) {
    let job = s
        .engine
        .submit(NewJob {
            owner: s.owner,
            kind: "held".into(),
            params: json!({}),
            display_name: "ada".into(),
            locale: "en".into(),
            client: None,
        })
        .await
        .unwrap();
    let engine = s.engine.clone();
    let run = tokio::spawn(async move { engine.run_next().await });
    while job.log.state() != JobState::Running {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (job, run)
}

/// Appends messages `m{n}` to `log`, numbered on from `next`, up to `total`.
#[derive(Clone)]
struct Appender {
    log: Arc<EventLog>,
    /// The next message's number; the lock keeps numbers in log order.
    next: Arc<tokio::sync::Mutex<u64>>,
    total: u64,
}

impl Appender {
    async fn append(&self, count: u64) {
        let mut next = self.next.lock().await;
        for _ in 0..count {
            if *next > self.total {
                return;
            }
            self.log.append_message(&format!("m{next}")).await.unwrap();
            *next += 1;
        }
    }
}

/// Every batch a reader hands out until the job ends.
async fn read_all(mut reader: jobstream_engine::Reader) -> Vec<Batch> {
    let mut batches = Vec::new();
    while let Some(batch) = reader.next().await {
        batches.push(batch);
    }
    batches
}

/// The messages' texts in the batches, checking that ids only increase.
fn messages(batches: &[Batch]) -> Vec<String> {
    let mut last = 0;
    let mut texts = Vec::new();
    for e in batches.iter().flat_map(|b| &b.events) {
        assert!(e.seq > last, "event {} after {last}", e.seq);
        last = e.seq;
        if e.kind == EventKind::Message {
            texts.push(e.text.to_string());
        }
    }
    texts
}

fn numbered(from: u64, to: u64) -> Vec<String> {
    (from..=to).map(|n| format!("m{n}")).collect()
}

/// A job of 10,000 messages with a window of 100: the reader starts at 0
/// after 1,000 and catches up while `per_read` messages are appended just
/// before (or after) each of its reads of the store, and the rest as fast
/// as the job can.
async fn catches_up(per_read: u64, before_read: bool) {
    const TOTAL: u64 = 10_000;
    let s = setup(EngineConfig::default()).await;
    let (job, run) = running(&s).await;
    let appender = Appender {
        log: Arc::clone(&job.log),
        next: Arc::new(tokio::sync::Mutex::new(1)),
        total: TOTAL,
    };
    appender.append(1_000).await;
    let in_hook = appender.clone();
    let hook: Hook = Arc::new(move || {
        let a = in_hook.clone();
        Box::pin(async move { a.append(per_read).await })
    });
    *s.store.hook.lock().unwrap() = Some((hook, before_read));

    let reader = tokio::spawn(read_all(s.engine.reader(&job, 0)));
    while *appender.next.lock().await <= TOTAL {
        appender.append(7).await;
        tokio::task::yield_now().await;
    }
    s.gate.add_permits(1);
    assert_eq!(run.await.unwrap(), JobState::Succeeded);
    let batches = reader.await.unwrap();
    assert!(
        batches.iter().all(|b| b.gap.is_none()),
        "a gap although the store had every event ({per_read} per read, before: {before_read})"
    );
    assert_eq!(messages(&batches), numbered(1, TOTAL));
}

#[tokio::test]
async fn a_reader_behind_the_window_gets_every_event_once_whatever_the_seam() {
    // Nothing, one, just under, at and over the window, a page and more,
    // appended just before and just after each read of the store.
    for per_read in [0, 1, 99, 100, 101, 512, 1_000] {
        for before_read in [true, false] {
            catches_up(per_read, before_read).await;
        }
    }
}

#[tokio::test]
async fn a_gap_only_for_events_retention_deleted() {
    let s = setup(EngineConfig {
        retention: Duration::from_millis(1),
        ..EngineConfig::default()
    })
    .await;
    let (job, run) = running(&s).await;
    let appender = Appender {
        log: Arc::clone(&job.log),
        next: Arc::new(tokio::sync::Mutex::new(1)),
        total: 500,
    };
    appender.append(500).await;
    s.gate.add_permits(1);
    run.await.unwrap();
    // Before retention: the whole output, no gap.
    let before = read_all(s.engine.reader(&job, 0)).await;
    assert!(before.iter().all(|b| b.gap.is_none()));
    assert_eq!(messages(&before), numbered(1, 500));

    s.engine.flush().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.engine.sweep().await.unwrap(), 1);
    // After it, only what memory still holds, after a gap for the rest.
    let after = read_all(s.engine.reader(&job, 0)).await;
    let gap = after[0].gap.expect("a gap for the deleted events");
    let first_kept = job.log.snapshot().events[0].seq;
    assert_eq!((gap.from, gap.to), (1, first_kept - 1));
    assert_eq!(gap.lost, first_kept - 1);
    assert!(after[1..].iter().all(|b| b.gap.is_none()));
    let kept = messages(&after);
    assert!(!kept.is_empty() && kept.len() < WINDOW);
    assert_eq!(kept.last().unwrap(), "m500");
}

#[tokio::test]
async fn a_finished_job_loaded_back_is_read_whole() {
    let s = setup(EngineConfig {
        retained_jobs: 0,
        ..EngineConfig::default()
    })
    .await;
    let (job, run) = running(&s).await;
    let appender = Appender {
        log: Arc::clone(&job.log),
        next: Arc::new(tokio::sync::Mutex::new(1)),
        total: 2_000,
    };
    appender.append(2_000).await;
    s.gate.add_permits(1);
    run.await.unwrap();
    let id = job.id;
    drop(job);
    let loaded = s.engine.find(s.owner, id).await.unwrap().unwrap();
    assert!(loaded.log.snapshot().events.len() <= WINDOW);
    let batches = read_all(s.engine.reader(&loaded, 0)).await;
    assert!(batches.iter().all(|b| b.gap.is_none()));
    assert_eq!(messages(&batches), numbered(1, 2_000));
    // Resuming in the middle continues right after the given id.
    let middle = batches
        .iter()
        .flat_map(|b| &b.events)
        .nth(1_234)
        .unwrap()
        .seq;
    let rest = read_all(s.engine.reader(&loaded, middle)).await;
    assert_eq!(rest[0].events[0].seq, middle + 1);
}

#[tokio::test]
async fn lines_page_back_to_line_one_across_memory_and_store() {
    let s = setup(EngineConfig::default()).await;
    let (job, run) = running(&s).await;
    let appender = Appender {
        log: Arc::clone(&job.log),
        next: Arc::new(tokio::sync::Mutex::new(1)),
        total: 1_050,
    };
    appender.append(1_050).await;
    // Newest first page: the last 200, from memory and the store (the
    // window holds 100 events), some still on their way to the store.
    let page = s.engine.lines(&job, None, 200).await.unwrap();
    assert!(page.more);
    assert_eq!(page.lines.len(), 200);
    assert_eq!(page.lines[0].n, 851);
    assert_eq!(page.lines[199].n, 1_050);
    let mut all = page.lines;
    let mut before = all[0].seq;
    loop {
        let page = s.engine.lines(&job, Some(before), 300).await.unwrap();
        assert!(!page.lines.is_empty());
        before = page.lines[0].seq;
        all.splice(0..0, page.lines);
        if !page.more {
            break;
        }
    }
    let numbers: Vec<u64> = all.iter().map(|l| l.n).collect();
    assert_eq!(numbers, (1..=1_050).collect::<Vec<_>>());
    assert!(all.iter().all(|l| l.text == format!("m{}", l.n)));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    // Nothing before the first line.
    let none = s.engine.lines(&job, Some(all[0].seq), 10).await.unwrap();
    assert!(none.lines.is_empty() && !none.more);
    s.gate.add_permits(1);
    run.await.unwrap();
}

#[tokio::test]
async fn a_job_loaded_back_holds_its_byte_bound_and_is_still_read_whole() {
    const MAX_BYTES: usize = 64 * 1024;
    let s = setup(EngineConfig {
        retained_jobs: 0,
        log_limits: LogLimits {
            max_events: 10_000,
            max_bytes: MAX_BYTES,
            ..LogLimits::default()
        },
        ..EngineConfig::default()
    })
    .await;
    let (job, run) = running(&s).await;
    let big = "z".repeat(10_000);
    for _ in 0..300 {
        job.log.append_message(&big).await.unwrap();
    }
    s.gate.add_permits(1);
    run.await.unwrap();
    let id = job.id;
    drop(job);
    let loaded = s.engine.find(s.owner, id).await.unwrap().unwrap();
    // Read newest first within the bound, not 300 rows of 10 KB.
    let read = s.store.loaded.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        read <= MAX_BYTES + big.len(),
        "{read} bytes read to load it"
    );
    let batches = read_all(s.engine.reader(&loaded, 0)).await;
    assert!(batches.iter().all(|b| b.gap.is_none()));
    assert_eq!(messages(&batches).len(), 300);
}

#[tokio::test]
async fn concurrent_requests_for_a_stored_job_share_one_load() {
    let s = setup(EngineConfig {
        retained_jobs: 0,
        ..EngineConfig::default()
    })
    .await;
    let (job, run) = running(&s).await;
    job.log.append_message("only").await.unwrap();
    s.gate.add_permits(1);
    run.await.unwrap();
    let id = job.id;
    drop(job);
    let before = s.store.loads.load(std::sync::atomic::Ordering::SeqCst);
    // The first request's load waits until the others have asked too.
    s.store.loads_open.send_replace(false);
    let find = |engine: Engine, owner| {
        tokio::spawn(async move { engine.find(owner, id).await.unwrap().unwrap() })
    };
    let mut finds = vec![find(s.engine.clone(), s.owner)];
    while s.store.loads.load(std::sync::atomic::Ordering::SeqCst) == before {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    finds.extend((0..19).map(|_| find(s.engine.clone(), s.owner)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.store.loads_open.send_replace(true);
    let mut jobs = Vec::new();
    for f in finds {
        jobs.push(f.await.unwrap());
    }
    assert_eq!(
        s.store.loads.load(std::sync::atomic::Ordering::SeqCst) - before,
        1
    );
    assert!(jobs.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    // The load is forgotten once every request is done with it.
    assert_eq!(s.engine.loads_in_flight(), 0);
    // Another session's request loads nothing at all.
    assert!(s
        .engine
        .find(SessionId::random(), id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.store.loads.load(std::sync::atomic::Ordering::SeqCst) - before,
        1
    );
}

#[tokio::test]
async fn a_page_of_big_lines_stops_at_its_byte_budget_and_paging_still_reaches_line_one() {
    let s = setup(EngineConfig::default()).await;
    let (job, run) = running(&s).await;
    let big = "q".repeat(10_000);
    for _ in 0..300 {
        job.log.append_message(&big).await.unwrap();
    }
    s.gate.add_permits(1);
    run.await.unwrap();
    let mut numbers = Vec::new();
    let mut before = None;
    loop {
        let page = s.engine.lines(&job, before, 1000).await.unwrap();
        let bytes: usize = page.lines.iter().map(|l| l.text.len()).sum();
        assert!(
            bytes <= jobstream_engine::MAX_PAGE_BYTES,
            "{bytes} bytes in a page"
        );
        before = Some(page.lines[0].seq);
        numbers.splice(0..0, page.lines.iter().map(|l| l.n));
        if !page.more {
            break;
        }
    }
    assert_eq!(numbers, (1..=300).collect::<Vec<_>>());
}
