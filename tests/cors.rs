//! Browser safety over real sockets: preflights (CORS and Private Network Access), CORS
//! headers on every kind of response, refused origins and hosts, limits, access token.

mod common;

use common::mock_openai::MockOpenAi;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn preflight(gw: &TestGateway, origin: &str, private_network: bool) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .request(Method::OPTIONS, gw.url("/api/ai-gateway/stream"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,x-api-key",
        );
    if private_network {
        req = req.header("access-control-request-private-network", "true");
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn preflight_from_framer_is_answered_with_pna() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let res = preflight(&gw, FRAMER_ORIGIN, true).await;
    assert!(res.status().is_success());
    let h = res.headers();
    assert_eq!(
        h["access-control-allow-origin"], FRAMER_ORIGIN,
        "the origin is echoed, not *"
    );
    assert!(h["vary"].to_str().unwrap().contains("origin"));
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("OPTIONS"),
        "{methods}"
    );
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["content-type", "authorization", "x-api-key"] {
        assert!(headers.contains(name), "{name} allowed: {headers}");
    }
    assert!(h.contains_key("access-control-max-age"));
    assert_eq!(h["access-control-allow-private-network"], "true");
    assert!(
        !h.contains_key("access-control-allow-credentials"),
        "credentials are never allowed"
    );

    let res = preflight(&gw, FRAMER_ORIGIN, false).await;
    assert!(
        !res.headers()
            .contains_key("access-control-allow-private-network"),
        "PNA only when asked"
    );
    let record = gw.record_for("/api/ai-gateway/stream", "OPTIONS").await;
    assert_eq!(
        (record.status, record.error),
        (200, None),
        "an answered preflight is no error in the log"
    );
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_cors_and_is_refused_with_a_reason() {
    let gw = spawn_gateway(settings(json!({}))).await;
    for origin in [
        "https://evil.example",
        "https://framer.com.evil.example",
        "https://evilframer.com",
        "null",
    ] {
        let res = preflight(&gw, origin, true).await;
        assert_eq!(res.status(), 403, "{origin}: preflight refused");
        assert!(
            !res.headers()
                .keys()
                .any(|k| k.as_str().starts_with("access-control-allow")),
            "{origin}: no Access-Control-Allow-* at all"
        );
        let res = post_json(
            &gw.url("/api/ai-gateway/stream"),
            Some(origin),
            json!({"message": "hi"}),
        )
        .await;
        assert_eq!(res.status(), 403, "{origin}: request refused");
        assert!(!res.headers().contains_key("access-control-allow-origin"));
    }
    let record = gw.record_for("/api/ai-gateway/stream", "OPTIONS").await;
    assert!(
        record.error.unwrap().contains("is not allowed"),
        "the log says why in plain words"
    );
}

#[tokio::test]
async fn a_published_framer_site_is_refused_until_that_one_origin_is_approved() {
    let site = "https://coffee-app.framer.app";
    let gw = spawn_gateway(settings(json!({}))).await;
    let res = preflight(&gw, site, true).await;
    assert_eq!(res.status(), 403, "anyone can publish on framer.app");
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(site),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains(site) && error.contains("cors.allowed_origins"),
        "the refusal names the origin and how to approve it: {error}"
    );
    assert!(
        !error.contains("any origin"),
        "it does not suggest allowing every origin: {error}"
    );
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert!(
        record.error.unwrap().contains(site),
        "the log names the origin"
    );

    let approved = spawn_gateway(settings(json!({"cors": {"allowed_origins": [site]}}))).await;
    let res = post_json(
        &approved.url("/api/ai-gateway/stream"),
        Some(site),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200, "an approved site works");
    assert_eq!(res.headers()["access-control-allow-origin"], site);
    let res = post_json(
        &approved.url("/api/ai-gateway/stream"),
        Some("https://someone-else.framer.app"),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 403, "approval is per origin");
}

#[tokio::test]
async fn allow_any_origin_lets_every_origin_in_with_the_access_token() {
    let token = "pg-token-0123456789";
    let gw = spawn_gateway_env(
        settings(json!({"cors": {"allow_any_origin": true}, "require_access_token": true})),
        &[("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", token)],
    )
    .await;
    let send = |auth: Option<&'static str>| {
        let mut req = reqwest::Client::new()
            .post(gw.url("/api/ai-gateway/stream"))
            .header("origin", "https://my-prototype.example")
            .json(&json!({"message": "hi"}));
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    let res = send(Some("pg-token-0123456789")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://my-prototype.example"
    );
    let res = send(None).await.unwrap();
    assert_eq!(res.status(), 401, "any origin still needs the token");
}

