//! Routes (`routes[]`): a name a prototype uses as its model, standing for providers that
//! stand in for each other. Against mock upstreams failing in each way (a refused
//! connection, 429 with `Retry-After`, 500, no first byte, a stream cut after it
//! started): the client gets the next target's answer, or, once the first byte is out,
//! the in-stream error as for a provider named directly. The record lists each target
//! that did not answer and why. Round robin spreads evenly, weighted follows its
//! weights, and a target that keeps failing is skipped, then tried again after its
//! cooldown.

mod common;

use common::mock_anthropic::MockAnthropic;
use common::mock_flaky::{closed_port_url, Failure, MockFlaky};
use common::*;
use protogate::request_log::Record;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-routes-test-0123456789";

/// A gateway with OpenAI-compatible providers `a` and `b` at `a_url` and `b_url` (each
/// with its key, default models `model-a` and `model-b`), Anthropic's `claude` (a mock
/// that is never asked unless a route names it), and `routes`.
async fn gateway(a_url: &str, b_url: &str, routes: Value) -> (TestGateway, MockAnthropic) {
    let claude = MockAnthropic::start(ANTHROPIC_KEY).await;
    let s = settings(json!({
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "a", "kind": "openai", "base_url": a_url, "default_model": "model-a"},
            {"id": "b", "kind": "openai", "base_url": b_url, "default_model": "model-b"},
            {"id": "claude", "kind": "anthropic", "base_url": claude.base_url, "default_model": "claude-test"},
        ],
        "routes": routes,
        "limits": {"first_byte_timeout_ms": 1000},
        "chatkit": {"dir": tempfile::tempdir().unwrap().keep()},
    }));
    let (a, b) = (test_key("a"), test_key("b"));
    let env = [
        ("PROTOGATE_SECRET_A", a.as_str()),
        ("PROTOGATE_SECRET_B", b.as_str()),
        ("PROTOGATE_SECRET_CLAUDE", ANTHROPIC_KEY),
    ];
    (spawn_gateway_env(s, &env).await, claude)
}

fn fast() -> Value {
    json!([{"name": "fast", "targets": ["a", "b"]}])
}

