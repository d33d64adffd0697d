//! `deploy/nginx.conf` in front of a test server, with Debian's nginx.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use jobstream::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// nginx running `deploy/nginx.conf` with the upstream pointed at `app`.
struct Nginx {
    child: Child,
    base: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary folder removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn nginx_in_front_of(app: &TestApp) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("jobstream-nginx-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let site =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf"))
            .unwrap()
            .replace(
                "server 127.0.0.1:3000;",
                &format!("server {};", app.base.trim_start_matches("http://")),
            )
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    assert!(
        site.contains(&format!("listen 127.0.0.1:{port};")),
        "deploy/nginx.conf changed shape"
    );
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new("/usr/sbin/nginx")
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx is installed by scripts/setup");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(&base).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Nginx {
        child,
        base,
        _dir: tempdir::Dir(dir),
    }
}

#[tokio::test]
async fn the_first_message_of_a_slow_job_arrives_through_nginx_before_the_job_ends() {
    let app = spawn_app(Config::default()).await;
    let nginx = nginx_in_front_of(&app).await;
    let client = session();
    let created: Value = client
        .post(format!("{}/api/jobs", nginx.base))
        .json(&json!({"kind": "demo", "params": {"steps": 3, "interval_ms": 2000}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}/api/jobs/{}/events",
        nginx.base,
        created["id"].as_str().unwrap()
    );
    let started = Instant::now();
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut events = resp.bytes_stream().eventsource();
    let first_message = loop {
        let e = events.next().await.unwrap().unwrap();
        if e.event == "message" {
            break e;
        }
    };
    assert_eq!(first_message.data, "finish 1: ...(guest)");
    // The job takes 4 s; its first message must not wait for the end.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "buffered: {:?}",
        started.elapsed()
    );

    // Resume through nginx: Last-Event-ID passes through.
    let resumed = client
        .get(&url)
        .header("Last-Event-ID", &first_message.id)
        .send()
        .await
        .unwrap();
    let rest: Vec<_> = resumed
        .bytes_stream()
        .eventsource()
        .map(|e| e.unwrap())
        .collect()
        .await;
    assert_eq!(
        messages(&rest),
        [
            "finish 2: ...(guest)",
            "finish 3: ...(guest)",
            "__CLOSE_SSE__"
        ]
    );
    assert_eq!(
        rest[0].id.parse::<u64>().unwrap(),
        first_message.id.parse::<u64>().unwrap() + 1
    );
    drop(nginx);
    app.shutdown().await;
}
