//! Temporary probe (removed after measuring): CPU per request of a cache miss.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use tower::{Service, ServiceExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u32 = 100_000;
    let only = std::env::args().nth(1);
    for (name, extra, unique) in [
        ("off", "", true),
        ("on, miss", r#", "cache": {"enabled": true}"#, true),
        ("on, miss, no coalescing", r#", "cache": {"enabled": true, "coalesce": false}"#, true),
        ("on, hit", r#", "cache": {"enabled": true}"#, false),
        ("off again", "", true),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = format!(r#"{{"limits": {{"requests_per_minute": 4000000000, "burst": 4000000000}}{extra}}}"#);
        let config = protogate::config::parse(&settings, "bench").unwrap();
        let log = protogate::RequestLog::new(Some(dir.path()), 1, 1000, 200).unwrap();
        let state = protogate::AppState::new(config, log, protogate::SecretStore::new());
        let mut gateway = protogate::router(state);
        let mut best = f64::MAX;
        let mut k = 0u64;
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..n {
                k += 1;
                let body = if unique {
                    format!(r#"{{"model":"demo","messages":[{{"role":"user","content":"hi {k}"}}]}}"#)
                } else {
                    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#.to_string()
                };
                let request = Request::builder()
                    .method("POST")
                    .uri("/v1/chat/completions")
                    .header("host", "127.0.0.1:5711")
                    .header("origin", "http://localhost:5173")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let response = gateway.ready().await.unwrap().call(request).await.unwrap();
                assert!(response.status().is_success());
                let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await;
                std::hint::black_box(answer.unwrap());
            }
            best = best.min(start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
        }
        println!("{name}: {best:.2} µs per request");
    }
}
