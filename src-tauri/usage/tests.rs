//! Summaries of written log files, and budgets counted live and read back.

use serde_json::{json, Value};

use super::records::{self, unix_seconds};
use super::*;
use crate::request_log::{Record, RecordObserver};

fn config(usage: Value) -> Config {
    let settings = json!({
        "providers": [
            {"id": "demo", "kind": "demo"},
            {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"},
            {"id": "ollama", "kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "default_model": "llama3.2"},
        ],
        "usage": usage,
    });
    crate::config::parse(&settings.to_string(), "test").unwrap()
}

/// A record's line as the log writes it, `fields` over a successful OpenAI answer.
fn line(fields: Value) -> String {
    let mut record = json!({
        "id": uuid::Uuid::new_v4().simple().to_string(), "time": "2026-12-07T10:00:00.5Z",
        "method": "POST", "path": "/v1/chat/completions", "origin": "https://a.framer.app",
        "provider": "openai", "model": "gpt-4o-mini", "status": 200, "latency_ms": 100.0,
        "ttft_ms": 20.0, "bytes_out": 10, "usage": {"input_tokens": 1_000_000, "output_tokens": 500_000},
        "error": null, "prompt": "a \"quoted\" prompt\nwith lines", "answer": "ok",
    });
    for (k, v) in fields.as_object().unwrap() {
        record[k] = v.clone();
    }
    record.to_string()
}

fn write_day(dir: &std::path::Path, day: &str, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join(format!("requests.{day}.jsonl")), text).unwrap();
}

const NOW: &str = "2026-12-07T12:00:00Z";

fn summary_of(dir: &std::path::Path, range: Range, usage: Value) -> Summary {
    summarize(Some(dir), &config(usage), range, unix_seconds(NOW).unwrap())
}

#[test]
fn requests_tokens_and_cost_per_provider_model_and_site() {
    let dir = tempfile::tempdir().unwrap();
    write_day(
        dir.path(),
        "2026-12-07",
        &[
            line(json!({})),
            line(json!({"latency_ms": 300.0, "ttft_ms": 40.0})),
            line(json!({"time": "2026-12-07T11:30:00Z", "origin": null})),
            // Failed upstream: an error, no tokens.
            line(
                json!({"status": 502, "usage": null, "error": "provider 'openai' answered 500", "ttft_ms": null}),
            ),
            // Answered by the cache: a request, no tokens, no cost.
            line(json!({"cache": "hit", "latency_ms": 0.2})),
            // The browser's preflight and a health check are not requests to a model.
            line(
                json!({"method": "OPTIONS", "provider": null, "model": null, "usage": null, "status": 204}),
            ),
            line(
                json!({"method": "GET", "path": "/health", "provider": null, "model": null, "usage": null}),
            ),
            // Refused before routing: counted for its site, under "(not routed)".
            line(
                json!({"origin": "https://evil.example", "provider": null, "model": null, "usage": null,
                        "status": 403, "error": "origin `https://evil.example` is not allowed"}),
            ),
            line(
                json!({"provider": "demo", "model": "protogate-demo", "path": "/api/ai-gateway/stream"}),
            ),
            line(
                json!({"provider": "ollama", "model": "llama3.2", "usage": {"input_tokens": 10, "output_tokens": 10}}),
            ),
            "{\"id\": \"cut off by a cra".to_string(),
            // Yesterday, and eight days ago.
            line(json!({"time": "2026-12-06T23:00:00Z"})),
        ],
    );
    write_day(
        dir.path(),
        "2026-11-29",
        &[line(json!({"time": "2026-11-29T08:00:00Z"}))],
    );

    let s = summary_of(dir.path(), Range::Today, json!({}));
    assert_eq!(s.skipped_lines, 1, "the cut line is skipped, the rest read");
    assert_eq!(s.totals.requests, 8, "{:?}", s.totals);
    let openai = s.providers.iter().find(|r| r.name == "openai").unwrap();
    assert_eq!((openai.requests, openai.errors, openai.cached), (5, 1, 1));
    assert_eq!(openai.input_tokens, 3_000_000);
    assert_eq!(openai.output_tokens, 1_500_000);
    // gpt-4o-mini: $0.15 in, $0.60 out per million: 3 × (0.15 + 0.30).
    assert!((openai.cost_usd - 1.35).abs() < 1e-9, "{}", openai.cost_usd);
    assert_eq!(
        openai.latency_p50_ms,
        Some(100.0),
        "cache hit and failure left out"
    );
    assert_eq!(openai.latency_p95_ms, Some(300.0));
    assert_eq!(openai.ttft_p50_ms, Some(20.0));
    assert_eq!(s.providers[0].name, "openai", "the costliest first");

    let model = s
        .models
        .iter()
        .find(|m| m.row.name == "gpt-4o-mini")
        .unwrap();
    assert_eq!(model.price.unwrap().source, PriceSource::BuiltIn);
    let ollama = s.models.iter().find(|m| m.provider == "ollama").unwrap();
    assert!(
        ollama.price.is_none(),
        "an unknown model has no price, not $0"
    );
    assert_eq!(ollama.row.unpriced_requests, 1);
    let demo = s.providers.iter().find(|r| r.name == "demo").unwrap();
    assert_eq!(
        (demo.cost_usd, demo.unpriced_requests),
        (0.0, 0),
        "the demo is free"
    );
    let refused = s
        .providers
        .iter()
        .find(|r| r.name == summary::NOT_ROUTED)
        .unwrap();
    assert_eq!((refused.requests, refused.errors), (1, 1));

    let site = |name: &str| s.sites.iter().find(|r| r.name == name).unwrap().clone();
    assert_eq!(site("https://a.framer.app").requests, 6);
    assert_eq!(site(summary::NO_ORIGIN).requests, 1);
    assert!((site(summary::NO_ORIGIN).cost_usd - 0.45).abs() < 1e-9);
    assert_eq!(site("https://evil.example").errors, 1);

    assert_eq!(s.buckets.len(), 24, "hours of the day");
    assert_eq!(s.buckets[10].requests, 7);
    assert_eq!(s.buckets[11].requests, 1);
    assert_eq!(s.buckets[11].start, "2026-12-07T11:00:00Z");

    let week = summary_of(dir.path(), Range::Week, json!({}));
    assert_eq!(
        week.totals.requests, 9,
        "yesterday counts, eight days ago does not"
    );
    assert_eq!(week.buckets.len(), 28);
    let month = summary_of(dir.path(), Range::Month, json!({}));
    assert_eq!(month.totals.requests, 10);
    assert_eq!(month.buckets.len(), 30);
    assert_eq!(month.from, "2026-11-08T00:00:00Z");
}

#[test]
fn prices_from_the_settings_and_budgets_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    write_day(
        dir.path(),
        "2026-12-07",
        &[
            line(json!({})),
            line(json!({"provider": "ollama", "model": "llama3.2"})),
        ],
    );
    let usage = json!({
        "prices": {"openai/gpt-4o-mini": {"input": 1.0, "output": 2.0}, "llama3.2": {"input": 0, "output": 0}},
        "budgets": {"openai": {"daily_usd": 4, "stop_at_budget": true}},
    });
    let s = summary_of(dir.path(), Range::Today, usage);
    let openai = s.providers.iter().find(|r| r.name == "openai").unwrap();
    assert!((openai.cost_usd - 2.0).abs() < 1e-9);
    let ollama = s.models.iter().find(|m| m.provider == "ollama").unwrap();
    assert_eq!(ollama.price.unwrap().source, PriceSource::Settings);
    assert_eq!(ollama.row.unpriced_requests, 0);
    assert_eq!(s.budgets.len(), 1);
    assert_eq!(s.budgets[0].provider, "openai");
    assert!((s.budgets[0].spent_today_usd - 2.0).abs() < 1e-9);
    assert_eq!(s.budgets[0].resets_at, "2026-12-08T00:00:00Z");
}

