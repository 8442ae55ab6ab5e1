//! Per-provider limits with a queue (`providers[].limits`): over a provider's budget a
//! request waits its turn, first come first served, and goes at the budget's pace; past
//! the queue timeout, or with the queue full, it gets a 429 with `Retry-After` naming
//! the provider and its limit. A client that gives up leaves the queue and never
//! reaches the upstream; the per-origin limit still answers first.
//!
//! Rates are short (120 a minute with a burst of one: one every 0.5 s) and the timing
//! bounds loose: the order and the counts are what is checked, the pace only roughly.

mod common;

use std::time::{Duration, Instant};

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};

/// A gateway whose default provider `limited` (the mock, with its key) has `limits`;
/// `extra` is merged into the settings.
async fn limited(mock: &MockOpenAi, limits: Value, extra: Value) -> TestGateway {
    let mut s = settings(json!({
        "default_provider": "limited",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "limited", "kind": "openai", "base_url": mock.base_url,
             "default_model": "gpt-test", "limits": limits},
        ],
    }));
    merge(&mut s, extra);
    let var = protogate::secrets::env_var_name("limited");
    spawn_gateway_env(s, &[(var.as_str(), &test_key("limited"))]).await
}

fn completion(message: &str) -> Value {
    json!({"model": "limited/gpt-test", "messages": [{"role": "user", "content": message}]})
}

/// The user messages the mock received, in the order it received them.
fn arrivals(mock: &MockOpenAi) -> Vec<String> {
    mock.bodies()
        .iter()
        .map(|b| {
            b["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: String,
    /// When the answer came, from the test's start.
    at: Duration,
}

async fn send(client: &reqwest::Client, url: &str, body: Value, started: Instant) -> Answer {
    let res = client.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = res.text().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
        at: started.elapsed(),
    }
}

#[tokio::test]
async fn requests_over_the_budget_go_in_arrival_order_at_its_pace_and_the_rest_time_out() {
    let mock = MockOpenAi::start().await;
    let limits = json!({"requests_per_minute": 120, "burst": 1, "queue_timeout_ms": 1250});
    let gw = limited(&mock, limits, json!({})).await;
    let url = gw.url("/v1/chat/completions");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = vec![];
    for i in 0..6 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            send(&client, &url, completion(&format!("req-{i}")), started).await
        }));
        // Arrivals 20 ms apart, so their order is known.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answers = vec![];
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let statuses: Vec<_> = answers.iter().map(|a| a.status).collect();
    // One at once, then one every 0.5 s: at 0, 0.5 and 1.0 s; the fourth's turn (1.5 s)
    // comes after its timeout (1.25 s after it arrived), and so for those behind it.
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429],
        "{:?}",
        bodies(&answers)
    );
    assert_eq!(
        arrivals(&mock),
        ["req-0", "req-1", "req-2"],
        "first come, first served"
    );
    for pair in answers[..3].windows(2) {
        let gap = pair[1].at.saturating_sub(pair[0].at);
        assert!(
            gap >= Duration::from_millis(350) && gap <= Duration::from_millis(1200),
            "admissions one interval (0.5 s) apart, roughly: {gap:?}"
        );
    }
    for refused in &answers[3..] {
        assert!(
            refused.at >= Duration::from_millis(1200),
            "after the timeout: {:?}",
            refused.at
        );
        assert!(
            refused.retry_after.is_some_and(|s| s >= 1),
            "Retry-After is set"
        );
        let error: Value = serde_json::from_str(&refused.body).unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("limited's limit of 120 requests per minute: waited 1."),
            "names the provider, its limit and the wait: {message}"
        );
        assert_eq!(error["error"]["type"], "rate_limit_error");
    }

    // The waits are in the request log, and in its JSON lines.
    let records = gw.log.recent();
    let waited: Vec<_> = records.iter().filter_map(|r| r.note.clone()).collect();
    assert!(
        waited
            .iter()
            .any(|n| n.starts_with("waited 0.") || n.starts_with("waited 1.")),
        "{waited:?}"
    );
    assert!(
        waited.iter().all(|n| n.ends_with(" for limited's limit")),
        "{waited:?}"
    );
    let files = gw.log_files_text().await;
    assert!(files.contains("\"queued_ms\":"), "{files}");
    assert!(files.contains("for limited's limit\""), "{files}");
}

fn bodies(answers: &[Answer]) -> Vec<&str> {
    answers.iter().map(|a| a.body.as_str()).collect()
}

