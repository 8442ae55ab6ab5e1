//! The cache (`"cache"` in the settings) against the real gateway on a real port and the
//! mock OpenAI upstream, whose received bodies count the upstream calls: an identical
//! request within the time to live is answered from memory (streams as the same events),
//! marked `X-Protogate-Cache: hit` and "cache hit, 0 tokens" in its record; anything that
//! differs is a miss; `Cache-Control` refreshes or bypasses; only complete answers are
//! kept; memory is bounded; identical requests in flight share one upstream call.

mod common;

use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::StreamExt;
use protogate::chat::Usage;
use protogate::request_log::Record;
use serde_json::{json, Value};

const OTHER_ORIGIN: &str = "https://project-xyz789.framercanvas.com";

/// A gateway in front of the mock (provider `openai`), with `cache` merged into the
/// cache settings (which are on).
async fn cached(mock: &MockOpenAi, cache: Value) -> TestGateway {
    let mut section = json!({"enabled": true});
    merge(&mut section, cache);
    spawn_with_openai("openai", &mock.base_url, json!({ "cache": section })).await
}

/// What a client got: the `X-Protogate-Cache` header and the body.
struct Got {
    status: u16,
    cache: Option<String>,
    body: String,
}

async fn send(
    gw: &TestGateway,
    path: &str,
    origin: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> Got {
    let mut req = reqwest::Client::new().post(gw.url(path)).json(body);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("the gateway answers");
    let status = res.status().as_u16();
    let cache = res
        .headers()
        .get("x-protogate-cache")
        .map(|v| v.to_str().unwrap().to_string());
    Got {
        status,
        cache,
        body: res.text().await.unwrap(),
    }
}

fn seed(message: &str) -> Value {
    json!({"message": message})
}

fn openai(model: &str, message: &str, stream: bool) -> Value {
    json!({"model": format!("openai/{model}"), "stream": stream,
           "messages": [{"role": "user", "content": message}]})
}

/// The finished records of requests to `path`, once there are `n`, oldest first.
async fn records(gw: &TestGateway, path: &str, n: usize) -> Vec<Record> {
    for _ in 0..300 {
        let found: Vec<Record> = gw
            .log
            .recent()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} records for {path}: {:?}", gw.log.recent());
}

fn cache_of(got: &Got) -> Option<&str> {
    got.cache.as_deref()
}

#[tokio::test]
async fn a_second_identical_stream_is_answered_from_memory_with_the_same_events() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let path = "/api/ai-gateway/stream";
    let first = send(&gw, path, Some(FRAMER_ORIGIN), &[], &seed("Say hello")).await;
    let second = send(&gw, path, Some(FRAMER_ORIGIN), &[], &seed("Say hello")).await;
    assert_eq!((first.status, cache_of(&first)), (200, Some("miss")));
    assert_eq!(
        cache_of(&second),
        Some("hit"),
        "the second is answered from memory"
    );
    assert_eq!(second.body, first.body, "the client sees the same events");
    assert_eq!(seed_text(&second.body), "Hello world");
    assert_eq!(mock.bodies().len(), 1, "one upstream call for both");

    let records = records(&gw, path, 2).await;
    let hit = &records[1];
    assert_eq!(hit.cache, Some("hit"));
    assert_eq!(hit.usage, Some(Usage::default()), "a hit bills no tokens");
    assert!(
        hit.note.as_deref().unwrap().contains("cache hit, 0 tokens"),
        "{hit:?}"
    );
    assert_eq!(
        hit.answer.as_deref(),
        Some("Hello world"),
        "the log still shows the answer"
    );
    assert_eq!(
        records[0].cache, None,
        "the first was answered by the upstream"
    );
}

#[tokio::test]
async fn a_passthrough_stream_replays_its_usage_chunk_but_bills_nothing() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let path = "/v1/chat/completions";
    let mut body = openai("gpt-test", "hi", true);
    body["stream_options"] = json!({"include_usage": true});
    let first = send(&gw, path, None, &[], &body).await;
    let second = send(&gw, path, None, &[], &body).await;
    assert_eq!(cache_of(&second), Some("hit"));
    assert_eq!(second.body, first.body, "the same chunks, byte for byte");
    assert!(
        second.body.contains("\"prompt_tokens\":9"),
        "{}",
        second.body
    );
    assert!(second.body.ends_with("data: [DONE]\n\n"));
    assert_eq!(mock.bodies().len(), 1);
    let records = records(&gw, path, 2).await;
    assert_eq!(
        records[0].usage.map(|u| u.output_tokens),
        Some(2),
        "the paying request"
    );
    assert_eq!(records[1].usage, Some(Usage::default()), "the hit");
}

