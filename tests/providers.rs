//! Every client format in front of every provider, streaming and not, against mock
//! upstreams that speak each provider's documented wire format; ASAP signing verified
//! by the mock gateway; upstream errors answered in the client's own format.

mod common;

use common::mock_anthropic::MockAnthropic;
use common::mock_asap::{self, MockAsapGateway};
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

struct World {
    gw: TestGateway,
    openai: MockOpenAi,
    anthropic: MockAnthropic,
    asap: MockAsapGateway,
}

async fn world_with(asap_key: &str, extra: Value) -> World {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start(ANTHROPIC_KEY).await;
    let asap = MockAsapGateway::start().await;
    let mut s = settings(json!({
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "oai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
            {"id": "claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
            {"id": "gw", "kind": "asap-gateway", "base_url": asap.invoke_url, "default_model": "claude-bedrock",
             "headers": {"X-Atlassian-UseCaseId": "proto-uc", "X-Atlassian-CloudId": "cloud-1", "X-Atlassian-UserId": "user-1"},
             "asap": {"issuer": mock_asap::ISSUER, "key_id": mock_asap::KEY_ID, "audience": mock_asap::AUDIENCE, "lifetime_s": 600}},
        ],
    }));
    if let (Value::Object(s), Value::Object(extra)) = (&mut s, extra) {
        s.extend(extra);
    }
    let oai_key = test_key("oai");
    let gw = spawn_gateway_env(
        s,
        &[
            ("PROTOGATE_SECRET_OAI", oai_key.as_str()),
            ("PROTOGATE_SECRET_CLAUDE", ANTHROPIC_KEY),
            ("PROTOGATE_SECRET_GW", asap_key),
        ],
    )
    .await;
    World {
        gw,
        openai,
        anthropic,
        asap,
    }
}

