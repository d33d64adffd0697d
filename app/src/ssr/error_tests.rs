//! Tests of `error.rs`: statuses, texts in each language, conversions.

use super::*;

/// The JSON API's texts, which clients may match on: they must not change.
#[test]
fn english_is_what_the_api_has_always_said() {
    let cases = [
        (UserError::JobNotFound, "no such job"),
        (
            UserError::StoreUnavailable,
            "the job store is unavailable; try again shortly",
        ),
        (
            UserError::Draining,
            "the server is restarting; try again in a moment",
        ),
        (UserError::CrossSite, "cross-site requests are not allowed"),
        (
            UserError::NotJson,
            "expected a JSON body with Content-Type: application/json",
        ),
        (
            UserError::NoRoute("/api/x".into()),
            "no such endpoint: /api/x",
        ),
        (
            UserError::TooManyStreams(StreamLimit::Session(4)),
            "this session already has 4 open streams; close one (another tab?) and retry",
        ),
        (
            UserError::TooManyStreams(StreamLimit::Server(9)),
            "the server has 9 open streams, its limit; retry shortly",
        ),
        (
            UserError::UnknownLanguage("xx".into()),
            "unknown language \"xx\"; choose en, de or fr",
        ),
        (UserError::NameEmpty, "Enter a name."),
    ];
    for (error, english) in cases {
        assert_eq!(error.english(), english);
    }
}

/// The engine's errors read exactly as their own `Display`.
#[test]
fn engine_errors_keep_their_words() {
    let plan = [
        PlanError::UnknownKind {
            kind: "nope".into(),
            known: vec!["demo".into(), "echo".into()],
        },
        PlanError::BadParams {
            kind: "demo".into(),
            field: Some("steps".into()),
            problem: Problem::OutOfRange {
                min: 1,
                max: 1000,
                got: 0,
            },
        },
        PlanError::BadParams {
            kind: "echo".into(),
            field: Some("message".into()),
            problem: Problem::TooLong { max: 3, got: 4 },
        },
        PlanError::BadParams {
            kind: "x\"y".into(),
            field: None,
            problem: Problem::Invalid("params must be a JSON object".into()),
        },
        PlanError::BadParams {
            kind: "demo".into(),
            field: Some("steps".into()),
            problem: Problem::NotANumber,
        },
        PlanError::BadParams {
            kind: "demo".into(),
            field: Some("steps".into()),
            problem: Problem::Empty,
        },
    ];
    for e in plan {
        let submit = SubmitError::Plan(e.clone());
        assert_eq!(UserError::from(submit).english(), e.to_string());
    }
    for e in [
        SubmitError::QueueFull { capacity: 3 },
        SubmitError::ShuttingDown,
    ] {
        assert_eq!(UserError::from(e.clone()).english(), e.to_string());
        assert_eq!(
            UserError::from(e).status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let ended = CancelError::Ended(JobState::Cancelled);
    assert_eq!(UserError::from(ended.clone()).english(), ended.to_string());
    assert_eq!(
        UserError::from(CancelError::NotFound).status(),
        http::StatusCode::NOT_FOUND
    );
    assert_eq!(
        UserError::from(StoreError("disk".into())),
        UserError::StoreUnavailable
    );
}

#[test]
fn errors_are_translated() {
    for locale in [Locale::De, Locale::Fr] {
        let ended = UserError::Ended(JobState::Succeeded).message(locale);
        assert!(!ended.contains("succeeded"), "{ended}");
        assert_ne!(
            UserError::StoreUnavailable.message(locale),
            UserError::StoreUnavailable.english()
        );
    }
    assert_eq!(
        UserError::Ended(JobState::Succeeded).message(Locale::De),
        "Der Job ist bereits beendet (erfolgreich)."
    );
}
