//! Streaming end to end: the seed route and `/v1/chat/completions`, through the demo
//! provider and through a mock OpenAI upstream, including every way a stream can fail.

mod common;

use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

#[tokio::test]
async fn seed_route_streams_the_demo_answer_with_done() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "Make me a haiku"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let body = res.text().await.unwrap();
    let text = seed_text(&body);
    assert!(
        text.starts_with("[Protogate demo]"),
        "the demo labels itself: {text}"
    );
    assert!(
        text.contains("Make me a haiku"),
        "the demo echoes the prompt: {text}"
    );
    assert_eq!(
        sse_data(&body).last().unwrap(),
        "[DONE]",
        "the stream ends with [DONE]"
    );

    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert_eq!(record.provider.as_deref(), Some("demo"));
    assert_eq!(record.prompt.as_deref(), Some("Make me a haiku"));
    assert_eq!(record.answer.as_deref(), Some(text.as_str()));
    assert_eq!(record.origin.as_deref(), Some(FRAMER_ORIGIN));
    assert!(record.ttft_ms.is_some() && record.bytes_out > 0);
}

#[tokio::test]
async fn seed_route_through_openai_upstream_extracts_deltas() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("openai", &mock.base_url, json!({})).await;
    let body = post_json(&gw.url("/api/ai-gateway/stream"), None, json!({"message": "hi", "system": "be brief", "history": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"}]}))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(seed_text(&body), "Hello world");
    assert_eq!(sse_data(&body).last().unwrap(), "[DONE]");
    let sent = &mock.bodies()[0];
    assert_eq!(sent["model"], "gpt-test");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "user", "content": "hi"})
    );
}

#[tokio::test]
async fn openai_route_streams_demo_in_chunk_format() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let body = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "demo/protogate-demo", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "ping"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.contains("ping"), "{text}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0,
        "usage chunk when asked"
    );
}

#[tokio::test]
async fn openai_route_passes_upstream_chunks_through_verbatim() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("passthru", &mock.base_url, json!({})).await;
    let body = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "passthru/gpt-test", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let data = sse_data(&body);
    assert!(
        data[0].contains("\"system_fingerprint\":\"fp_mock\""),
        "upstream chunks arrive untouched: {}",
        data[0]
    );
    assert_eq!(data.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 11);
    let sent = &mock.bodies()[0];
    assert_eq!(sent["model"], "gpt-test", "only the model is rewritten");
    assert_eq!(
        sent["tools"][0]["function"]["name"], "f",
        "fields Protogate does not model pass through"
    );
    let record = gw.record_for("/v1/chat/completions", "POST").await;
    assert_eq!(record.answer.as_deref(), Some("Hello world"));
    assert_eq!(record.usage.map(|u| u.output_tokens), Some(2));
}

#[tokio::test]
async fn openai_route_without_stream_returns_a_completion() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("nostream", &mock.base_url, json!({})).await;
    let res = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(
        v["system_fingerprint"], "fp_mock",
        "same-format answers pass through"
    );

    let res = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "demo/x", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("[Protogate demo]"));
}

#[tokio::test]
async fn models_and_health_list_the_providers() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("openai", &mock.base_url, json!({})).await;
    let models: Value = reqwest::get(gw.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo/protogate-demo", "openai/gpt-test"]);
    for path in ["/health", "/api/health"] {
        let health: Value = reqwest::get(gw.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["providers"].as_array().unwrap().len(), 2);
        assert!(health["uptime_s"].is_u64());
    }
}

#[tokio::test]
async fn each_upstream_chunk_reaches_the_client_before_the_upstream_sends_the_last() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("gate", &mock.base_url, json!({})).await;
    for (path, body) in [
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "gated"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gated", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let res = post_json(&gw.url(path), None, body).await;
        let mut stream = res.bytes_stream();
        let mut seen = String::new();
        let got_first = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(chunk) = stream.next().await {
                seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if seen.contains("first") {
                    return;
                }
            }
        })
        .await;
        assert!(
            got_first.is_ok(),
            "{path}: the first chunk arrives while the upstream still holds the rest; saw {seen:?}"
        );
        assert!(!seen.contains("last"));
        mock.release();
        while let Some(chunk) = stream.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        assert!(
            seen.contains("last") && seen.ends_with("data: [DONE]\n\n"),
            "{path}: {seen}"
        );
    }
}

#[tokio::test]
async fn a_stream_cut_without_its_terminator_ends_with_an_error_event() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("cutter", &mock.base_url, json!({})).await;
    let body = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "hi", "model": "cut"}),
    )
    .await
    .text()
    .await
    .unwrap();
    let data = sse_data(&body);
    assert_eq!(seed_text(&body), "partial");
    let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(error["error"].as_str().unwrap().contains("cut"), "{error}");
    assert_eq!(data.last().unwrap(), "[DONE]");

    let body = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "cut", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let data = sse_data(&body);
    let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(
        error["error"]["message"].as_str().unwrap().contains("cut"),
        "OpenAI clients get an error object: {error}"
    );
    let record = gw.record_for("/v1/chat/completions", "POST").await;
    assert!(record.error.unwrap().contains("cut"));
}

