//! `POST /api/search` through every search provider kind (Tavily and Brave as mocks in
//! their documented wire formats, the demo) in one answer shape; keys only in their
//! vendor's header; bad requests and upstream failures in plain words naming the
//! provider; the first-byte timeout; CORS; the provider's own queue; `protogate check`.
//! The mock Tavily is checked against Tavily's own Python client.

/// The checks by others' code: Tavily's own client against the mock, `protogate check`.
#[path = "search/clients.rs"]
mod clients;
mod common;

use common::mock_brave::MockBrave;
use common::mock_tavily::MockTavily;
use common::*;
use serde_json::{json, Value};

const TAVILY_KEY: &str = "tvly-test-0123456789abcdefSECRET";
const BRAVE_KEY: &str = "BSA-test-0123456789abcdefSECRET";

struct World {
    gw: TestGateway,
    tavily: MockTavily,
    brave: MockBrave,
}

/// A gateway with the demo, a Tavily and a Brave provider (their keys from the
/// environment) and an OpenAI-compatible one that cannot search; `extra` merged in.
async fn world_with(tavily_key: &'static str, brave_key: &'static str, extra: Value) -> World {
    let tavily = MockTavily::start(TAVILY_KEY).await;
    let brave = MockBrave::start(BRAVE_KEY).await;
    let mut s = settings(json!({"providers": [
        {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
        {"id": "tavily", "kind": "tavily", "base_url": tavily.base_url},
        {"id": "brave", "kind": "brave", "base_url": brave.base_url},
        {"id": "oai", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "default_model": "m"},
    ]}));
    merge(&mut s, extra);
    let gw = spawn_gateway_env(
        s,
        &[
            ("PROTOGATE_SECRET_TAVILY", tavily_key),
            ("PROTOGATE_SECRET_BRAVE", brave_key),
            ("PROTOGATE_SECRET_OAI", "sk-oai"),
        ],
    )
    .await;
    World { gw, tavily, brave }
}

async fn world() -> World {
    world_with(TAVILY_KEY, BRAVE_KEY, json!({})).await
}

/// Status, headers and JSON body of a search from the Framer canvas.
async fn search(gw: &TestGateway, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = post_json(&gw.url("/api/search"), Some(FRAMER_ORIGIN), body).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, headers, v)
}

