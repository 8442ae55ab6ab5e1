//! The wiring spec's chat API against a real gateway on a real port: `POST /api/chat`,
//! the stream as POST and as GET (resumed after a cut, never asked twice), conversations
//! kept per origin and across restarts, uploads as image input, and `/api/agents`.

mod common;

use std::time::Duration;

use common::mock_anthropic::MockAnthropic;
use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
const OTHER_ORIGIN: &str = "http://localhost:3000";

/// A one-pixel PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x02, 0x01, 0xe2, 0x21, 0x9b, 0xc2, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

struct World {
    gw: TestGateway,
    openai: MockOpenAi,
    anthropic: MockAnthropic,
}

async fn world(extra: Value) -> World {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start(ANTHROPIC_KEY).await;
    let mut s = settings(json!({
        "default_provider": "openai",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "openai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
            {"id": "claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
        ],
    }));
    merge(&mut s, extra);
    let key = test_key("openai");
    let gw = spawn_gateway_env(
        s,
        &[
            ("PROTOGATE_SECRET_OPENAI", key.as_str()),
            ("PROTOGATE_SECRET_CLAUDE", ANTHROPIC_KEY),
        ],
    )
    .await;
    World {
        gw,
        openai,
        anthropic,
    }
}

/// A GET as a page on `origin` sends it.
async fn get(url: impl reqwest::IntoUrl, origin: &str) -> reqwest::Response {
    let request = reqwest::Client::new().get(url).header("origin", origin);
    request.send().await.unwrap()
}

/// A DELETE as a page on `origin` sends it.
async fn delete(url: impl reqwest::IntoUrl, origin: &str) -> reqwest::Response {
    let request = reqwest::Client::new().delete(url).header("origin", origin);
    request.send().await.unwrap()
}

async fn chat(w: &World, origin: Option<&str>, body: Value) -> (u16, Value) {
    let r = post_json(&w.gw.url("/api/chat"), origin, body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The `(id, data)` of each event of an SSE body.
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let field = |name: &str| {
                e.lines()
                    .find_map(|l| l.strip_prefix(name).map(String::from))
                    .unwrap_or_default()
            };
            (field("id: "), field("data: "))
        })
        .collect()
}

