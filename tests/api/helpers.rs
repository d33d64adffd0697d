//! `spawn_app()`: a real server on port 0, and request helpers.

#![allow(dead_code)] // not every test binary module uses every helper

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use jobstream::{serve, AppState, Config};
use leptos::prelude::LeptosOptions;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    /// A browser-like client with its own cookie jar: one session.
    pub client: Client,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Holds the app's database; deleted when the app is dropped.
    pub data: tempfile::TempDir,
}

/// A config whose database is a new file in `dir`.
pub fn with_database(mut config: Config, dir: &tempfile::TempDir) -> Config {
    config.database_url = format!("sqlite://{}/jobstream.db", dir.path().display());
    config
}

/// A real server on port 0 with its own new database.
pub async fn spawn_app(config: Config) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let config = with_database(config, &data);
    spawn_app_in(config, data).await
}

/// A real server on port 0 with the database `config` names (kept in `data`).
pub async fn spawn_app_in(config: Config, data: tempfile::TempDir) -> TestApp {
    spawn_app_with(config, data, |_| {}).await
}

/// As [`spawn_app_in`], with Leptos' options changed by `adjust` (a site
/// root of the test's own, hashed file names).
pub async fn spawn_app_with(
    config: Config,
    data: tempfile::TempDir,
    adjust: impl FnOnce(&mut LeptosOptions),
) -> TestApp {
    spawn_app_on(config, data, adjust, None).await
}

/// As [`spawn_app_with`], on `store` when given (else the config's).
pub async fn spawn_app_on(
    config: Config,
    data: tempfile::TempDir,
    adjust: impl FnOnce(&mut LeptosOptions),
    store: Option<std::sync::Arc<dyn jobstream_engine::Store>>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = LeptosOptions::builder()
        .output_name("jobstream")
        .site_addr(addr)
        .build();
    adjust(&mut options);
    let state = match store {
        Some(store) => AppState::with_store(options, config, store).await.unwrap(),
        None => AppState::new(options, config).await.unwrap(),
    };
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let server = tokio::spawn(serve(
        listener,
        state,
        async move { signal.cancelled().await },
    ));
    TestApp {
        base: format!("http://{addr}"),
        client: session(),
        stop,
        server,
        data,
    }
}

pub fn session() -> Client {
    Client::builder().cookie_store(true).build().unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` as this app's session, the body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET path` as this app's session, the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn start(&self, kind: &str, params: Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/jobs"))
            .json(&json!({"kind": kind, "params": params}))
            .send()
            .await
            .unwrap()
    }

    pub async fn start_ok(&self, kind: &str, params: Value) -> String {
        let resp = self.start(kind, params).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(body["url"], format!("/jobs/{id}"));
        id
    }

    pub async fn stream(
        &self,
        client: &Client,
        id: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = client.get(self.url(&format!("/api/jobs/{id}/events")));
        if let Some(last) = last_event_id {
            req = req.header("Last-Event-ID", last);
        }
        req.send().await.unwrap()
    }

    /// Every event of a stream until the server ends it.
    pub async fn events(&self, id: &str, last_event_id: Option<&str>) -> Vec<Event> {
        let resp = self.stream(&self.client, id, last_event_id).await;
        assert_eq!(resp.status(), StatusCode::OK);
        read_all(resp).await
    }

    /// Stops the server gracefully; returns its data folder.
    pub async fn shutdown(self) -> tempfile::TempDir {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        self.data
    }
}

pub async fn read_all(resp: reqwest::Response) -> Vec<Event> {
    let events = resp
        .bytes_stream()
        .eventsource()
        .map(|e| e.expect("valid SSE"))
        .collect();
    tokio::time::timeout(Duration::from_secs(20), events)
        .await
        .expect("stream ended")
}

pub fn messages(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.event == "message")
        .map(|e| e.data.as_str())
        .collect()
}
