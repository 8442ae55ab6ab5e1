//! The Usage view's cost to open: 30 days of request log files (records written as the
//! log writes them) summarised over 30 days, today and 7 days, a few times each; the
//! median wall time and the CPU time per summary (both cores' worth) are printed.
//!
//! Usage: bench_usage [records, default 100000] [prompt+answer characters, default 1000]
//!
//! `cargo run --release --example bench_usage` (with `-- 100000 4000` for records whose
//! prompt and answer fill the log's default 2000 characters each).

use std::time::Instant;

use protogate::request_log::Record;
use protogate::usage::{summarize, Range};

/// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: protogate::allocator::Allocator = protogate::allocator::Allocator;

const DAYS: i64 = 30;
const RUNS: usize = 5;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let records = args.next().flatten().unwrap_or(100_000);
    let text = args.next().flatten().unwrap_or(1000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bytes = write_month(dir.path(), records, text, now);
    println!(
        "{records} records over {DAYS} days, {:.0} MB of log files ({} characters of prompt and answer each)",
        bytes as f64 / 1e6,
        text
    );
    let config = protogate::config::parse(
        r#"{"providers": [{"id": "demo", "kind": "demo"},
            {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1", "default_model": "gpt-4o-mini"},
            {"id": "anthropic", "kind": "anthropic", "base_url": "https://api.anthropic.com", "default_model": "claude-sonnet-4-5"}]}"#,
        "bench",
    )
    .expect("valid settings");
    for range in [Range::Month, Range::Week, Range::Today] {
        let cpu_before = cpu_ms();
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let summary = summarize(Some(dir.path()), &config, range, now);
                let took = start.elapsed().as_secs_f64() * 1000.0;
                std::hint::black_box(summary);
                took
            })
            .collect();
        let cpu = cpu_ms()
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / RUNS as f64);
        times.sort_by(f64::total_cmp);
        let summary = summarize(Some(dir.path()), &config, range, now);
        println!(
            "{range:?}: {:>7.1} ms median of {RUNS}, {} ms CPU each ({} requests counted, {} lines read)",
            times[RUNS / 2],
            cpu.map_or("?".into(), |ms| format!("{ms:.0}")),
            summary.totals.requests,
            summary.lines
        );
    }
}

/// Writes `records` records spread over the last 30 days into daily files as the log
/// names them; their size in bytes.
fn write_month(dir: &std::path::Path, records: usize, text: usize, now: i64) -> u64 {
    let providers = [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("demo", "protogate-demo"),
    ];
    let origins = [
        Some("https://project-abc123.framercanvas.com"),
        Some("https://acme-coffee.framer.app"),
        Some("http://localhost:5173"),
        None,
    ];
    let prompt: String = "Write a friendly onboarding message. "
        .chars()
        .cycle()
        .take(text / 4)
        .collect();
    let answer: String = "Welcome aboard — here is what to do first. "
        .chars()
        .cycle()
        .take(text - text / 4)
        .collect();
    let per_day = records as i64 / DAYS;
    let first_day = now / 86_400 - DAYS + 1;
    let mut total = 0;
    for day in 0..DAYS {
        let mut lines = Vec::new();
        let count = if day == DAYS - 1 {
            records as i64 - per_day * (DAYS - 1)
        } else {
            per_day
        };
        // Today only up to now.
        let day_start = (first_day + day) * 86_400;
        let span = if day == DAYS - 1 {
            (now - day_start).max(1)
        } else {
            86_400
        };
        for i in 0..count {
            let (provider, model) = providers[(i % 4) as usize];
            let seconds = day_start + i * span / count.max(1);
            let mut record = Record::default();
            record.id = format!("{:012x}", i + day * 1_000_000);
            record.time = rfc3339(seconds);
            record.method = "POST".into();
            record.path = "/v1/chat/completions".into();
            record.origin = origins[(i % 4) as usize].map(String::from);
            record.provider = Some(provider.into());
            record.model = Some(model.into());
            record.status = if i % 50 == 0 { 502 } else { 200 };
            record.latency_ms = 400.0 + (i % 700) as f64;
            record.ttft_ms = Some(120.0 + (i % 300) as f64);
            record.bytes_out = 2000;
            record.usage = Some(protogate::chat::Usage {
                input_tokens: 300 + (i % 100) as u64,
                output_tokens: 150 + (i % 200) as u64,
            });
            record.prompt = Some(prompt.clone());
            record.answer = Some(answer.clone());
            record.finish_reason = Some("stop");
            lines.push(serde_json::to_string(&record).expect("a record is JSON"));
        }
        let text = lines.join("\n") + "\n";
        total += text.len() as u64;
        let name = format!(
            "requests.{}.jsonl",
            &rfc3339((first_day + day) * 86_400)[..10]
        );
        std::fs::write(dir.join(name), text).expect("a log file");
    }
    total
}

fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

/// CPU time this process has used, all its threads (those ended too), in ms: a number the
/// other work on a busy machine moves less than the wall clock. Linux only.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks * 10.0)
}
