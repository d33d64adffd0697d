//! What an idle subscriber costs the server, counted by a global allocator
//! that tracks the live heap of this test process (server and clients):
//! the bytes still allocated per open, idle job-list stream. A wrapper or
//! buffer that each stream keeps for its whole life shows here (the
//! compression layer's body, 5.8 KB, did).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn open(addr: std::net::SocketAddr, n: usize, conns: &mut Vec<TcpStream>) {
    for _ in 0..n {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        conns.push(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_keeps_a_few_kilobytes() {
    const STREAMS: usize = 1000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = jobstream::Config {
        database_url: format!("sqlite://{}/jobstream.db", data.path().display()),
        max_connections_per_address: 0,
        ..jobstream::Config::default()
    };
    let options = leptos::prelude::LeptosOptions::builder()
        .output_name("jobstream")
        .site_addr(addr)
        .build();
    let state = jobstream::AppState::new(options, config).await.unwrap();
    tokio::spawn(jobstream::serve(listener, state, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Warm up what is made once (pools, caches, the router's first use).
    let mut conns = Vec::new();
    open(addr, 50, &mut conns).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = LIVE.load(Ordering::Relaxed);
    open(addr, STREAMS, &mut conns).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_stream = (LIVE.load(Ordering::Relaxed) - before) / STREAMS as isize;
    eprintln!("live heap per idle stream: {per_stream} bytes");
    // A debug build; about 5.6 KB today, most of it the connection's task
    // (its future). 11.5 KB while the compression layer wrapped streams.
    assert!(
        per_stream < 8 * 1024,
        "an idle stream keeps {per_stream} bytes of heap"
    );
}