#[tokio::test]
async fn whole_answers_are_answered_from_memory_too() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let body = openai("gpt-test", "hi", false);
    let first = send(&gw, "/v1/chat/completions", None, &[], &body).await;
    let second = send(&gw, "/v1/chat/completions", None, &[], &body).await;
    assert_eq!(cache_of(&first), Some("miss"));
    assert_eq!(cache_of(&second), Some("hit"));
    assert_eq!(second.body, first.body);
    assert_eq!(mock.bodies().len(), 1);
    let records = records(&gw, "/v1/chat/completions", 2).await;
    assert_eq!(records[1].usage, Some(Usage::default()));
    assert_eq!(records[1].finish_reason, Some("stop"));
}

#[tokio::test]
async fn every_chat_route_uses_the_cache() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let routes = [
        ("/api/ai-gateway/stream", seed("hi")),
        ("/v1/chat/completions", openai("gpt-test", "hi", true)),
        (
            "/v1/messages",
            json!({"model": "openai/gpt-test", "max_tokens": 50, "stream": true, "messages": hi}),
        ),
        (
            "/v1/messages",
            json!({"model": "openai/gpt-test", "max_tokens": 50, "messages": hi}),
        ),
        (
            "/v1/responses",
            json!({"model": "openai/gpt-test", "input": "hi", "stream": true}),
        ),
        ("/api/chat", json!({"message": "hi", "provider": "openai"})),
    ];
    for (i, (path, body)) in routes.iter().enumerate() {
        let first = send(&gw, path, Some(FRAMER_ORIGIN), &[], body).await;
        let second = send(&gw, path, Some(FRAMER_ORIGIN), &[], body).await;
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        assert_eq!(cache_of(&second), Some("hit"), "{path} {body}");
        assert!(
            second.body.contains("Hello") && second.body.contains("world"),
            "{path}: {}",
            second.body
        );
        assert_eq!(
            mock.bodies().len(),
            i + 1,
            "{path}: one upstream call for two requests"
        );
    }
}

#[tokio::test]
async fn another_origin_body_or_model_is_a_miss() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let path = "/v1/chat/completions";
    let asks = [
        (FRAMER_ORIGIN, openai("gpt-test", "hi", true)),
        (OTHER_ORIGIN, openai("gpt-test", "hi", true)),
        (FRAMER_ORIGIN, openai("gpt-test", "hello", true)),
        (FRAMER_ORIGIN, openai("gpt-other", "hi", true)),
        (FRAMER_ORIGIN, openai("gpt-test", "hi", false)),
    ];
    for (origin, body) in &asks {
        let got = send(&gw, path, Some(origin), &[], body).await;
        assert_eq!(cache_of(&got), Some("miss"), "{origin} {body}");
    }
    assert_eq!(
        mock.bodies().len(),
        asks.len(),
        "each answered by the upstream"
    );
    let again = send(&gw, path, Some(OTHER_ORIGIN), &[], &asks[1].1).await;
    assert_eq!(
        cache_of(&again),
        Some("hit"),
        "each was kept for its own origin"
    );
}