#[test]
fn no_log_folder_is_an_empty_summary() {
    let s = summarize(
        None,
        &config(json!({})),
        Range::Week,
        unix_seconds(NOW).unwrap(),
    );
    assert_eq!(s.totals.requests, 0);
    assert!(s.providers.is_empty() && s.sites.is_empty());
    assert_eq!(s.totals.latency_p50_ms, None);
}

fn finished(provider: &str, input: u64, output: u64) -> Record {
    Record {
        id: uuid::Uuid::new_v4().simple().to_string(),
        time: records::rfc3339(records::now_seconds()),
        method: "POST".into(),
        provider: Some(provider.into()),
        model: Some("gpt-4o-mini".into()),
        status: 200,
        usage: Some(crate::chat::Usage {
            input_tokens: input,
            output_tokens: output,
        }),
        ..Record::default()
    }
}

#[test]
fn a_budget_warns_at_80_percent_and_refuses_at_100() {
    // gpt-4o-mini input: $0.15 per million; the budget is $0.15.
    let config = config(json!({"budgets": {
        "openai": {"daily_usd": 0.15, "stop_at_budget": true},
        "ollama": {"daily_usd": 0.01},
    }}));
    let log = RequestLog::new(None, 1, 10, 100).unwrap();
    let meter = BudgetMeter::new(&config).unwrap();
    meter.read_today(&log);
    meter.finished(&finished("openai", 700_000, 0));
    assert!(meter.take_alerts().is_empty(), "70 %: nothing yet");
    assert!(meter.admit("openai").is_ok());
    meter.finished(&finished("openai", 150_000, 0));
    let alerts = meter.take_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].percent, 80);
    assert_eq!(alerts[0].title(), "openai used 80 % of today's budget");
    let mut cached = finished("openai", 1_000_000, 0);
    cached.cache = Some("hit");
    meter.finished(&cached);
    assert!(meter.admit("openai").is_ok(), "a cache hit costs nothing");
    meter.finished(&finished("openai", 150_000, 0));
    assert_eq!(meter.take_alerts()[0].percent, 100);
    let refusal = meter.admit("openai").unwrap_err();
    assert_eq!(refusal.status(), 429);
    let message = refusal.to_string();
    assert!(
        message.starts_with("openai's limit of $0.15 a day: $0.15 spent today")
            && message.contains("midnight UTC"),
        "{message}"
    );
    assert!(meter.admit("demo").is_ok(), "no budget, no limit");
    // Without stop_at_budget: warned, never refused.
    let mut local = finished("ollama", 1, 1);
    local.model = Some("unpriced-model".into());
    meter.finished(&local);
    assert!(meter.admit("ollama").is_ok());
}