fn chat(stream: bool) -> Value {
    json!({"model": "fast", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
}

/// The `n`th finished record (from 1) of a request to `path`, once it is in the log.
async fn nth_record(gw: &TestGateway, path: &str, n: usize) -> Record {
    for _ in 0..300 {
        let records: Vec<Record> = gw
            .log
            .recent()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        if records.len() >= n {
            return records[n - 1].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no record {n} for {path}: {:?}", gw.log.recent());
}

/// The text of a Chat Completions stream.
fn chunk_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

fn attempts(record: &Record) -> Vec<(String, String)> {
    record
        .attempts
        .iter()
        .map(|a| (a.target.clone(), a.reason.clone()))
        .collect()
}

#[tokio::test]
async fn each_failure_before_the_first_byte_moves_on_to_the_next_target() {
    let cases = [
        (None, "could not connect"),
        (
            Some(Failure::RateLimited { retry_after_s: 2 }),
            "answered 429 (retry after 2 s)",
        ),
        (Some(Failure::Status(500)), "answered 500"),
        (Some(Failure::Stall), "no first byte within 1 s"),
    ];
    for (failure, reason) in cases {
        for stream in [true, false] {
            let a = match failure {
                Some(failure) => Some(MockFlaky::failing("a", failure).await),
                None => None,
            };
            let a_url = match &a {
                Some(a) => a.base_url.clone(),
                None => closed_port_url().await,
            };
            let b = MockFlaky::start("b").await;
            let (gw, _) = gateway(&a_url, &b.base_url, fast()).await;
            let res = post_json(&gw.url("/v1/chat/completions"), None, chat(stream)).await;
            assert_eq!(res.status(), 200, "{reason}, stream {stream}");
            let body = res.text().await.unwrap();
            assert!(
                body.contains(&b.answer()),
                "{reason}: the next target answers: {body}"
            );
            assert!(!body.contains("answer from a"), "{body}");
            assert!(
                body.contains("\"model\":\"fast\""),
                "the client sees the model it asked for: {body}"
            );
            if let Some(a) = &a {
                assert_eq!(
                    a.requests(),
                    1,
                    "{reason}: the failing target was asked once"
                );
            }
            let record = nth_record(&gw, "/v1/chat/completions", 1).await;
            assert_eq!(record.route.as_deref(), Some("fast"));
            assert_eq!(
                (record.provider.as_deref(), record.model.as_deref()),
                (Some("b"), Some("model-b")),
                "the record names the target that answered"
            );
            assert_eq!(attempts(&record), [("a/model-a".into(), reason.into())]);
            assert_eq!(record.status, 200);
            assert_eq!(record.error, None);
        }
    }
}

#[tokio::test]
async fn a_cut_after_the_first_byte_is_the_in_stream_error_and_nothing_is_retried() {
    let a = MockFlaky::failing("a", Failure::Cut).await;
    let b = MockFlaky::start("b").await;
    let (gw, _) = gateway(&a.base_url, &b.base_url, fast()).await;
    let res = post_json(&gw.url("/v1/chat/completions"), None, chat(true)).await;
    assert_eq!(res.status(), 200, "the stream had started");
    let body = res.text().await.unwrap();
    assert_eq!(
        chunk_text(&body),
        "partial",
        "no second answer after the first: {body}"
    );
    let error = sse_data(&body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v["error"]["message"].as_str().map(String::from));
    assert!(
        error.is_some_and(|m| m.contains("cut")),
        "the in-stream error, as without a route: {body}"
    );
    assert_eq!(b.requests(), 0, "no retry once a byte was out");
    let record = nth_record(&gw, "/v1/chat/completions", 1).await;
    assert!(record.attempts.is_empty(), "{:?}", record.attempts);
    assert_eq!(record.provider.as_deref(), Some("a"));
    assert!(record.error.is_some_and(|e| e.contains("cut")));
}

#[tokio::test]
async fn a_bad_request_stops_at_the_first_target_and_all_failing_says_so() {
    // 400: the request itself is wrong, and every target would say so.
    let a = MockFlaky::failing("a", Failure::Status(400)).await;
    let b = MockFlaky::start("b").await;
    let (gw, _) = gateway(&a.base_url, &b.base_url, fast()).await;
    let res = post_json(&gw.url("/v1/chat/completions"), None, chat(false)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(b.requests(), 0, "a bad request is not sent to every target");

    let closed = closed_port_url().await;
    let b = MockFlaky::failing("b", Failure::Status(503)).await;
    let (gw, _) = gateway(&closed, &b.base_url, fast()).await;
    let res = post_json(&gw.url("/v1/chat/completions"), None, chat(false)).await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "no target of route `fast` answered: a/model-a could not connect; b/model-b answered \
         503; a/model-a could not connect",
        "each try, the first target again after a pause"
    );
    let record = nth_record(&gw, "/v1/chat/completions", 1).await;
    assert_eq!(record.attempts.len(), 3);
    assert_eq!(record.error.as_deref(), Some(message));
}

#[tokio::test]
async fn round_robin_spreads_evenly_and_weighted_follows_its_weights() {
    let a = MockFlaky::start("a").await;
    let b = MockFlaky::start("b").await;
    let routes = json!([
        {"name": "even", "targets": ["a", "b"], "strategy": "round_robin"},
        {"name": "mostly-a", "targets": ["a", "b"], "strategy": "weighted", "weights": [3, 1]},
    ]);
    let (gw, _) = gateway(&a.base_url, &b.base_url, routes).await;
    let mut answers = vec![];
    for _ in 0..10 {
        let body = json!({"model": "even", "messages": [{"role": "user", "content": "Hi"}]});
        let res: Value = post_json(&gw.url("/v1/chat/completions"), None, body)
            .await
            .json()
            .await
            .unwrap();
        answers.push(
            res["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!((a.requests(), b.requests()), (5, 5));
    assert_ne!(answers[0], answers[1], "taking turns: {answers:?}");

    let mut firsts = String::new();
    for _ in 0..8 {
        let body = json!({"message": "Hi", "model": "mostly-a"});
        let res = post_json(&gw.url("/api/ai-gateway/stream"), None, body).await;
        let text = seed_text(&res.text().await.unwrap());
        firsts.push_str(text.strip_prefix("answer from ").unwrap());
    }
    assert_eq!(
        firsts, "aabaaaba",
        "three to a for each to b, smoothly interleaved"
    );
}

#[tokio::test]
async fn a_target_that_keeps_failing_cools_down_then_is_tried_again() {
    let a = MockFlaky::failing("a", Failure::Status(500)).await;
    let b = MockFlaky::start("b").await;
    let routes = json!([{"name": "fast", "targets": ["a", "b"], "cooldown_s": 1}]);
    let (gw, _) = gateway(&a.base_url, &b.base_url, routes).await;
    let path = "/api/ai-gateway/stream";
    let ask = || async {
        let res = post_json(
            &gw.url(path),
            None,
            json!({"message": "Hi", "model": "fast"}),
        )
        .await;
        seed_text(&res.text().await.unwrap())
    };
    for _ in 0..3 {
        assert_eq!(ask().await, "answer from b");
    }
    assert_eq!(a.requests(), 3, "three failures in a row");
    assert_eq!(ask().await, "answer from b");
    assert_eq!(a.requests(), 3, "then it is skipped while it cools down");
    let skipped = nth_record(&gw, path, 4).await;
    assert!(skipped.attempts.is_empty());
    assert!(
        skipped
            .note
            .as_deref()
            .is_some_and(|n| n.contains("skipped a/model-a (cooling down")),
        "{:?}",
        skipped.note
    );

    a.heal();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        ask().await,
        "answer from a",
        "tried again after the cooldown"
    );
    assert_eq!(a.requests(), 4);
}

#[tokio::test]
async fn a_429_cools_its_target_for_its_retry_after() {
    let a = MockFlaky::failing("a", Failure::RateLimited { retry_after_s: 1 }).await;
    let b = MockFlaky::start("b").await;
    let (gw, _) = gateway(&a.base_url, &b.base_url, fast()).await;
    let path = "/api/ai-gateway/stream";
    let ask = || async {
        let res = post_json(
            &gw.url(path),
            None,
            json!({"message": "Hi", "model": "fast"}),
        )
        .await;
        seed_text(&res.text().await.unwrap())
    };
    assert_eq!(ask().await, "answer from b");
    assert_eq!(ask().await, "answer from b");
    assert_eq!(a.requests(), 1, "not asked again within its Retry-After");
    a.heal();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(ask().await, "answer from a", "asked again after it");
}

#[tokio::test]
async fn every_client_route_takes_a_route_as_its_model() {
    let closed = closed_port_url().await;
    let b = MockFlaky::start("b").await;
    let (gw, _) = gateway(&closed, &b.base_url, fast()).await;
    let posts = [
        (
            "/api/ai-gateway/stream",
            json!({"message": "Hi", "model": "fast"}),
        ),
        ("/v1/chat/completions", chat(true)),
        ("/v1/chat/completions", chat(false)),
        (
            "/v1/messages",
            json!({"model": "fast", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "fast", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "fast", "input": "Hi", "stream": true}),
        ),
        ("/v1/responses", json!({"model": "fast", "input": "Hi"})),
        ("/api/chat", json!({"message": "Hi", "model": "fast"})),
        (
            "/api/chat/stream",
            json!({"message": "Hi", "provider": "fast"}),
        ),
        (
            "/api/chatkit",
            json!({"type": "threads.create", "params": {"input": {
            "content": [{"type": "input_text", "text": "Hi"}], "attachments": [],
            "inference_options": {"model": "fast"}}}}),
        ),
    ];
    for (path, body) in posts {
        let res = post_json(&gw.url(path), Some(FRAMER_ORIGIN), body.clone()).await;
        assert_eq!(res.status(), 200, "{path} {body}");
        let text = res.text().await.unwrap();
        assert!(text.contains("answer from b"), "{path} {body}: {text}");
    }
    for (path, frame, last) in [
        (
            "/ws/chat",
            json!({"type": "chat", "id": "c1", "message": "Hi", "model": "fast"}),
            "done",
        ),
        (
            "/v1/responses",
            json!({"type": "response.create", "model": "fast", "input": "Hi"}),
            "response.completed",
        ),
    ] {
        let frames = websocket(&gw, path, frame).await;
        assert!(frames.contains("answer from b"), "{path}: {frames}");
        assert!(frames.contains(last), "{path}: {frames}");
    }
    let requests = 12;
    assert_eq!(b.requests(), requests);
    let routed = || {
        let records = gw.log.recent();
        records
            .iter()
            .filter(|r| r.route.as_deref() == Some("fast"))
            .count()
    };
    for _ in 0..300 {
        if routed() == requests {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(routed(), requests, "each record names the route");
}

/// Sends `frame` on a WebSocket at `path` and reads until a frame says `type` `done`,
/// `response.completed` or `error`; all the frames as text.
async fn websocket(gw: &TestGateway, path: &str, frame: Value) -> String {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let mut request = format!("ws://{}{path}", gw.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", FRAMER_ORIGIN.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::text(frame.to_string())).await.unwrap();
    let mut all = String::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await
    {
        let Message::Text(text) = message else {
            continue;
        };
        all.push_str(&text);
        let kind = serde_json::from_str::<Value>(&text).unwrap()["type"].clone();
        if ["done", "response.completed", "error"]
            .iter()
            .any(|k| kind == *k)
        {
            break;
        }
    }
    all
}

#[tokio::test]
async fn a_route_across_provider_kinds_translates_for_each_target() {
    let closed = closed_port_url().await;
    let b = MockFlaky::start("b").await;
    let routes = json!([{"name": "any", "targets": ["a", "claude"]}]);
    let (gw, claude) = gateway(&closed, &b.base_url, routes).await;
    // An Anthropic client, an OpenAI-compatible first target that is down, then Claude.
    let body =
        json!({"model": "any", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]});
    let res: Value = post_json(&gw.url("/v1/messages"), None, body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["content"][0]["text"], "Hello world", "{res}");
    assert_eq!(res["model"], "any");
    let sent = &claude.bodies()[0];
    assert_eq!(sent["model"], "claude-test");
    let res = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "any", "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let body = res.text().await.unwrap();
    assert_eq!(chunk_text(&body), "Hello world", "{body}");
    assert!(body.contains("data: [DONE]"), "{body}");
}

#[tokio::test]
async fn routes_are_listed_in_models_and_agents() {
    let b = MockFlaky::start("b").await;
    let routes = json!([{"name": "mostly-a", "targets": ["a", "b/model-x"], "strategy": "weighted", "weights": [3, 1]}]);
    let (gw, _) = gateway(&b.base_url, &b.base_url, routes).await;
    let models: Value = reqwest::get(gw.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let route = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "mostly-a")
        .expect("the route is a model");
    assert_eq!(route["owned_by"], "protogate-route");
    assert_eq!(
        route["route"],
        json!({"strategy": "weighted", "targets": ["a/model-a", "b/model-x"], "weights": [3, 1]})
    );
    let agents: Value = reqwest::get(gw.url("/api/agents"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "mostly-a")
        .expect("the route is an agent");
    assert_eq!(agent["kind"], "route");
    assert_eq!(agent["models"], json!(["mostly-a"]));
    assert_eq!(agent["targets"], json!(["a/model-a", "b/model-x"]));
    assert_eq!(agent["key_state"], "set");
    assert_eq!(agents["total"], 5);
}