/// The finished record of the search for `query`.
async fn record_of(gw: &TestGateway, query: &str) -> protogate::request_log::Record {
    for _ in 0..200 {
        let found = gw
            .log
            .recent()
            .into_iter()
            .find(|r| r.path == "/api/search" && r.prompt.as_deref() == Some(query));
        if let Some(r) = found {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no record of the search for {query:?}")
}

/// The answer has exactly the documented fields, whoever answered.
fn assert_shape(v: &Value, provider: &str, query: &str) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in &keys {
        assert!(
            ["query", "provider", "answer", "results"].contains(k),
            "unexpected `{k}`: {v}"
        );
    }
    assert_eq!(v["query"], query, "{v}");
    assert_eq!(v["provider"], provider, "{v}");
    assert!(v.get("answer").is_none_or(Value::is_string), "{v}");
    for r in v["results"].as_array().unwrap() {
        for field in ["title", "url", "content"] {
            assert!(r[field].is_string(), "`{field}` in {r}");
        }
        assert!(r.get("score").is_none_or(Value::is_f64), "{r}");
        let n = r.as_object().unwrap().len();
        assert!(n == 3 || n == 4, "only title, url, content, score: {r}");
    }
}

#[tokio::test]
async fn every_kind_answers_in_one_shape() {
    let w = world().await;

    let (status, _, v) = search(
        &w.gw,
        json!({"query": "who is Leo Messi?", "provider": "tavily", "max_results": 3}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_shape(&v, "tavily", "who is Leo Messi?");
    assert_eq!(
        v["answer"],
        "Mock Tavily's answer about “who is Leo Messi?”."
    );
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["url"],
        "https://en.wikipedia.org/wiki/Lionel_Messi"
    );
    assert_eq!(results[0]["score"], 0.86);
    // The documented request, with the provider's default search depth.
    assert_eq!(
        w.tavily.seen()[0].body,
        json!({"query": "who is Leo Messi?", "max_results": 3, "search_depth": "basic",
               "include_answer": true, "topic": "general"})
    );

    let (status, _, v) = search(&w.gw, json!({"query": "rust lang", "provider": "brave"})).await;
    assert_eq!(status, 200, "{v}");
    assert_shape(&v, "brave", "rust lang");
    assert!(v.get("answer").is_none(), "Brave writes no answer: {v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "the default count");
    assert_eq!(results[0]["title"], "rust lang & friends, part 1");
    assert_eq!(
        results[0]["content"],
        "All about rust lang: Brave's result 1."
    );
    assert_eq!(results[0]["url"], "https://example.org/rust-lang/1");
    let uri = &w.brave.seen()[0].uri;
    assert_eq!(uri, "/res/v1/web/search?q=rust+lang&count=5");

    // No provider named: the default search provider, here the demo (listed first).
    for body in [
        json!({"query": "cats"}),
        json!({"query": "cats", "provider": "demo"}),
    ] {
        let (status, _, v) = search(&w.gw, body).await;
        assert_eq!(status, 200, "{v}");
        assert_shape(&v, "demo", "cats");
        assert!(v["answer"]
            .as_str()
            .unwrap()
            .starts_with("[Protogate demo]"));
        assert!(v["results"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("[Protogate demo]"));
    }

    // max_results is clamped to 1..=20, never refused.
    for (asked, count) in [(0, 1), (-3, 1), (500, 20)] {
        let (status, _, v) = search(
            &w.gw,
            json!({"query": "clamp", "provider": "brave", "max_results": asked}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["results"].as_array().unwrap().len(), count);
        let uri = w.brave.seen().last().unwrap().uri.clone();
        assert!(uri.ends_with(&format!("&count={count}")), "{uri}");
    }

    // A prototype's text/plain body (no preflight) is read as JSON all the same.
    let res = reqwest::Client::new()
        .post(w.gw.url("/api/search"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"{"query": "plain", "provider": "tavily", "max_results": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);

    // The log: who answered, the query as the prompt, the results as the answer.
    let record = record_of(&w.gw, "plain").await;
    assert_eq!(record.provider.as_deref(), Some("tavily"));
    assert_eq!(record.model.as_deref(), Some("basic"));
    assert_eq!(record.prompt.as_deref(), Some("plain"));
    assert_eq!(record.status, 200);
    assert!(
        record.note.as_deref().unwrap().contains("1 result(s)"),
        "{record:?}"
    );
    assert!(
        record.answer.as_deref().unwrap().contains("Lionel_Messi"),
        "{record:?}"
    );
}

#[tokio::test]
async fn the_wiring_specs_default_provider_name_reaches_a_search_provider() {
    // The spec's client sends `provider: 'tavily'` unless told otherwise.
    let tavily = MockTavily::start(TAVILY_KEY).await;
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "web", "kind": "tavily", "base_url": tavily.base_url},
        ]})),
        &[("PROTOGATE_SECRET_WEB", TAVILY_KEY)],
    )
    .await;
    let (status, _, v) = search(&gw, json!({"query": "q", "provider": "tavily"})).await;
    assert_eq!(status, 200, "{v}");
    assert_shape(&v, "web", "q");
    assert_eq!(tavily.seen().len(), 1);
    let record = record_of(&gw, "q").await;
    assert!(record.note.unwrap().contains("`web` (tavily) answered"));

    // A fresh install (the demo only): the labelled demo answers, and says it is the demo.
    let gw = spawn_gateway(settings(json!({}))).await;
    let (status, _, v) = search(&gw, json!({"query": "q", "provider": "tavily"})).await;
    assert_eq!(status, 200, "{v}");
    assert_shape(&v, "demo", "q");
}

#[tokio::test]
async fn bad_requests_are_400s_that_say_what_to_do() {
    let w = world().await;
    for body in [
        json!({"query": ""}),
        json!({"query": "  \n"}),
        json!({"provider": "tavily"}),
    ] {
        let (status, headers, v) = search(&w.gw, body).await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("`query` is empty"),
            "{v}"
        );
        assert_eq!(headers["access-control-allow-origin"], FRAMER_ORIGIN);
    }
    let (status, _, v) = search(&w.gw, json!({"query": 5})).await;
    assert_eq!(status, 400, "{v}");

    let (status, _, v) = search(&w.gw, json!({"query": "q", "provider": "bing"})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"],
        "unknown provider `bing`; providers that can search the web: demo, tavily, brave"
    );
    let (status, _, v) = search(&w.gw, json!({"query": "q", "provider": "oai"})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["error"],
        "provider `oai` (openai) cannot search the web; providers that can: demo, tavily, brave"
    );
    assert!(w.tavily.seen().is_empty() && w.brave.seen().is_empty());
}