#[test]
fn todays_file_is_read_back_without_counting_a_record_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        config(json!({"budgets": {"openai": {"daily_usd": 0.35, "stop_at_budget": true}}}));
    let log = RequestLog::new(Some(dir.path()), 3, 10, 100).unwrap();
    let first = BudgetMeter::new(&config).unwrap();
    log.set_observers(vec![std::sync::Arc::new(first.clone())]);
    first.read_today(&log);
    log.push(finished("openai", 2_000_000, 0)); // $0.30
    assert!((first.spent_today("openai") - 0.30).abs() < 1e-9);
    assert_eq!(first.take_alerts()[0].percent, 80);

    // A new meter (a restart, a settings change) watches, sees one more record finish,
    // then reads the file, which by then holds both.
    let second = BudgetMeter::new(&config).unwrap();
    log.set_observers(vec![std::sync::Arc::new(second.clone())]);
    log.push(finished("openai", 2_000_000, 0));
    second.read_today(&log);
    let spent = second.spent_today("openai");
    assert!((spent - 0.60).abs() < 1e-9, "each record once: {spent}");
    assert!(
        second.admit("openai").is_err(),
        "over the budget after a restart"
    );
    assert!(
        second.take_alerts().is_empty(),
        "crossings before its file was read are not announced again"
    );
}