async fn world() -> World {
    world_with(mock_asap::PRIVATE_KEY, json!({})).await
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> (u16, String) {
    let res = post_json(&gw.url(path), Some(FRAMER_ORIGIN), body).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// `(event name, data)` of an Anthropic-format stream.
fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// The answer text as each client format delivers it, checking each format's end.
async fn ask(gw: &TestGateway, client: &str, model: &str) -> String {
    let messages = json!([{"role": "user", "content": "hi"}]);
    match client {
        "seed" => {
            let (status, body) = post(
                gw,
                "/api/ai-gateway/stream",
                json!({"message": "hi", "model": model}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(sse_data(&body).last().unwrap(), "[DONE]", "{body}");
            seed_text(&body)
        }
        "openai-stream" => {
            let (status, body) = post(
                gw,
                "/v1/chat/completions",
                json!({"model": model, "stream": true, "messages": messages}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let data = sse_data(&body);
            assert_eq!(data.last().unwrap(), "[DONE]", "{body}");
            let chunks: Vec<Value> = data[..data.len() - 1]
                .iter()
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            assert!(
                chunks
                    .iter()
                    .any(|c| c["choices"][0]["finish_reason"].is_string()),
                "a finish reason: {body}"
            );
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                .collect()
        }
        "openai" => {
            let (status, body) = post(
                gw,
                "/v1/chat/completions",
                json!({"model": model, "messages": messages}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        }
        "anthropic-stream" => {
            let (status, body) = post(
                gw,
                "/v1/messages",
                json!({"model": model, "max_tokens": 64, "stream": true, "messages": messages}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let events = anthropic_events(&body);
            assert_eq!(events.first().unwrap().0, "message_start", "{body}");
            assert_eq!(events.last().unwrap().0, "message_stop", "{body}");
            let delta = events
                .iter()
                .find(|(n, _)| n == "message_delta")
                .expect("message_delta");
            assert!(delta.1["delta"]["stop_reason"].is_string(), "{body}");
            events
                .iter()
                .filter(|(n, _)| n == "content_block_delta")
                .filter_map(|(_, d)| d["delta"]["text"].as_str())
                .collect()
        }
        "anthropic" => {
            let (status, body) = post(
                gw,
                "/v1/messages",
                json!({"model": model, "max_tokens": 64, "messages": messages}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["type"], "message", "{v}");
            v["content"][0]["text"].as_str().unwrap().to_string()
        }
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn every_client_format_reaches_every_provider() {
    let w = world().await;
    for client in [
        "seed",
        "openai-stream",
        "openai",
        "anthropic-stream",
        "anthropic",
    ] {
        for (model, expected) in [
            ("demo/protogate-demo", "[Protogate demo]"),
            ("oai/gpt-test", "Hello world"),
            ("claude/claude-test", "Hello world"),
            ("gw/claude-bedrock", "Hello world"),
        ] {
            let text = ask(&w.gw, client, model).await;
            assert!(text.starts_with(expected), "{client} → {model}: {text:?}");
        }
    }
    assert!(w.asap.rejections().is_empty(), "{:?}", w.asap.rejections());
}

#[tokio::test]
async fn same_format_streams_pass_through_verbatim() {
    let w = world().await;
    let (_, body) = post(&w.gw, "/v1/messages", json!({"model": "claude/claude-test", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let names: Vec<String> = anthropic_events(&body)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"ping".to_string()),
        "the upstream's own events arrive, ping included: {names:?}"
    );
    assert!(
        body.contains("msg_mock01"),
        "the upstream's message id is kept"
    );
    assert_eq!(
        w.anthropic.bodies()[0]["model"],
        "claude-test",
        "only the model is rewritten"
    );
    assert_eq!(
        w.anthropic.bodies()[0]["messages"][0]["content"],
        "hi",
        "the client's body is forwarded as sent"
    );
}

#[tokio::test]
async fn openai_requests_are_translated_for_anthropic_and_back() {
    let w = world().await;
    let (status, body) = post(&w.gw, "/v1/chat/completions", json!({
        "model": "claude/claude-long", "stream": true, "stream_options": {"include_usage": true},
        "max_tokens": 77, "temperature": 0.2, "stop": ["STOP"],
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                     {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}],
    }))
    .await;
    assert_eq!(status, 200);
    let sent = &w.anthropic.bodies()[0];
    assert_eq!(
        sent["system"], "be brief",
        "system prompt moves to `system`"
    );
    assert_eq!(sent["max_tokens"], 77);
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["stop_sequences"], json!(["STOP"]));
    assert_eq!(
        sent["messages"].as_array().unwrap().len(),
        3,
        "roles kept, system removed"
    );
    assert_eq!(sent["messages"][1]["role"], "assistant");
    let chunks: Vec<Value> = sse_data(&body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "length"),
        "max_tokens → length: {body}"
    );
    let usage = chunks
        .iter()
        .find(|c| c["usage"].is_object())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["prompt_tokens"], 12);
    assert_eq!(usage["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn anthropic_requests_are_translated_for_openai_and_back() {
    let w = world().await;
    let (status, body) = post(
        &w.gw,
        "/v1/messages",
        json!({
            "model": "oai/gpt-test", "max_tokens": 50, "stop_sequences": ["END"],
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        }),
    )
    .await;
    assert_eq!(status, 200);
    let sent = &w.openai.bodies()[0];
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["stop"], json!(["END"]));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"], json!({"input_tokens": 9, "output_tokens": 2}));
    assert_eq!(v["model"], "oai/gpt-test");
}

#[tokio::test]
async fn the_asap_gateway_gets_a_signed_token_reused_across_requests() {
    let w = world().await;
    assert_eq!(ask(&w.gw, "seed", "gw/claude-bedrock").await, "Hello world");
    assert_eq!(
        ask(&w.gw, "openai", "gw/claude-bedrock").await,
        "Hello world"
    );
    assert_eq!(
        w.asap.paths(),
        [
            "/gw/claude-bedrock/invoke-with-response-stream",
            "/gw/claude-bedrock/invoke"
        ],
        "streaming uses /invoke-with-response-stream"
    );
    let tokens = w.asap.tokens();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        tokens[0], tokens[1],
        "the token is cached, not signed per request"
    );
    let headers = &w.asap.headers()[0];
    assert_eq!(headers["x-atlassian-usecaseid"], "proto-uc");
    assert_eq!(headers["x-atlassian-cloudid"], "cloud-1");
    assert_eq!(headers["x-atlassian-userid"], "user-1");
    assert!(headers["authorization"]
        .to_str()
        .unwrap()
        .starts_with("bearer ey"));
    let body = &w.asap.bodies()[0];
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
    let record = w.gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert_eq!(
        record.usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((12, 2)),
        "Bedrock's metrics become usage"
    );
}

#[tokio::test]
async fn a_token_signed_with_the_wrong_key_is_rejected_and_reported() {
    let w = world_with(mock_asap::OTHER_PRIVATE_KEY, json!({})).await;
    let (status, body) = post(
        &w.gw,
        "/api/ai-gateway/stream",
        json!({"message": "hi", "model": "gw/claude-bedrock"}),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("The AI gateway rejected the ASAP private key for provider 'gw'"),
        "{v}"
    );
    assert!(
        w.asap.rejections()[0].contains("invalid token"),
        "{:?}",
        w.asap.rejections()
    );
}

#[tokio::test]
async fn a_malformed_private_key_is_a_clear_error_without_the_key() {
    let w = world_with(include_str!("fixtures/malformed.pem"), json!({})).await;
    let (status, body) = post(
        &w.gw,
        "/api/ai-gateway/stream",
        json!({"message": "hi", "model": "gw/claude-bedrock"}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("ASAP private key of provider 'gw' cannot be used"),
        "{body}"
    );
    assert!(!body.contains("bm90IGEga2V5"), "the key is not echoed");
    assert!(
        w.asap.paths().is_empty(),
        "nothing is sent with a broken key"
    );
    let (status, _) = post(
        &w.gw,
        "/api/ai-gateway/stream",
        json!({"message": "hi", "model": "oai/gpt-test"}),
    )
    .await;
    assert_eq!(status, 200, "other providers keep working");
}

#[tokio::test]
async fn upstream_errors_come_back_in_the_clients_format() {
    let w = world().await;
    // A rejected key, asked in OpenAI's format, from Anthropic.
    let gw2 = spawn_gateway_env(
        settings(json!({"default_provider": "claude", "providers": [{"id": "claude", "kind": "anthropic", "base_url": w.anthropic.base_url, "default_model": "claude-test"}]})),
        &[("PROTOGATE_SECRET_CLAUDE", "sk-ant-wrong")],
    )
    .await;
    let (status, body) = post(
        &gw2,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 502);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["message"], "Anthropic rejected the API key for provider 'claude' (upstream status 401); check or replace it with `protogate secrets set claude`");
    let (_, body) = post(
        &gw2,
        "/v1/messages",
        json!({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error", "Anthropic's error shape: {v}");
    assert_eq!(v["error"]["type"], "api_error");

    // Rate limits keep their status in every format.
    let (status, body) = post(&w.gw, "/v1/messages", json!({"model": "claude/rate-limited", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(status, 429);
    assert!(body.contains("rate limit"), "{body}");

    // An error event inside the stream, in each client's stream format.
    let (_, body) = post(&w.gw, "/v1/chat/completions", json!({"model": "claude/overloaded", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let data = sse_data(&body);
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded"),
        "{body}"
    );
    let (_, body) = post(&w.gw, "/v1/messages", json!({"model": "oai/in-stream-error", "stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    let events = anthropic_events(&body);
    let (name, err) = events.last().unwrap();
    assert_eq!(name, "error", "{body}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"),
        "{body}"
    );

    // Cut streams from each provider are errors, not short answers.
    for model in ["claude/cut", "gw/cut"] {
        let (_, body) = post(
            &w.gw,
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": model}),
        )
        .await;
        let data = sse_data(&body);
        assert!(data[data.len() - 2].contains("was cut"), "{model}: {body}");
    }
}

#[tokio::test]
async fn an_unknown_provider_is_a_400_listing_the_configured_ones() {
    let w = world().await;
    let (status, body) = post(
        &w.gw,
        "/api/ai-gateway/stream",
        json!({"message": "hi", "provider": "gemini"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("unknown provider `gemini`; configured providers: demo, oai, claude, gw"),
        "{body}"
    );
    let models: Value = reqwest::get(w.gw.url("/v1/models"))
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
    assert_eq!(
        ids,
        [
            "demo/protogate-demo",
            "oai/gpt-test",
            "claude/claude-test",
            "gw/claude-bedrock"
        ]
    );
}

/// ChatKit's turns go through the same canonical model: every provider kind answers a
/// ChatKit thread, with the user's message in its upstream call.
#[tokio::test]
async fn chatkit_threads_are_answered_by_every_provider_kind() {
    let dir = tempfile::tempdir().unwrap();
    let w = world_with(
        mock_asap::PRIVATE_KEY,
        json!({"chatkit": {"dir": dir.path()}}),
    )
    .await;
    for model in [
        "demo/protogate-demo",
        "oai/gpt-test",
        "claude/claude-test",
        "gw/claude-bedrock",
    ] {
        let (status, body) = post(
            &w.gw,
            "/api/chatkit",
            json!({"type": "threads.create", "params": {"input": {
                "content": [{"type": "input_text", "text": format!("Hello via {model}")}],
                "attachments": [], "inference_options": {"model": model}
            }}}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {body}");
        let events: Vec<Value> = sse_data(&body)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(
            events.iter().all(|e| e["type"] != "error"),
            "{model}: {body}"
        );
        let text: String = events
            .iter()
            .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
            .map(|e| e["update"]["delta"].as_str().unwrap())
            .collect();
        assert!(!text.is_empty(), "{model} answered nothing: {body}");
        assert_eq!(events.last().unwrap()["type"], "thread.updated", "{model}");
    }
    let asked = |bodies: Vec<Value>, model: &str| {
        bodies
            .iter()
            .any(|b| b.to_string().contains(&format!("Hello via {model}")))
    };
    assert!(asked(w.openai.bodies(), "oai/gpt-test"));
    assert!(asked(w.anthropic.bodies(), "claude/claude-test"));
    assert!(asked(w.asap.bodies(), "gw/claude-bedrock"));
}