#[tokio::test]
async fn errors_inside_and_between_chunks_become_error_events() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai(
        "flaky",
        &mock.base_url,
        json!({"limits": {"idle_timeout_ms": 300}}),
    )
    .await;
    for (model, words) in [("in-stream-error", "overloaded"), ("idle", "went quiet")] {
        let body = post_json(
            &gw.url("/api/ai-gateway/stream"),
            None,
            json!({"message": "hi", "model": model}),
        )
        .await
        .text()
        .await
        .unwrap();
        let data = sse_data(&body);
        let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(words),
            "{model}: {error}"
        );
        assert_eq!(data.last().unwrap(), "[DONE]");
    }
}

#[tokio::test]
async fn the_idle_timeout_counts_from_the_last_event_not_the_start() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai(
        "steady",
        &mock.base_url,
        json!({"limits": {"idle_timeout_ms": 300}}),
    )
    .await;
    // Eight events 100 ms apart: 0.8 s in all, never 300 ms without one.
    let body = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi", "model": "steady"}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(seed_text(&body), "tick ".repeat(8), "{body}");
    assert_eq!(sse_data(&body).last().unwrap(), "[DONE]");
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert_eq!(record.error, None);
}

#[tokio::test]
async fn upstream_failures_before_the_stream_get_fitting_statuses() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai(
        "failing",
        &mock.base_url,
        json!({"limits": {"first_byte_timeout_ms": 300}}),
    )
    .await;
    for (model, status, words) in [
        ("error500", 502, "boom upstream"),
        ("slow-headers", 504, "did not answer"),
        ("reject-key", 502, "rejected the API key"),
        ("rate-limited", 429, "Rate limit"),
    ] {
        let res = post_json(
            &gw.url("/api/ai-gateway/stream"),
            Some(FRAMER_ORIGIN),
            json!({"message": "hi", "model": model}),
        )
        .await;
        assert_eq!(res.status(), status, "{model}");
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            FRAMER_ORIGIN,
            "{model}: CORS on errors too"
        );
        if model == "rate-limited" {
            assert_eq!(
                res.headers()["retry-after"],
                "17",
                "the upstream's Retry-After is kept"
            );
        }
        let v: Value = res.json().await.unwrap();
        let error = v["error"].as_str().unwrap();
        assert!(
            error.contains(words) && error.contains("failing"),
            "{model}: {v}"
        );
        assert!(
            !v.to_string().contains("sk-te"),
            "{model}: no part of a key is echoed: {v}"
        );
    }
}

#[tokio::test]
async fn an_upstream_that_is_down_is_a_502_naming_the_provider() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = spawn_with_openai("local", &format!("http://{closed}/v1"), json!({})).await;
    let res = post_json(
        &gw.url("/v1/chat/completions"),
        Some(FRAMER_ORIGIN),
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["access-control-allow-origin"], FRAMER_ORIGIN);
    let v: Value = res.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not reach provider 'local'"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_key_is_a_401_saying_how_to_set_it() {
    require_secret_service(); // without one, the answer is "keychain not available" instead
    let gw =
        spawn_with_openai_key("keyless", "https://api.example.invalid/v1", json!({}), None).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("keyless") && error.contains("PROTOGATE_SECRET_KEYLESS"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai("cancel", &mock.base_url, json!({})).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi", "model": "endless"}),
    )
    .await;
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let cancelled = tokio::time::timeout(Duration::from_secs(5), async {
        while mock.dropped_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        cancelled.is_ok(),
        "the upstream stream is dropped once the client is gone"
    );
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert!(record.error.unwrap().contains("disconnected"));
}

#[tokio::test]
async fn bad_bodies_get_clear_400s_and_the_gateway_keeps_serving() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let client = reqwest::Client::new();
    for (body, words) in [
        ("{not json", "not valid JSON"),
        ("{\"message\": 5}", "expected a string"),
        ("{}", "missing field `message`"),
        ("", "empty"),
        ("{\"message\": \"\"}", "must not be empty"),
    ] {
        let res = client
            .post(gw.url("/api/ai-gateway/stream"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    // A text/plain body (a "simple" request that skips the preflight) is read as JSON.
    let res = client
        .post(gw.url("/api/ai-gateway/stream"))
        .header("content-type", "text/plain")
        .body(r#"{"message": "still fine"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(seed_text(&res.text().await.unwrap()).contains("still fine"));
}