#[tokio::test]
async fn foreign_and_empty_hosts_are_refused_before_routing() {
    let gw = spawn_gateway(settings(json!({}))).await;
    for host in ["evil.example", "evil.example:5711", "127.0.0.1.nip.io", ""] {
        let res = raw_request(
            gw.addr,
            &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(res.starts_with("HTTP/1.1 403"), "Host {host:?}: {res}");
        assert!(res.contains("refused"), "{res}");
    }
    let res = raw_request(gw.addr, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(
        res.starts_with("HTTP/1.1 403") || res.starts_with("HTTP/1.1 400"),
        "missing Host: {res}"
    );
    let res = raw_request(
        gw.addr,
        "GET /health HTTP/1.1\r\nHost: localhost:5711\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

fn assert_cors(res: &reqwest::Response, what: &str) {
    assert_eq!(
        res.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some(FRAMER_ORIGIN),
        "{what}: an allowed origin gets CORS headers on this response too"
    );
}

#[tokio::test]
async fn every_error_an_allowed_origin_gets_carries_cors_headers() {
    let mock = MockOpenAi::start().await;
    let gw = spawn_with_openai(
        "up",
        &mock.base_url,
        json!({"limits": {"max_body_bytes": 1000, "first_byte_timeout_ms": 300}}),
    )
    .await;
    let url = gw.url("/api/ai-gateway/stream");

    let res = post_json(&url, Some(FRAMER_ORIGIN), json!({"nope": 1})).await;
    assert_eq!(res.status(), 400);
    assert_cors(&res, "400");

    let res = post_json(
        &url,
        Some(FRAMER_ORIGIN),
        json!({"message": "x".repeat(5000)}),
    )
    .await;
    assert_eq!(res.status(), 413);
    assert_cors(&res, "413");
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit"),
        "{v}"
    );

    let res = post_json(
        &url,
        Some(FRAMER_ORIGIN),
        json!({"message": "hi", "model": "error500"}),
    )
    .await;
    assert_eq!(res.status(), 502);
    assert_cors(&res, "502");

    let res = post_json(
        &url,
        Some(FRAMER_ORIGIN),
        json!({"message": "hi", "model": "slow-headers"}),
    )
    .await;
    assert_eq!(res.status(), 504);
    assert_cors(&res, "504");

    let res = post_json(
        &url,
        Some(FRAMER_ORIGIN),
        json!({"message": "hi", "model": "cut"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_cors(&res, "a stream that fails half-way");

    let res = post_json(&gw.url("/no/such/route"), Some(FRAMER_ORIGIN), json!({})).await;
    assert_eq!(res.status(), 404);
    assert_cors(&res, "404");
}

#[tokio::test]
async fn missing_key_401_carries_cors_headers() {
    let gw =
        spawn_with_openai_key("nokey", "https://api.example.invalid/v1", json!({}), None).await;
    require_secret_service();
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_cors(&res, "401");
}

#[tokio::test]
async fn rate_limit_is_per_origin_with_retry_after_and_cors() {
    let gw = spawn_gateway(settings(
        json!({"limits": {"requests_per_minute": 1, "burst": 2}}),
    ))
    .await;
    let url = gw.url("/api/ai-gateway/stream");
    for _ in 0..2 {
        let res = post_json(&url, Some(FRAMER_ORIGIN), json!({"message": "hi"})).await;
        assert_eq!(res.status(), 200, "within the burst");
        res.text().await.unwrap();
    }
    let res = post_json(&url, Some(FRAMER_ORIGIN), json!({"message": "hi"})).await;
    assert_eq!(res.status(), 429);
    assert_cors(&res, "429");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let res = post_json(
        &url,
        Some("http://localhost:5173"),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200, "another origin has its own budget");
    let res = preflight(&gw, FRAMER_ORIGIN, false).await;
    assert!(res.status().is_success(), "preflights are not rate limited");
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert!(
        gw.log.recent().iter().any(|r| r.status == 429
            && r.error
                .as_deref()
                .unwrap_or("")
                .contains("too many requests")),
        "{record:?}"
    );
}

#[tokio::test]
async fn the_access_token_is_required_when_switched_on() {
    let gw = spawn_gateway_env(
        settings(json!({"require_access_token": true})),
        &[("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", "pg-token-123")],
    )
    .await;
    let url = gw.url("/api/ai-gateway/stream");
    let client = reqwest::Client::new();
    let res = post_json(&url, Some(FRAMER_ORIGIN), json!({"message": "hi"})).await;
    assert_eq!(res.status(), 401);
    assert_cors(&res, "token missing");
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("access token missing"));
    let res = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for (name, value) in [
        ("authorization", "Bearer pg-token-123"),
        ("x-api-key", "pg-token-123"),
    ] {
        let res = client
            .post(&url)
            .header(name, value)
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
    }
    let res = preflight(&gw, FRAMER_ORIGIN, false).await;
    assert!(
        res.status().is_success(),
        "a preflight carries no token and still passes"
    );
}

#[tokio::test]
async fn a_request_without_origin_skips_cors_but_caches_still_tell_them_apart() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let client = reqwest::Client::new();
    // A script or SDK: no Origin, so no CORS headers (nothing to allow), but `Vary`, so a
    // browser cache never hands this answer to a cross-origin page's request.
    let res = client.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert!(
        !h.keys().any(|k| k.as_str().starts_with("access-control-")),
        "{h:?}"
    );
    assert!(h["vary"].to_str().unwrap().contains("origin"), "{h:?}");
    // The same request from Framer's editor gets them.
    let res = client
        .get(gw.url("/v1/models"))
        .header("origin", FRAMER_ORIGIN)
        .send()
        .await
        .unwrap();
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], FRAMER_ORIGIN);
    let exposed = h["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("x-protogate-request-id"), "{exposed}");
    assert!(h["vary"].to_str().unwrap().contains("origin"), "{h:?}");
}
