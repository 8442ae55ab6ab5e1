//! Where a stored key may go: only to the configured upstream route. A client's model
//! name cannot steer the signed ASAP call to another path, and an upstream's redirect is
//! reported, never followed with the key and the prompt.

mod common;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use common::mock_anthropic::MockAnthropic;
use common::mock_asap::{self, MockAsapGateway};
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn a_model_name_cannot_steer_the_signed_call_off_its_route() {
    let asap = MockAsapGateway::start().await;
    let gw = spawn_gateway_env(
        settings(json!({"default_provider": "gw", "providers": [
            {"id": "gw", "kind": "asap-gateway", "base_url": asap.invoke_url, "default_model": "claude-bedrock",
             "headers": {"X-Atlassian-UseCaseId": "proto-uc"},
             "asap": {"issuer": mock_asap::ISSUER, "key_id": mock_asap::KEY_ID, "audience": mock_asap::AUDIENCE}},
        ]})),
        &[("PROTOGATE_SECRET_GW", mock_asap::PRIVATE_KEY)],
    )
    .await;
    for model in [
        "ai-gateway/../../../admin/x?",
        "ai-gateway/a#frag",
        "ai-gateway/a/b",
        "../admin",
        "%2e%2e/admin",
    ] {
        for stream in [true, false] {
            let res = post_json(
                &gw.url("/v1/chat/completions"),
                None,
                json!({"model": format!("gw/{model}"), "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(
                !body.contains("keys to the kingdom"),
                "{model}: another path's answer never reaches the page: {body}"
            );
            assert!(
                status == 200 || status == 400 || status == 502,
                "{model}: answered by the configured route or refused: {status} {body}"
            );
        }
    }
    assert_eq!(
        asap.strays(),
        Vec::<String>::new(),
        "nothing reached a path outside the configured route"
    );
    for path in asap.paths() {
        assert!(
            path.ends_with("/invoke") || path.ends_with("/invoke-with-response-stream"),
            "{path}"
        );
    }

    let res = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "gw/..", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(res.status(), 400, "a path step is no model name");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model `..`"),
        "{body}"
    );
}

/// What an upstream on another host received: each request's headers and body.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<(HeaderMap, String)>>>);

async fn start_sink() -> (Sink, String) {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = sink.clone();
    let app = Router::new().fallback(move |headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            seen.0.lock().unwrap().push((headers, body));
            axum::Json(json!({"choices": [{"message": {"content": "evil answer"}}]}))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sink, url)
}

/// An upstream that answers everything with a 307 to `target`.
async fn start_redirector(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let location = format!("{target}{}", uri.path());
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", location)],
                "moved",
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_redirect_is_reported_and_never_followed_with_the_key() {
    let (sink, sink_url) = start_sink().await;
    let redirector = start_redirector(sink_url.clone()).await;
    let key = "sk-ant-redirect-0123456789";
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "claude", "kind": "anthropic", "base_url": redirector, "default_model": "claude-test", "needs_key": true},
            {"id": "oai", "kind": "openai", "base_url": format!("{redirector}/v1"), "default_model": "gpt-test", "needs_key": true},
        ]})),
        &[("PROTOGATE_SECRET_CLAUDE", key), ("PROTOGATE_SECRET_OAI", key)],
    )
    .await;
    for (path, model, stream) in [
        ("/v1/messages", "claude/claude-test", true),
        ("/v1/messages", "claude/claude-test", false),
        ("/v1/chat/completions", "oai/gpt-test", true),
        ("/v1/chat/completions", "claude/claude-test", false),
    ] {
        let res = post_json(
            &gw.url(path),
            Some(FRAMER_ORIGIN),
            json!({"model": model, "stream": stream, "max_tokens": 10,
                   "messages": [{"role": "user", "content": "a secret plan"}]}),
        )
        .await;
        assert_eq!(
            res.status(),
            502,
            "{path} {model}: a redirect is a failed upstream"
        );
        let body = res.text().await.unwrap();
        assert!(
            body.contains("redirected to") && body.contains(&sink_url) && body.contains("base_url"),
            "{path} {model}: the error names the target and what to fix: {body}"
        );
        assert!(!body.contains("evil answer"), "{body}");
    }
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "the redirect target never saw the key or the prompt"
    );
    let record = gw.record_for("/v1/messages", "POST").await;
    assert!(
        record.error.unwrap().contains("update base_url"),
        "the request log says what to fix"
    );
    assert!(!gw.log_files_text().await.contains(key));
}

#[tokio::test]
async fn the_same_providers_still_answer_when_they_do_not_redirect() {
    // The guard against redirects must not cost the normal path anything.
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start("sk-ant-test-0123456789").await;
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "oai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
            {"id": "claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
        ]})),
        &[("PROTOGATE_SECRET_CLAUDE", "sk-ant-test-0123456789")],
    )
    .await;
    for provider in ["oai", "claude"] {
        let res = post_json(
            &gw.url("/api/ai-gateway/stream"),
            None,
            json!({"message": "hi", "provider": provider}),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            seed_text(&res.text().await.unwrap()),
            "Hello world",
            "{provider}"
        );
    }
    assert_eq!(
        anthropic.keys(),
        vec!["sk-ant-test-0123456789"],
        "the key, marked sensitive, still reaches the configured upstream"
    );
}