#[tokio::test]
async fn a_client_that_gives_up_leaves_the_queue_and_never_reaches_the_upstream() {
    let mock = MockOpenAi::start().await;
    let limits = json!({"requests_per_minute": 120, "burst": 1, "queue_timeout_ms": 5000});
    let gw = limited(&mock, limits, json!({})).await;
    let url = gw.url("/v1/chat/completions");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let first = send(&client, &url, completion("first"), started).await;
    assert_eq!(first.status, 200);

    // Waits for the next slot, and gives up (its future dropped, its connection closed).
    let impatient = reqwest::Client::new()
        .post(&url)
        .json(&completion("gives-up"))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(impatient.is_err(), "the client timed out while queued");

    // The next request moves up: it takes the slot the abandoned one never used.
    let next = send(&client, &url, completion("next"), started).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(
        next.at.saturating_sub(first.at) < Duration::from_millis(1000),
        "one interval after the first, not two: {:?}",
        next.at.saturating_sub(first.at)
    );
    assert_eq!(arrivals(&mock), ["first", "next"]);
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let mock = MockOpenAi::start().await;
    let limits =
        json!({"requests_per_minute": 60, "burst": 1, "queue_timeout_ms": 5000, "max_queue": 1});
    let gw = limited(&mock, limits, json!({})).await;
    let url = gw.url("/api/ai-gateway/stream");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let seed = |m: &str| json!({"message": m, "model": "limited/gpt-test"});
    let first = send(&client, &url, seed("first"), started).await;
    assert_eq!(first.status, 200);
    let queued = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { send(&client, &url, seed("queued"), started).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    let full = send(&client, &url, seed("full"), started).await;
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "at once: {:?}",
        sent.elapsed()
    );
    assert_eq!(full.status, 429);
    assert!(full.retry_after.is_some_and(|s| s >= 1));
    let error: Value = serde_json::from_str(&full.body).unwrap();
    assert_eq!(
        error["error"].as_str().unwrap(),
        format!(
            "limited's limit of 60 requests per minute: its queue is full (1 waiting); try again in {} s",
            full.retry_after.unwrap()
        )
    );
    assert_eq!(error["details"]["provider"], "limited");
    // The one that waited streams its answer on the seed route once its turn comes.
    let queued = queued.await.unwrap();
    assert_eq!(queued.status, 200);
    assert_eq!(seed_text(&queued.body), "Hello world");
    assert_eq!(arrivals(&mock), ["first", "queued"]);
    let record = gw
        .log
        .recent()
        .into_iter()
        .find(|r| r.prompt.as_deref() == Some("queued"))
        .unwrap();
    assert!(record.queued_ms.is_some_and(|ms| ms > 500.0), "{record:?}");
}

#[tokio::test]
async fn the_per_origin_limit_still_answers_first() {
    let mock = MockOpenAi::start().await;
    let limits = json!({"requests_per_minute": 120, "burst": 1, "queue_timeout_ms": 5000});
    let per_origin = json!({"limits": {"requests_per_minute": 60, "burst": 1}});
    let gw = limited(&mock, limits, per_origin).await;
    let url = gw.url("/v1/chat/completions");
    let first = post_json(&url, Some(FRAMER_ORIGIN), completion("first")).await;
    assert_eq!(first.status(), 200);
    let started = Instant::now();
    let second = post_json(&url, Some(FRAMER_ORIGIN), completion("second")).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "refused, not queued"
    );
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("from this origin"), "{message}");
    assert_eq!(arrivals(&mock), ["first"]);
}

#[test]
fn a_mistake_in_a_providers_limits_names_the_field() {
    let settings = |limits: Value| {
        json!({"providers": [
            {"id": "demo", "kind": "demo"},
            {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1",
             "default_model": "gpt-4o-mini", "limits": limits},
        ]})
        .to_string()
    };
    let error = |limits: Value| {
        protogate::config::parse(&settings(limits), "settings.json")
            .unwrap_err()
            .to_string()
    };
    let e = error(json!({"requests_per_minute": 0}));
    assert!(
        e.starts_with("settings.json: providers[1].limits.requests_per_minute: must be above 0"),
        "{e}"
    );
    let e = error(json!({"requests_per_minute": 100, "requests_per_hour": 500}));
    assert!(e.contains("providers[1].limits: has both"), "{e}");
    let e = error(json!({"burst": 10}));
    assert!(
        e.contains("providers[1].limits: needs requests_per_minute"),
        "{e}"
    );
    let e = error(json!({"requests_per_minute": 100, "queue_timeout_ms": 0}));
    assert!(e.contains("providers[1].limits.queue_timeout_ms"), "{e}");
    let e = error(json!({"requests_per_minute": 100, "rpm": 5}));
    assert!(
        e.contains("providers[1].limits") && e.contains("rpm"),
        "{e}"
    );
    let e = error(json!({"requests_per_minute": -1}));
    assert!(e.contains("providers[1].limits.requests_per_minute"), "{e}");
    protogate::config::parse(&settings(json!({"requests_per_hour": 500})), "t")
        .expect("a per-hour limit with the defaults is fine");
}
