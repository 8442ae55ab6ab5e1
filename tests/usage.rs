//! Usage read from the request log after real requests: per provider, model and site,
//! tokens as the upstream reported them, cost from the price table; and a daily budget
//! that refuses a provider once spent, and still knows the day's spend after a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use futures_util::{SinkExt, StreamExt};
use protogate::usage::{PriceSource, Range, Summary};
use protogate::{AppState, RequestLog, SecretStore};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The mock reports 9 input and 2 output tokens per answer; at these prices an answer
/// costs 9 × $1000 + 2 × $1500 per million = $0.012.
const PRICES: &str = r#"{"openai/gpt-test": {"input": 1000, "output": 1500}}"#;
const ANSWER_USD: f64 = 0.012;

fn usage_settings(mock: &MockOpenAi, usage: Value) -> Value {
    settings(json!({
        "default_provider": "demo",
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": "openai", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
        "usage": usage,
    }))
}

/// A gateway on the log folder `dir`, as a restart finds it; stopped when dropped.
struct Gateway {
    addr: std::net::SocketAddr,
    log: RequestLog,
    config: protogate::Config,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Gateway {
    async fn start(settings: &Value, dir: &Path) -> Gateway {
        let config = protogate::config::parse(&settings.to_string(), "test settings").unwrap();
        let log = RequestLog::new(Some(dir), 7, 100, 200).unwrap();
        let listener = protogate::bind(&config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let key = protogate::secrets::env_var_name("openai");
        let secrets = SecretStore::with_environment([(key, test_key("openai"))].into());
        let state = AppState::new(config.clone(), log.clone(), secrets);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(protogate::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Gateway {
            addr,
            log,
            config,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Today's summary once it counts `requests` (a record is pushed when its response
    /// body ends, a moment after the client has read it).
    async fn summary(&self, requests: u64) -> Summary {
        let mut summary = None;
        for _ in 0..300 {
            let s = protogate::usage::summarize_log(&self.log, &self.config, Range::Today);
            if s.totals.requests >= requests {
                return s;
            }
            summary = Some(s);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {requests} requests counted: {summary:?}")
    }
}

async fn completion(gw: &Gateway, origin: Option<&str>, model: &str) -> reqwest::Response {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    post_json(&gw.url("/v1/chat/completions"), origin, body).await
}

fn row<'a>(rows: &'a [protogate::usage::Row], name: &str) -> &'a protogate::usage::Row {
    rows.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
}

#[tokio::test]
async fn real_requests_are_counted_per_provider_model_and_site_with_their_cost() {
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = usage_settings(
        &mock,
        json!({"prices": serde_json::from_str::<Value>(PRICES).unwrap()}),
    );
    let gw = Gateway::start(&settings, dir.path()).await;

    // OpenAI's format, whole and streamed, from the canvas and from a script.
    for origin in [Some(FRAMER_ORIGIN), Some(FRAMER_ORIGIN), None] {
        let res = completion(&gw, origin, "openai/gpt-test").await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap();
    }
    // Streamed as the Vercel AI SDK asks (with usage), and on the seed's route, whose
    // client never asks: the gateway asks OpenAI for the usage itself.
    let streamed = post_json(
        &gw.url("/v1/chat/completions"),
        Some(FRAMER_ORIGIN),
        json!({"model": "openai/gpt-test", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(streamed.text().await.unwrap().contains("[DONE]"));
    for provider in ["openai", "demo"] {
        let seed = post_json(
            &gw.url("/api/ai-gateway/stream"),
            Some(FRAMER_ORIGIN),
            json!({"message": "hello", "provider": provider}),
        )
        .await;
        let text = seed.text().await.unwrap();
        assert!(
            text.ends_with("data: [DONE]\n\n") && !text.contains("usage"),
            "{text}"
        );
    }
    // Anthropic's format through the demo; a web search.
    let messages = post_json(
        &gw.url("/v1/messages"),
        Some(FRAMER_ORIGIN),
        json!({"model": "demo/protogate-demo", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(messages.status(), 200);
    messages.text().await.unwrap();
    let search = post_json(
        &gw.url("/api/search"),
        Some(FRAMER_ORIGIN),
        json!({"query": "cold brew"}),
    )
    .await;
    assert_eq!(search.status(), 200);
    search.text().await.unwrap();
    // A chat on a WebSocket.
    let mut request = format!("ws://{}/ws/chat", gw.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", FRAMER_ORIGIN.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let frame = json!({"type": "chat", "id": "a", "message": "hi over a socket"});
    socket.send(Message::text(frame.to_string())).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            if text.contains("\"done\"") || text.contains("\"error\"") {
                break;
            }
        }
    }
    // An upstream failure, a refused site (its preflight too) and a health check.
    let failed = completion(&gw, Some(FRAMER_ORIGIN), "openai/error500").await;
    assert_eq!(failed.status(), 502);
    let stranger = "https://someone-else.framer.app";
    assert_eq!(
        completion(&gw, Some(stranger), "openai/gpt-test")
            .await
            .status(),
        403
    );
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", stranger)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_client_error() || preflight.status().is_success());
    reqwest::get(gw.url("/health")).await.unwrap();

    let s = gw.summary(11).await;
    let openai = row(&s.providers, "openai");
    assert_eq!(openai.requests, 6, "five answers and a failure: {openai:?}");
    assert_eq!(openai.errors, 1);
    assert_eq!((openai.input_tokens, openai.output_tokens), (5 * 9, 5 * 2));
    assert!(
        (openai.cost_usd - 5.0 * ANSWER_USD).abs() < 1e-9,
        "cost from the settings' price: {}",
        openai.cost_usd
    );
    assert!(openai.latency_p50_ms.is_some() && openai.ttft_p50_ms.is_some());
    let model = s
        .models
        .iter()
        .find(|m| m.provider == "openai" && m.row.name == "gpt-test")
        .unwrap();
    assert_eq!(model.price.unwrap().source, PriceSource::Settings);
    let unpriced = s.models.iter().find(|m| m.row.name == "error500").unwrap();
    assert!(unpriced.price.is_none(), "a model with no price says so");

    let demo = row(&s.providers, "demo");
    assert_eq!(
        demo.requests, 4,
        "seed route, Anthropic format, search, WebSocket"
    );
    assert_eq!(
        (demo.cost_usd, demo.unpriced_requests),
        (0.0, 0),
        "the demo is free"
    );
    let refused = row(&s.providers, protogate::usage::summary::NOT_ROUTED);
    assert_eq!(
        (refused.requests, refused.errors),
        (1, 1),
        "the refusal, not its preflight"
    );

    let canvas = row(&s.sites, FRAMER_ORIGIN);
    assert_eq!(canvas.requests, 9);
    assert!((canvas.cost_usd - 4.0 * ANSWER_USD).abs() < 1e-9);
    let script = row(&s.sites, protogate::usage::summary::NO_ORIGIN);
    assert_eq!(script.requests, 1);
    assert!((script.cost_usd - ANSWER_USD).abs() < 1e-9);
    assert_eq!(row(&s.sites, stranger).errors, 1);
    assert_eq!(s.totals.requests, 11);
    assert_eq!(s.buckets.iter().map(|b| b.requests).sum::<u64>(), 11);
}

#[tokio::test]
async fn a_spent_budget_refuses_its_provider_until_midnight_even_after_a_restart() {
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let usage = json!({
        "prices": serde_json::from_str::<Value>(PRICES).unwrap(),
        "budgets": {"openai": {"daily_usd": 0.02, "stop_at_budget": true}},
    });
    let settings = usage_settings(&mock, usage);
    let gw = Gateway::start(&settings, dir.path()).await;

    // $0.012, then $0.024: the second answer goes past the budget; the third is refused.
    for _ in 0..2 {
        let res = completion(&gw, Some(FRAMER_ORIGIN), "openai/gpt-test").await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap();
    }
    gw.summary(2).await;
    let refused = completion(&gw, Some(FRAMER_ORIGIN), "openai/gpt-test").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry_after),
        "until midnight UTC: {retry_after}"
    );
    let body: Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("openai's limit of $0.02 a day: $0.02 spent today")
            && message.contains("midnight UTC")
            && message.contains("stop at budget"),
        "the reason names the provider, the budget and the reset: {message}"
    );
    assert_eq!(
        mock.bodies().len(),
        2,
        "the refused request never reached OpenAI"
    );
    // Other providers go on.
    assert_eq!(
        completion(&gw, Some(FRAMER_ORIGIN), "demo/protogate-demo")
            .await
            .status(),
        200
    );
    let s = gw.summary(4).await;
    assert_eq!(s.budgets[0].provider, "openai");
    assert!((s.budgets[0].spent_today_usd - 2.0 * ANSWER_USD).abs() < 1e-9);
    assert_eq!(
        row(&s.providers, "openai").errors,
        1,
        "the refusal is an error in Usage"
    );
    gw.log.flush();
    drop(gw);

    // A restart: a new gateway on the same log folder still knows today's spend.
    let again = Gateway::start(&settings, dir.path()).await;
    let refused = completion(&again, Some(FRAMER_ORIGIN), "openai/gpt-test").await;
    assert_eq!(refused.status(), 429, "{}", refused.text().await.unwrap());
    assert_eq!(mock.bodies().len(), 2);

    // Warning only: the same spend refuses nothing.
    let warn_only = usage_settings(
        &mock,
        json!({"prices": serde_json::from_str::<Value>(PRICES).unwrap(),
               "budgets": {"openai": {"daily_usd": 0.02}}}),
    );
    drop(again);
    let relaxed = Gateway::start(&warn_only, dir.path()).await;
    assert_eq!(
        completion(&relaxed, Some(FRAMER_ORIGIN), "openai/gpt-test")
            .await
            .status(),
        200
    );
}

/// `protogate usage`: the same numbers for a headless gateway, read from its log folder.
#[test]
fn protogate_usage_prints_the_tables_from_the_log_folder() {
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let settings = json!({
        "providers": [
            {"id": "demo", "kind": "demo"},
            {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"},
        ],
        "log": {"dir": logs},
        "usage": {"budgets": {"openai": {"daily_usd": 2, "stop_at_budget": true}}},
    });
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let time = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let line = |provider: &str, model: &str, tokens: (u64, u64)| {
        json!({"id": uuid::Uuid::new_v4().simple().to_string(), "time": time, "method": "POST",
               "path": "/v1/chat/completions", "origin": FRAMER_ORIGIN, "provider": provider,
               "model": model, "status": 200, "latency_ms": 800.0, "ttft_ms": 300.0,
               "usage": {"input_tokens": tokens.0, "output_tokens": tokens.1}, "error": null})
        .to_string()
    };
    let today = [
        line("openai", "gpt-4o-mini", (2_000_000, 1_000_000)),
        line("ollama", "llama3.2", (10, 10)),
    ];
    std::fs::write(
        logs.join(format!("requests.{}.jsonl", now.date())),
        today.join("\n"),
    )
    .unwrap();

    let out = protogate_in(home.path(), &["usage"]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_string()
    };
    assert!(row("openai").ends_with("$0.90"), "{out}");
    assert!(row("gpt-4o-mini").contains(" 2000000 ") && row("gpt-4o-mini").ends_with("$0.90"));
    assert!(row("llama3.2").ends_with("no price"), "{out}");
    assert!(
        row(FRAMER_ORIGIN).ends_with("$0.90+?"),
        "part of its cost is unknown: {out}"
    );
    assert!(
        out.contains("openai: $0.90 of $2.00 (45 %), refused at the budget"),
        "{out}"
    );
    assert!(
        out.contains("as of November 2025"),
        "prices are dated: {out}"
    );

    let wrong = std::process::Command::new(binary())
        .arg("--config")
        .arg(home.path().join("settings.json"))
        .args(["usage", "yesterday"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("use today, 7d or 30d"), "{said}");
}
