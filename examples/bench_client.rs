//! Measurements `wrk` cannot take, for `scripts/bench.sh`:
//!
//! - `ttft <base-url> <n>`: n sequential streamed requests; time to the first content
//!   chunk and to the end of the stream, median and p99 of each, in microseconds.
//! - `streams <base-url> <concurrency> <pid>`: that many slow streams open at once; the
//!   resident memory of process `pid` while they are open, in kB.
//! - `sequential <base-url> <n>`: n non-streamed requests one after another with
//!   reqwest; median and p99 in microseconds.
//! - `startup <binary> <settings> <n>`: time from spawning `protogate serve` to its
//!   "listening" line, median in milliseconds.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn print_median_p99(mut times: Vec<f64>) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{:.1} {:.1}",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

/// `BENCH_HEADERS`: extra request headers, one `Name: value` a line (a peer gateway's
/// routing headers).
fn extra_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for line in std::env::var("BENCH_HEADERS").unwrap_or_default().lines() {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                value.trim().parse().unwrap(),
            );
        }
    }
    headers
}

async fn ttft(base: &str, n: usize) {
    let client = reqwest::Client::builder()
        .default_headers(extra_headers())
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = json!({"model": "bench", "stream": true, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let (mut firsts, mut totals) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        let start = Instant::now();
        let res = client
            .post(format!("{base}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        if !res.status().is_success() {
            let status = res.status();
            eprintln!(
                "{base} answered {status}: {}",
                res.text().await.unwrap_or_default()
            );
            std::process::exit(1);
        }
        let mut stream = res.bytes_stream();
        let mut seen = Vec::new();
        let mut first = None;
        while let Some(chunk) = stream.next().await {
            seen.extend_from_slice(&chunk.unwrap());
            if first.is_none() && seen.windows(9).any(|w| w == b"\"content\"") {
                first = Some(start.elapsed());
            }
        }
        if i >= 20 {
            // The first 20 warm up.
            firsts.push(first.expect("a content chunk").as_secs_f64() * 1e6);
            totals.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    for times in [&mut firsts, &mut totals] {
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    println!(
        "{:.1} {:.1} {:.1} {:.1}",
        percentile(&firsts, 0.5),
        percentile(&firsts, 0.99),
        percentile(&totals, 0.5),
        percentile(&totals, 0.99)
    );
}

fn rss_kb(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn streams(base: &str, concurrency: usize, pid: &str) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body =
        json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, body, url) = (
            client.clone(),
            body.clone(),
            format!("{base}/v1/chat/completions"),
        );
        tasks.push(tokio::spawn(async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            let mut s = res.bytes_stream();
            while s.next().await.is_some() {}
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_kb(pid);
    for t in tasks {
        t.await.unwrap();
    }
    println!("{during}");
}

async fn startup(binary: &str, settings: &str, n: usize) {
    let mut times = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .args(["serve", "--no-https", "--port", "0", "--config", settings])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(line.contains("listening"), "{line}");
        child.kill().await.unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{:.1}", percentile(&times, 0.5));
}

/// Sequential non-streamed requests with reqwest, as the gateway makes them upstream.
async fn sequential(base: &str, n: usize) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = json!({"model": "bench", "messages": [{"role": "user", "content": "hi"}]});
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let res = client
            .post(format!("{base}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        res.bytes().await.unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    print_median_p99(times);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ttft") => ttft(&args[2], args[3].parse().unwrap()).await,
        Some("streams") => streams(&args[2], args[3].parse().unwrap(), &args[4]).await,
        Some("sequential") => sequential(&args[2], args[3].parse().unwrap()).await,
        Some("startup") => startup(&args[2], &args[3], args[4].parse().unwrap()).await,
        _ => eprintln!("usage: bench_client ttft|streams|startup ..."),
    }
}
