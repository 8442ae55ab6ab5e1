//! A client that stops reading: its connection is closed after the idle timeout, its
//! upstream call cancelled, its stream slot freed, and the request log says why.

mod common;

use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_stream_and_frees_the_slot() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai(
        "up",
        &mock.base_url,
        json!({"limits": {"idle_timeout_ms": 800, "max_concurrent_streams": 1}}),
    )
    .await;

    // A raw client with a small receive window that sends its request and never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(gw.addr).await.unwrap();
    let body =
        json!({"model": "flood", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stuck.write_all(request.as_bytes()).await.unwrap();

    let mut record = None;
    for _ in 0..100 {
        record = gw
            .log
            .recent()
            .into_iter()
            .find(|r| r.path == "/v1/chat/completions");
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record =
        record.expect("the stuck stream is ended and logged within seconds, not held forever");
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("stopped reading"),
        "the log says the client stopped reading: {error}"
    );
    for _ in 0..50 {
        if mock.dropped_streams() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mock.dropped_streams(), 1, "the upstream call is cancelled");

    // The only stream slot is free again: a normal client gets its answer.
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200, "the slot was released");
    assert_eq!(seed_text(&res.text().await.unwrap()), "Hello world");
    drop(stuck);
}