#[tokio::test]
async fn an_answer_is_forgotten_after_its_time_to_live() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({"ttl_s": 1})).await;
    let body = seed("hi");
    send(&gw, "/api/ai-gateway/stream", None, &[], &body).await;
    let soon = send(&gw, "/api/ai-gateway/stream", None, &[], &body).await;
    assert_eq!(cache_of(&soon), Some("hit"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = send(&gw, "/api/ai-gateway/stream", None, &[], &body).await;
    assert_eq!(cache_of(&later), Some("miss"), "past the time to live");
    assert_eq!(mock.bodies().len(), 2);
}

#[tokio::test]
async fn no_cache_refreshes_and_no_store_bypasses() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let path = "/api/ai-gateway/stream";
    let a = seed("a");
    send(&gw, path, None, &[], &a).await;
    let refreshed = send(&gw, path, None, &[("cache-control", "no-cache")], &a).await;
    assert_eq!(
        cache_of(&refreshed),
        Some("miss"),
        "no-cache asks the upstream again"
    );
    assert_eq!(mock.bodies().len(), 2);
    let after = send(&gw, path, None, &[], &a).await;
    assert_eq!(cache_of(&after), Some("hit"), "and its answer is stored");
    assert_eq!(mock.bodies().len(), 2);

    let bypassed = send(&gw, path, None, &[("cache-control", "no-store")], &a).await;
    assert_eq!(
        cache_of(&bypassed),
        None,
        "no-store: the cache stays out of it"
    );
    assert_eq!(seed_text(&bypassed.body), "Hello world");
    assert_eq!(
        mock.bodies().len(),
        3,
        "no-store is never answered from memory"
    );
    let b = seed("b");
    send(&gw, path, None, &[("cache-control", "no-store")], &b).await;
    let next = send(&gw, path, None, &[], &b).await;
    assert_eq!(cache_of(&next), Some("miss"), "no-store stored nothing");
    assert_eq!(mock.bodies().len(), 5);
}

#[tokio::test]
async fn a_failed_or_cut_answer_is_never_stored() {
    let mock = MockOpenAi::start().await;
    for coalesce in [true, false] {
        let gw = cached(&mock, json!({"coalesce": coalesce})).await;
        for (model, stream) in [
            ("cut", true),
            ("in-stream-error", true),
            ("error500", false),
            ("error500", true),
        ] {
            let before = mock.bodies().len();
            for _ in 0..2 {
                let got = send(
                    &gw,
                    "/v1/chat/completions",
                    None,
                    &[],
                    &openai(model, "hi", stream),
                )
                .await;
                assert_ne!(cache_of(&got), Some("hit"), "{model}: {}", got.body);
            }
            assert_eq!(
                mock.bodies().len(),
                before + 2,
                "{model}: both asked the upstream"
            );
        }
    }
}

#[tokio::test]
async fn memory_is_bounded_in_answers_and_bytes() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({"max_entries": 1})).await;
    let path = "/api/ai-gateway/stream";
    send(&gw, path, None, &[], &seed("a")).await;
    send(&gw, path, None, &[], &seed("b")).await;
    let a = send(&gw, path, None, &[], &seed("a")).await;
    assert_eq!(cache_of(&a), Some("miss"), "b took a's place");
    let a = send(&gw, path, None, &[], &seed("a")).await;
    assert_eq!(cache_of(&a), Some("hit"));
    assert_eq!(mock.bodies().len(), 3);

    let small = cached(&mock, json!({"max_bytes": 200})).await;
    send(&small, path, None, &[], &seed("a")).await;
    let again = send(&small, path, None, &[], &seed("a")).await;
    assert_eq!(
        cache_of(&again),
        Some("miss"),
        "an answer over max_bytes is not kept"
    );
}

#[tokio::test]
async fn the_cache_is_off_by_default() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("openai", &mock.base_url, json!({})).await;
    for _ in 0..2 {
        let got = send(&gw, "/api/ai-gateway/stream", None, &[], &seed("hi")).await;
        assert_eq!(
            cache_of(&got),
            None,
            "no cache header while the cache is off"
        );
    }
    assert_eq!(mock.bodies().len(), 2);
}

#[tokio::test]
async fn a_provider_switched_off_or_a_hot_request_is_not_cached() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({"providers": {"openai": false}})).await;
    for _ in 0..2 {
        send(&gw, "/api/ai-gateway/stream", None, &[], &seed("hi")).await;
    }
    assert_eq!(mock.bodies().len(), 2, "openai is out of the cache");

    let gw = cached(&mock, json!({"max_temperature": 0.5})).await;
    let mut hot = openai("gpt-test", "hi", true);
    hot["temperature"] = json!(0.9);
    let mut cool = hot.clone();
    cool["temperature"] = json!(0);
    let unsaid = openai("gpt-test", "hi", true);
    for body in [&hot, &hot, &unsaid, &unsaid, &cool, &cool] {
        send(&gw, "/v1/chat/completions", None, &[], body).await;
    }
    assert_eq!(
        mock.bodies().len(),
        2 + 5,
        "only the cool request was answered from memory"
    );
}