#[tokio::test]
async fn upstream_failures_name_the_provider_in_plain_words() {
    let w = world_with("tvly-wrong", "BSA-wrong", json!({})).await;
    let (status, headers, v) = search(&w.gw, json!({"query": "q", "provider": "tavily"})).await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"], "Tavily rejected the API key for provider 'tavily' (upstream status 401); check or replace it with `protogate secrets set tavily`");
    assert_eq!(
        v["details"],
        json!({"provider": "tavily", "upstream_status": 401})
    );
    assert_eq!(headers["access-control-allow-origin"], FRAMER_ORIGIN);
    // Brave refuses a wrong key with a 422, which is still a rejected key.
    let (status, _, v) = search(&w.gw, json!({"query": "q", "provider": "brave"})).await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"], "Brave Search rejected the API key for provider 'brave' (upstream status 422); check or replace it with `protogate secrets set brave`");

    let w = world().await;
    let cases = [
        ("tavily", "rate-limited", 429, "provider 'tavily' answered 429: Your request has been blocked due to excessive requests. Please reduce rate of requests."),
        ("brave", "rate-limited", 429, "provider 'brave' answered 429: Request rate limit exceeded for plan. (RATE_LIMITED)"),
        ("tavily", "plan-limit", 502, "provider 'tavily' answered 432: This request exceeds your plan's set usage limit. Please upgrade your plan or contact support@tavily.com"),
        ("tavily", "server-error", 502, "provider 'tavily' answered 500: Internal Server Error"),
        ("brave", "server-error", 502, "provider 'brave' answered 500: Internal server error. (INTERNAL_ERROR)"),
        ("tavily", "stall", 504, "provider 'tavily' did not answer within 1.5 s"),
        ("brave", "stall", 504, "provider 'brave' did not answer within 1.5 s"),
    ];
    for (provider, query, status_want, message) in cases {
        let (status, headers, v) =
            search(&w.gw, json!({"query": query, "provider": provider})).await;
        assert_eq!(status, status_want, "{provider} {query}: {v}");
        assert_eq!(v["error"], message, "{provider} {query}");
        assert_eq!(v["details"]["provider"], provider, "{v}");
        assert_eq!(headers["access-control-allow-origin"], FRAMER_ORIGIN);
        if (provider, query) == ("tavily", "rate-limited") {
            assert_eq!(
                headers["retry-after"], "7",
                "Tavily's Retry-After is passed on"
            );
        }
    }
}