#[tokio::test]
async fn post_chat_answers_the_spec_shape_and_names_unknown_providers() {
    let w = world(json!({})).await;
    let (status, body) = chat(
        &w,
        Some(FRAMER_ORIGIN),
        json!({"message": "Hello", "provider": "openai"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "Hello world");
    assert_eq!(body["provider"], "openai");
    assert_eq!(body["model"], "openai/gpt-test");
    assert_eq!(body["finish_reason"], "stop");
    assert!(body["usage"]["input_tokens"].as_u64().is_some(), "{body}");
    assert!(
        body["conversation_id"]
            .as_str()
            .unwrap()
            .starts_with("thr_"),
        "{body}"
    );

    let (status, body) = chat(&w, None, json!({"message": "Hello", "provider": "claude"})).await;
    assert_eq!(
        (status, body["response"].as_str()),
        (200, Some("Hello world")),
        "{body}"
    );
    assert_eq!(body["model"], "claude/claude-test");

    let (status, body) = chat(
        &w,
        None,
        json!({"message": "Hello", "provider": "huggingface"}),
    )
    .await;
    assert_eq!(status, 400);
    let why = body["error"].as_str().unwrap();
    assert!(
        why.contains("huggingface") && why.contains("demo, openai, claude"),
        "{why}"
    );
    let (status, body) = chat(&w, None, json!({"message": 42})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("`message`"),
        "{body}"
    );
    let record = w.gw.record_for("/api/chat", "POST").await;
    assert_eq!(record.status, 400);
}

#[tokio::test]
async fn a_conversation_keeps_its_history_per_origin_and_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = json!({"chatkit": {"dir": dir.path(), "max_threads": 2}});
    let w = world(store.clone()).await;
    let (_, first) = chat(
        &w,
        Some(FRAMER_ORIGIN),
        json!({"message": "one", "system": "be brief"}),
    )
    .await;
    let id = first["conversation_id"].as_str().unwrap().to_string();
    for message in ["two", "three"] {
        let (status, body) = chat(
            &w,
            Some(FRAMER_ORIGIN),
            json!({"message": message, "conversation_id": id}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["conversation_id"], id.as_str());
    }
    // The upstream saw the whole history on the third turn, and the system prompt kept.
    let last = w.openai.bodies().pop().unwrap();
    let said: Vec<(String, String)> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().into(),
                m["content"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let expected = [
        ("system", "be brief"),
        ("user", "one"),
        ("assistant", "Hello world"),
        ("user", "two"),
        ("assistant", "Hello world"),
        ("user", "three"),
    ];
    assert_eq!(said.len(), expected.len(), "{said:?}");
    for ((role, text), (want_role, want_text)) in said.iter().zip(expected) {
        assert_eq!(
            (role.as_str(), text.as_str()),
            (want_role, want_text),
            "{said:?}"
        );
    }

    let url = w.gw.url(&format!("/api/conversations/{id}"));
    let mine = get(&url, FRAMER_ORIGIN).await;
    assert_eq!(mine.status(), 200);
    let mine: Value = mine.json().await.unwrap();
    assert_eq!(mine["messages"].as_array().unwrap().len(), 6, "{mine}");
    assert_eq!(mine["system"], "be brief");
    // Another page learns nothing of it, and cannot add to it.
    let theirs = get(&url, OTHER_ORIGIN).await;
    assert_eq!(theirs.status(), 404);
    assert_eq!(
        theirs.headers()["access-control-allow-origin"],
        OTHER_ORIGIN
    );
    let (status, body) = chat(
        &w,
        Some(OTHER_ORIGIN),
        json!({"message": "hi", "conversation_id": id}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("conversation"),
        "{body}"
    );
    drop(w);

    // A restart keeps it; the count bound evicts the oldest.
    let w = world(store).await;
    let again = get(w.gw.url(&format!("/api/conversations/{id}")), FRAMER_ORIGIN).await;
    assert_eq!(again.status(), 200);
    for _ in 0..2 {
        chat(&w, Some(FRAMER_ORIGIN), json!({"message": "new"})).await;
    }
    let evicted = get(w.gw.url(&format!("/api/conversations/{id}")), FRAMER_ORIGIN).await;
    assert_eq!(evicted.status(), 404);

    let (_, body) = chat(&w, Some(FRAMER_ORIGIN), json!({"message": "bye"})).await;
    let id = body["conversation_id"].as_str().unwrap();
    let url = w.gw.url(&format!("/api/conversations/{id}"));
    let gone = delete(&url, OTHER_ORIGIN).await;
    assert_eq!(gone.status(), 404, "another page cannot delete it");
    let gone = delete(&url, FRAMER_ORIGIN).await;
    assert_eq!(gone.status(), 200);
    let after = get(&url, FRAMER_ORIGIN).await;
    assert_eq!(after.status(), 404);
}

#[tokio::test]
async fn the_post_stream_names_its_conversation_first_and_numbers_every_event() {
    let w = world(json!({})).await;
    let r = post_json(
        &w.gw.url("/api/chat/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "Hello"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], FRAMER_ORIGIN);
    let body = r.text().await.unwrap();
    let events = sse_events(&body);
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["provider"], "openai");
    assert_eq!(first["model"], "openai/gpt-test");
    assert!(
        first.get("text").is_none(),
        "a seed reader must pass over it"
    );
    assert!(events.iter().all(|(id, _)| !id.is_empty()), "{body}");
    assert_eq!(seed_text(&body), "Hello world");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(events.last().unwrap().0.ends_with("-done"), "{body}");

    // A failure after the start is one error event, then [DONE].
    let r = post_json(
        &w.gw.url("/api/chat/stream"),
        None,
        json!({"message": "Hi", "model": "openai/cut"}),
    )
    .await;
    let data: Vec<String> = sse_events(&r.text().await.unwrap())
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert!(data[data.len() - 2].contains("\"error\""), "{data:?}");
    assert_eq!(data.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn an_eventsource_that_comes_back_after_done_is_told_204_and_nothing_is_asked_twice() {
    let w = world(json!({})).await;
    let client = reqwest::Client::new();
    let url = w.gw.url("/api/chat/stream?message=Hello&provider=openai");
    let r = get(&url, FRAMER_ORIGIN).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    assert!(body.starts_with("retry: "), "{body}");
    assert_eq!(seed_text(&body), "Hello world");
    let last_id = sse_events(&body).last().unwrap().0.clone();
    // What the browser does on its own when the server closes the stream.
    let again = client
        .get(&url)
        .header("origin", FRAMER_ORIGIN)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204);
    assert_eq!(
        again.headers()["access-control-allow-origin"],
        FRAMER_ORIGIN
    );
    assert_eq!(w.openai.bodies().len(), 1, "the model was asked once");

    let bad = client
        .get(w.gw.url("/api/chat/stream?provider=openai"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = client
        .get(w.gw.url("/api/chat/stream?message=hi&temperature=warm"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_stream_cut_mid_answer_resumes_without_a_second_call_or_a_lost_word() {
    let w = world(json!({})).await;
    let client = reqwest::Client::new();
    let url =
        w.gw.url("/api/chat/stream?message=Hello&model=openai/gated");
    let r = get(&url, FRAMER_ORIGIN).await;
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("first") {
        seen.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    // The connection is cut: the page's EventSource will come back with the last id.
    drop(body);
    let last_id = sse_events(&seen).last().unwrap().0.clone();
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.openai.release();
    let rest = client
        .get(&url)
        .header("origin", FRAMER_ORIGIN)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    let rest = rest.text().await.unwrap();
    assert_eq!(
        format!("{}{}", seed_text(&seen), seed_text(&rest)),
        "first last"
    );
    assert_eq!(sse_events(&rest).last().unwrap().1, "[DONE]");
    assert_eq!(
        w.openai.bodies().len(),
        1,
        "one upstream call for the whole answer"
    );
    assert_eq!(
        w.openai.dropped_streams(),
        0,
        "the cut did not cut the upstream call"
    );
    let resumed =
        w.gw.log
            .recent()
            .into_iter()
            .filter(|r| r.path == "/api/chat/stream")
            .count();
    assert!(resumed >= 2, "both connections are in the log");

    // Another page cannot pick it up, and a stream that is not kept says the answer was lost.
    for (origin, id) in [
        (OTHER_ORIGIN, last_id.clone()),
        (FRAMER_ORIGIN, "cs_0000000000000000-3".to_string()),
    ] {
        let lost = client
            .get(&url)
            .header("origin", origin)
            .header("last-event-id", id)
            .send()
            .await
            .unwrap();
        let lost = lost.text().await.unwrap();
        let events = sse_events(&lost);
        assert!(events[0].1.contains("no longer kept"), "{lost}");
        assert_eq!(events[1].1, "[DONE]");
        assert!(!events[1].0.is_empty() && events[1].0.ends_with("-done"));
    }
    assert_eq!(w.openai.bodies().len(), 1);
}

async fn upload(
    w: &World,
    origin: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
    conversation: Option<&str>,
) -> (u16, Value) {
    // A multipart form as a browser's FormData writes it.
    let boundary = "----protogate-test-boundary";
    let mut body = Vec::new();
    if let Some(id) = conversation {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"conversation_id\"\r\n\r\n{id}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = reqwest::Client::new()
        .post(w.gw.url("/api/upload"))
        .header("origin", origin)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_uploaded_image_reaches_the_model_in_its_own_format() {
    let w = world(json!({"chatkit": {"max_upload_bytes": 1000}})).await;
    let (status, up) = upload(
        &w,
        FRAMER_ORIGIN,
        "dot.png",
        "image/png",
        PNG.to_vec(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(
        (up["filename"].as_str(), up["content_type"].as_str()),
        (Some("dot.png"), Some("image/png"))
    );
    assert_eq!(up["size"], PNG.len());
    let file_id = up["file_id"].as_str().unwrap();
    // Another page cannot use it.
    let (status, _) = chat(
        &w,
        Some(OTHER_ORIGIN),
        json!({"message": "what is it?", "file_ids": [file_id]}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = chat(
        &w,
        Some(FRAMER_ORIGIN),
        json!({"message": "what is it?", "file_ids": [file_id]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = w.openai.bodies().pop().unwrap();
    let parts = sent["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    let image = parts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "image_url")
        .expect("an image part");
    assert!(
        image["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR"),
        "{image}"
    );

    // Uploaded for a conversation, it goes with that conversation's next message.
    let conversation = body["conversation_id"].as_str().unwrap();
    let (status, _) = upload(
        &w,
        FRAMER_ORIGIN,
        "dot.png",
        "image/png",
        PNG.to_vec(),
        Some(conversation),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = chat(
        &w,
        Some(FRAMER_ORIGIN),
        json!({"message": "and this?", "conversation_id": conversation, "provider": "claude"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = w.anthropic.bodies().pop().unwrap();
    let messages = sent["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["content"].as_array().unwrap();
    let image = last
        .iter()
        .find(|b| b["type"] == "image")
        .expect("an image block");
    assert_eq!(image["source"]["type"], "base64");
    assert_eq!(image["source"]["media_type"], "image/png");
    // The first turn's image is history now, also in Anthropic's format.
    assert!(messages[0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["type"] == "image"));

    let (status, body) = upload(
        &w,
        FRAMER_ORIGIN,
        "spec.pdf",
        "application/pdf",
        b"%PDF-1.7".to_vec(),
        None,
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PNG, JPEG, GIF or WebP"),
        "{body}"
    );
    let (status, _) = upload(
        &w,
        FRAMER_ORIGIN,
        "big.png",
        "image/png",
        vec![0u8; 5000],
        None,
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = upload(
        &w,
        FRAMER_ORIGIN,
        "dot.png",
        "image/png",
        PNG.to_vec(),
        Some("thr_nothere"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn agents_describe_the_providers_without_secrets_or_urls() {
    let w = world(json!({})).await;
    let r = get(w.gw.url("/api/agents"), FRAMER_ORIGIN).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["total"], 3);
    let openai = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "openai")
        .unwrap();
    assert_eq!(openai["kind"], "openai");
    assert_eq!(openai["capabilities"], json!(["chat"]));
    assert_eq!(openai["models"][0], "openai/gpt-test");
    assert_eq!(openai["default"], true);
    assert_eq!(openai["key_state"], "set");
    assert!(
        !text.contains(&test_key("openai")) && !text.contains(ANTHROPIC_KEY),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1"), "no upstream URL: {text}");
}

#[tokio::test]
async fn a_key_the_page_sends_never_goes_upstream_and_a_failed_turn_stores_nothing() {
    let w = world(json!({})).await;
    // The spec's client puts NEXT_PUBLIC_OPENAI_API_KEY in X-API-Key; Protogate sends
    // the keychain's key instead, and the page's goes nowhere.
    let r = reqwest::Client::new()
        .post(w.gw.url("/api/chat"))
        .header("origin", FRAMER_ORIGIN)
        .header("x-api-key", "sk-from-the-page")
        .json(&json!({"message": "Hello", "provider": "openai"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = w.openai.authorizations();
    assert_eq!(sent, [Some(format!("Bearer {}", test_key("openai")))]);
    let logged = w.gw.log_files_text().await;
    assert!(!logged.contains("sk-from-the-page") && !logged.contains(&test_key("openai")));

    // An upstream that fails: a clear error, and the conversation holds no half turn.
    let (status, first) = chat(&w, Some(FRAMER_ORIGIN), json!({"message": "one"})).await;
    assert_eq!(status, 200);
    let id = first["conversation_id"].as_str().unwrap();
    let (status, body) = chat(
        &w,
        Some(FRAMER_ORIGIN),
        json!({"message": "two", "conversation_id": id, "model": "openai/error500"}),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("openai"), "{body}");
    let stored: Value = get(w.gw.url(&format!("/api/conversations/{id}")), FRAMER_ORIGIN)
        .await
        .json()
        .await
        .unwrap();
    let said: Vec<&str> = stored["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(said, ["one", "Hello world"]);

    // A provider that is down: 502, and the gateway serves on.
    let down = spawn_with_openai("openai", "http://127.0.0.1:9/v1", json!({})).await;
    let r = post_json(&down.url("/api/chat"), None, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 502);
    let r = post_json(
        &down.url("/api/chat"),
        None,
        json!({"message": "hi", "provider": "demo"}),
    )
    .await;
    assert_eq!(r.status(), 200);
}