/// Streamed requests for the mock's `gated` model: each returns once its head is in (the
/// gateway sends the head with the first event), and holds the body.
async fn gated_clients(gw: &TestGateway, n: usize) -> Vec<reqwest::Response> {
    let url = gw.url("/v1/chat/completions");
    let body = openai("gated", "draw me a button", true);
    let sends = (0..n).map(|_| {
        let request = reqwest::Client::new()
            .post(&url)
            .header("origin", FRAMER_ORIGIN)
            .json(&body);
        async move { request.send().await.unwrap() }
    });
    futures_util::future::join_all(sends).await
}

#[tokio::test]
async fn ten_identical_streams_at_once_cost_one_upstream_call() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let clients = gated_clients(&gw, 10).await;
    assert_eq!(mock.bodies().len(), 1, "ten requests, one upstream call");
    mock.release();
    let mut how = vec![];
    let mut bodies = vec![];
    for res in clients {
        how.push(
            res.headers()["x-protogate-cache"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        bodies.push(res.text().await.unwrap());
    }
    assert_eq!(
        how.iter().filter(|h| *h == "coalesced").count(),
        9,
        "{how:?}"
    );
    assert_eq!(how.iter().filter(|h| *h == "miss").count(), 1, "{how:?}");
    for body in &bodies {
        assert_eq!(body, &bodies[0], "every client gets the same whole answer");
    }
    assert!(
        bodies[0].contains("first")
            && bodies[0].contains(" last")
            && bodies[0].ends_with("data: [DONE]\n\n")
    );
    let records = records(&gw, "/v1/chat/completions", 10).await;
    let coalesced: Vec<&Record> = records
        .iter()
        .filter(|r| r.cache == Some("coalesced"))
        .collect();
    assert_eq!(coalesced.len(), 9);
    assert!(coalesced
        .iter()
        .all(|r| r.usage == Some(Usage::default()) && r.error.is_none()));
    assert_eq!(mock.bodies().len(), 1);
}

#[tokio::test]
async fn a_client_that_leaves_does_not_stop_the_others() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let mut clients = gated_clients(&gw, 3).await;
    // The client whose call it is (its header says `miss`) and another leave mid-answer.
    let first = clients
        .iter()
        .position(|c| c.headers()["x-protogate-cache"] == "miss")
        .expect("one client made the call");
    let mut leaving = clients.remove(first).bytes_stream();
    leaving.next().await.unwrap().unwrap();
    drop(leaving);
    drop(clients.remove(0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    mock.release();
    let body = clients.remove(0).text().await.unwrap();
    assert!(
        body.contains("first") && body.contains(" last") && body.ends_with("data: [DONE]\n\n"),
        "{body}"
    );
    assert_eq!(
        mock.dropped_streams(),
        0,
        "the upstream call went on to its end"
    );
    assert_eq!(mock.bodies().len(), 1);
}

#[tokio::test]
async fn when_every_client_has_left_the_upstream_call_is_cancelled() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let url = gw.url("/v1/chat/completions");
    let body = openai("endless", "go on", true);
    let mut streams = vec![];
    for _ in 0..3 {
        let res = post_json(&url, Some(FRAMER_ORIGIN), body.clone()).await;
        let mut stream = res.bytes_stream();
        stream.next().await.unwrap().unwrap();
        streams.push(stream);
    }
    assert_eq!(mock.bodies().len(), 1, "the three share one call");
    streams.truncate(1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.dropped_streams(), 0, "one client still reads");
    drop(streams);
    let cancelled = tokio::time::timeout(Duration::from_secs(5), async {
        while mock.dropped_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        cancelled.is_ok(),
        "the last client left; the upstream call was cancelled"
    );
}

#[tokio::test]
async fn the_cache_header_is_readable_by_pages() {
    let mock = MockOpenAi::start().await;
    let gw = cached(&mock, json!({})).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        seed("hi"),
    )
    .await;
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-protogate-cache"), "{exposed}");
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, gw.url("/api/ai-gateway/stream"))
        .header("origin", FRAMER_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, cache-control",
        )
        .send()
        .await
        .unwrap();
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(
        allowed.contains("cache-control"),
        "a page may send Cache-Control: {allowed}"
    );
}
