//! Quotas that hold against minted sessions: queued or running jobs per
//! session and per client address, and starts per minute per session.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jobstream_engine::{
    Engine, EngineConfig, JobContext, JobError, NewJob, Params, QuotaConfig, Registry, SessionId,
    SqliteStore, SubmitError,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct NoParams {}
impl Params for NoParams {}

/// An engine without workers (jobs stay queued) and the given quotas.
async fn engine(quotas: QuotaConfig) -> Engine {
    let mut registry = Registry::new();
    registry.register("forever", |ctx: JobContext, _: NoParams, _| async move {
        ctx.cancel.cancelled().await;
        Err(JobError::new("cancelled"))
    });
    let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    let config = EngineConfig {
        quotas,
        ..EngineConfig::default()
    };
    Engine::open(config, registry, store).await.unwrap()
}

fn job(owner: SessionId, client: Option<IpAddr>) -> NewJob {
    NewJob {
        owner,
        kind: "forever".into(),
        params: serde_json::Value::Null,
        display_name: "ada".into(),
        locale: "en".into(),
        client,
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[tokio::test]
async fn a_session_has_at_most_its_limit_of_queued_or_running_jobs() {
    let engine = engine(QuotaConfig {
        jobs_per_session: 3,
        ..QuotaConfig::OFF
    })
    .await;
    let (me, other) = (SessionId::random(), SessionId::random());
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(engine.submit(job(me, None)).await.unwrap());
    }
    assert_eq!(
        engine.submit(job(me, None)).await.unwrap_err(),
        SubmitError::TooManyJobs { limit: 3 }
    );
    engine
        .submit(job(other, None))
        .await
        .expect("another session has its own limit");
    // A job that ends (here: cancelled while queued) gives its place back.
    engine.cancel(me, mine[0].id).await.unwrap();
    engine.submit(job(me, None)).await.expect("room again");
    assert_eq!(
        engine.submit(job(me, None)).await.unwrap_err(),
        SubmitError::TooManyJobs { limit: 3 }
    );
}

#[tokio::test]
async fn minted_sessions_from_one_address_share_its_limit() {
    let engine = engine(QuotaConfig {
        jobs_per_session: 100,
        jobs_per_address: 4,
        ..QuotaConfig::OFF
    })
    .await;
    let first = engine
        .submit(job(SessionId::random(), ip("10.0.0.1")))
        .await
        .unwrap();
    for _ in 0..3 {
        // A new session each time: what a client without cookies gets.
        engine
            .submit(job(SessionId::random(), ip("10.0.0.1")))
            .await
            .unwrap();
    }
    assert_eq!(
        engine
            .submit(job(SessionId::random(), ip("10.0.0.1")))
            .await
            .unwrap_err(),
        SubmitError::TooManyJobsFromAddress { limit: 4 }
    );
    engine
        .submit(job(SessionId::random(), ip("10.0.0.2")))
        .await
        .expect("another address has its own limit");
    engine
        .submit(job(SessionId::random(), None))
        .await
        .expect("an unknown address is not counted");
    engine.cancel(first.owner, first.id).await.unwrap();
    engine
        .submit(job(SessionId::random(), ip("10.0.0.1")))
        .await
        .expect("room again once a job ended");
}

#[tokio::test]
async fn a_session_starts_at_most_its_limit_a_minute_and_is_told_when_to_retry() {
    // Six a minute: a burst of six, then one every 10 s.
    let engine = engine(QuotaConfig {
        starts_per_minute: 6,
        ..QuotaConfig::OFF
    })
    .await;
    let (me, other) = (SessionId::random(), SessionId::random());
    for _ in 0..6 {
        let job = engine.submit(job(me, None)).await.unwrap();
        // Ended jobs still count as starts.
        engine.cancel(me, job.id).await.unwrap();
    }
    match engine.submit(job(me, None)).await.unwrap_err() {
        SubmitError::TooManyStarts { limit, retry_after } => {
            assert_eq!(limit, 6);
            assert!(
                retry_after > Duration::ZERO && retry_after <= Duration::from_secs(10),
                "{retry_after:?}"
            );
        }
        e => panic!("expected TooManyStarts, got {e:?}"),
    }
    engine
        .submit(job(other, None))
        .await
        .expect("another session");
}

#[tokio::test]
async fn minted_sessions_share_their_addresss_starts() {
    // One a minute per session, ten per address.
    let engine = engine(QuotaConfig {
        starts_per_minute: 1,
        ..QuotaConfig::OFF
    })
    .await;
    for _ in 0..10 {
        let owner = SessionId::random();
        let job = engine.submit(job(owner, ip("10.0.0.1"))).await.unwrap();
        engine.cancel(owner, job.id).await.unwrap();
    }
    let fresh = SessionId::random();
    assert!(matches!(
        engine.submit(job(fresh, ip("10.0.0.1"))).await,
        Err(SubmitError::TooManyStarts { limit: 10, .. })
    ));
    // The refusal took nothing from the session: from elsewhere it starts.
    engine
        .submit(job(fresh, ip("10.0.0.2")))
        .await
        .expect("its one start");
    engine
        .submit(job(SessionId::random(), None))
        .await
        .expect("an unknown address is not counted");
}

#[tokio::test]
async fn zero_turns_every_quota_off() {
    let engine = engine(QuotaConfig::OFF).await;
    let me = SessionId::random();
    for _ in 0..300 {
        engine.submit(job(me, ip("10.0.0.1"))).await.unwrap();
    }
}
