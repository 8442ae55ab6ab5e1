//! Protogate's own work per request, without sockets: the gateway service called in a
//! loop on one thread, free of the client's and the mock's share of the two cores that
//! `scripts/bench.sh` measures on. Two requests:
//!
//! - `GET /v1/models`: the request log, the Host/Origin checks, CORS, the rate limit
//!   and routing, around a small JSON answer;
//! - `POST /v1/chat/completions` to the built-in demo provider: the same, plus reading
//!   and parsing the body, choosing the provider and writing the answer: everything a
//!   forwarded request costs but the upstream call.
//!
//! Usage: bench_inprocess [requests per round, default 200000]

use std::time::Instant;

/// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

use axum::body::Body;
use axum::http::Request;
use tower::{Service, ServiceExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let settings = r#"{"limits": {"requests_per_minute": 4000000000, "burst": 4000000000}}"#;
    let config = protogate::config::parse(settings, "bench").unwrap();
    let log = protogate::RequestLog::new(Some(dir.path()), 1, 1000, 200).unwrap();
    let state = protogate::AppState::new(config, log, protogate::SecretStore::new());
    let mut gateway = protogate::router(state);
    let chat = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}]}"#;
    for (name, method, path, body) in [
        ("GET /v1/models", "GET", "/v1/models", ""),
        (
            "POST /v1/chat/completions (demo)",
            "POST",
            "/v1/chat/completions",
            chat,
        ),
    ] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..n {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
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
        println!("{name}: {best:.2} µs per request (best of 3 rounds of {n})");
    }
}
