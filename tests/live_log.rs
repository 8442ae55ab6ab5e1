//! The live request log: a request is published when it starts, again at its response
//! head and first token, and when it ends, so a long stream shows from its first second.

mod common;

use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::StreamExt;
use protogate::request_log::{LogEvent, LogEventKind};
use serde_json::json;
use tokio::sync::broadcast;

async fn next_event(events: &mut broadcast::Receiver<LogEvent>) -> LogEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within seconds")
        .expect("the log is open")
}

#[tokio::test]
async fn a_stream_is_visible_from_its_start_and_updated_until_it_ends() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("up", &mock.base_url, json!({})).await;
    let mut events = gw.log.subscribe();

    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "hi", "model": "gated"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();

    let started = next_event(&mut events).await;
    assert_eq!(started.kind, LogEventKind::Started);
    assert_eq!(started.record.path, "/api/ai-gateway/stream");
    assert_eq!(started.record.origin.as_deref(), Some(FRAMER_ORIGIN));
    let id = started.record.id.clone();

    let head = next_event(&mut events).await;
    assert_eq!(
        (head.kind, head.record.status),
        (LogEventKind::Updated, 200)
    );
    assert_eq!(head.record.provider.as_deref(), Some("up"));
    body.next()
        .await
        .expect("the first words arrive")
        .expect("readable");
    let first = next_event(&mut events).await;
    assert_eq!(first.kind, LogEventKind::Updated);
    assert!(first.record.ttft_ms.is_some(), "the first token is marked");
    assert!(
        gw.log.recent().iter().all(|r| r.id != id),
        "still streaming: not yet a finished record"
    );

    mock.release();
    while body.next().await.is_some() {}
    let finished = next_event(&mut events).await;
    assert_eq!(
        (finished.kind, finished.record.id.as_str()),
        (LogEventKind::Finished, id.as_str())
    );
    assert!(finished.record.answer.unwrap().contains("last"));
}