#[tokio::test]
async fn keys_go_only_in_their_vendors_header() {
    let w = world().await;
    let mut responses = String::new();
    for (provider, query) in [
        ("tavily", "q"),
        ("tavily", "server-error"),
        ("tavily", "rate-limited"),
        ("brave", "q"),
        ("brave", "server-error"),
        ("brave", "rate-limited"),
    ] {
        let res = post_json(
            &w.gw.url("/api/search"),
            Some(FRAMER_ORIGIN),
            json!({"query": query, "provider": provider}),
        )
        .await;
        responses.push_str(&format!("{:?}", res.headers()));
        responses.push_str(&res.text().await.unwrap());
    }
    for res in [
        reqwest::get(w.gw.url("/api/agents")).await.unwrap(),
        reqwest::get(w.gw.url("/health")).await.unwrap(),
    ] {
        responses.push_str(&res.text().await.unwrap());
    }
    assert!(
        responses.contains("\"search\""),
        "capabilities listed: {responses}"
    );

    let tavily = w.tavily.seen();
    assert_eq!(tavily.len(), 3);
    for seen in &tavily {
        for (name, value) in &seen.headers {
            if name == "authorization" {
                assert_eq!(value, &format!("Bearer {TAVILY_KEY}"));
            } else {
                assert!(!value.contains(TAVILY_KEY), "{name}: {value}");
            }
        }
        assert!(!seen.body.to_string().contains(TAVILY_KEY));
    }
    let brave = w.brave.seen();
    assert_eq!(brave.len(), 3);
    for seen in &brave {
        for (name, value) in &seen.headers {
            if name == "x-subscription-token" {
                assert_eq!(value, BRAVE_KEY);
            } else {
                assert!(!value.contains(BRAVE_KEY), "{name}: {value}");
            }
        }
        assert!(seen
            .headers
            .iter()
            .any(|(n, v)| n == "accept" && v == "application/json"));
        assert!(!seen.uri.contains(BRAVE_KEY));
    }

    let files = w.gw.log_files_text().await;
    let records = format!("{:?}", w.gw.log.recent());
    assert!(files.contains("/api/search"), "the log files were written");
    for key in [TAVILY_KEY, BRAVE_KEY] {
        let part = &key[..12];
        for (what, text) in [
            ("responses", &responses),
            ("log files", &files),
            ("records", &records),
        ] {
            assert!(!text.contains(part), "a key in the {what}");
        }
    }
}

#[tokio::test]
async fn cors_answers_allowed_origins_and_refuses_others() {
    let w = world().await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, w.gw.url("/api/search"))
        .header("origin", FRAMER_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        FRAMER_ORIGIN
    );

    let (status, headers, _) = search(&w.gw, json!({"query": "q", "provider": "brave"})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], FRAMER_ORIGIN);
    assert!(headers.get("access-control-allow-credentials").is_none());

    let refused = post_json(
        &w.gw.url("/api/search"),
        Some("https://evil.example"),
        json!({"query": "q", "provider": "tavily"}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(
        w.tavily.seen().is_empty(),
        "a refused origin never reaches the upstream"
    );
}

#[tokio::test]
async fn the_providers_own_limit_applies_to_searches() {
    let tavily = MockTavily::start(TAVILY_KEY).await;
    let limits = json!({"requests_per_hour": 1, "burst": 1, "max_queue": 0});
    let gw = spawn_gateway_env(
        settings(json!({"providers": [
            {"id": "demo", "kind": "demo"},
            {"id": "tavily", "kind": "tavily", "base_url": tavily.base_url, "limits": limits},
        ]})),
        &[("PROTOGATE_SECRET_TAVILY", TAVILY_KEY)],
    )
    .await;
    let (status, _, v) = search(&gw, json!({"query": "first", "provider": "tavily"})).await;
    assert_eq!(status, 200, "{v}");
    let (status, headers, v) = search(&gw, json!({"query": "second", "provider": "tavily"})).await;
    assert_eq!(status, 429, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("tavily's limit of 1 request per hour"),
        "{v}"
    );
    assert!(headers.get("retry-after").is_some());
    assert_eq!(
        tavily.seen().len(),
        1,
        "the second search never went upstream"
    );
    // The demo has no limit of its own.
    let (status, _, _) = search(&gw, json!({"query": "third", "provider": "demo"})).await;
    assert_eq!(status, 200);
}
