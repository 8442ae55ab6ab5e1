//! `GET /metrics` (`"metrics": {"enabled": true}`): a real Prometheus server (Debian's
//! `prometheus`, see scripts/install-deps.sh) scrapes a gateway and its query API returns
//! the counts the test caused; off, the path is a 404; on the LAN it needs the access
//! token; web pages are refused; no key, token or prompt ever shows; a settings reload
//! keeps the counts.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use protogate::config::parse_raw_value;
use protogate::controller::Controller;
use protogate::{RequestLog, SecretStore};
use serde_json::{json, Value};

const PROMPT: &str = "the launch plan nobody may see";
const TOKEN: &str = "pg-metrics-token-0123456789";

fn metrics_on() -> Value {
    json!({
        "metrics": {"enabled": true},
        // Prometheus scrapes every second beside the test's own requests.
        "limits": {"requests_per_minute": 100000, "burst": 10000},
    })
}

/// A gateway with the demo provider and `mock` (an OpenAI-compatible mock, the default
/// provider), metrics on, `extra` merged on top.
async fn gateway(mock: &MockOpenAi, extra: Value) -> TestGateway {
    let mut s = metrics_on();
    merge(&mut s, extra);
    spawn_with_openai("mock", &mock.base_url, s).await
}

/// What the test does, the same for every check: three demo answers on the seed route,
/// one refused origin, one upstream failure, one answer from the mock.
async fn traffic(gw: &TestGateway) {
    for _ in 0..3 {
        let res = post_json(
            &gw.url("/api/ai-gateway/stream"),
            Some(FRAMER_ORIGIN),
            json!({"message": PROMPT, "provider": "demo"}),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("[DONE]"));
    }
    let refused = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some("https://evil.example"),
        json!({"message": PROMPT}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let failed = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "mock/error500", "messages": [{"role": "user", "content": PROMPT}]}),
    )
    .await;
    assert_eq!(failed.status(), 502);
    let answered = post_json(
        &gw.url("/v1/chat/completions"),
        None,
        json!({"model": "mock/gpt-test", "messages": [{"role": "user", "content": PROMPT}]}),
    )
    .await;
    assert_eq!(answered.status(), 200);
    answered.text().await.unwrap();
    // Records are pushed as each body ends, a moment after the client read it.
    for _ in 0..200 {
        if gw.log.recent().len() >= 6 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("six records; have {:?}", gw.log.recent());
}

async fn scrape(url: &str) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The value of the one sample line `series` (name and labels as written).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn the_exposition_counts_requests_and_shows_no_key_token_or_prompt() {
    let mock = MockOpenAi::start().await;
    let gw = gateway(&mock, json!({})).await;
    traffic(&gw).await;
    let (status, text) = scrape(&gw.url("/metrics")).await;
    assert_eq!(status, 200, "{text}");
    let count = |s: &str| value(&text, s);
    assert_eq!(
        count("protogate_requests_total{route=\"/api/ai-gateway/stream\",provider=\"demo\",model=\"protogate-demo\",status=\"200\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        count("protogate_requests_total{route=\"/api/ai-gateway/stream\",provider=\"\",model=\"\",status=\"403\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("protogate_errors_total{provider=\"\",kind=\"refused\"}"),
        Some(1.0)
    );
    assert_eq!(
        count("protogate_errors_total{provider=\"mock\",kind=\"upstream_status\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("protogate_tokens_total{provider=\"mock\",model=\"gpt-test\",type=\"input\"}"),
        Some(9.0),
        "the mock's reported usage: {text}"
    );
    assert_eq!(
        count(
            "protogate_request_duration_seconds_count{provider=\"demo\",model=\"protogate-demo\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        count("protogate_time_to_first_token_seconds_count{provider=\"demo\",model=\"protogate-demo\"}"),
        Some(3.0)
    );
    assert_eq!(count("protogate_streams_open"), Some(0.0));
    assert!(text.contains("# TYPE protogate_request_duration_seconds histogram"));

    for secret in [test_key("mock").as_str(), PROMPT, "Hello world"] {
        assert!(!text.contains(secret), "`{secret}` in /metrics:\n{text}");
    }
}

#[tokio::test]
async fn failures_after_the_answer_started_are_counted_by_kind() {
    let mock = MockOpenAi::start().await;
    let gw = gateway(&mock, json!({})).await;
    let url = gw.url("/api/ai-gateway/stream");
    let stream = |model: &str| post_json(&url, None, json!({"message": "hi", "model": model}));
    // The upstream closes half-way: the client gets an error event.
    let cut = stream("cut").await;
    assert!(cut.text().await.unwrap().contains("\"error\""));
    // The client goes away half-way.
    let mut endless = stream("endless").await.bytes_stream();
    futures_util::StreamExt::next(&mut endless)
        .await
        .unwrap()
        .unwrap();
    drop(endless);

    let mut kinds = vec![];
    for _ in 0..200 {
        kinds = gw.log.recent().iter().map(|r| r.error_kind).collect();
        if kinds.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        kinds,
        [Some("cut"), Some("client_gone")],
        "the log's error_kind"
    );
    let (_, text) = scrape(&gw.url("/metrics")).await;
    for kind in ["cut", "client_gone"] {
        let series = format!("protogate_errors_total{{provider=\"mock\",kind=\"{kind}\"}}");
        assert_eq!(value(&text, &series), Some(1.0), "{series} in {text}");
    }
}

#[tokio::test]
async fn off_by_default_the_path_is_a_404_like_any_unknown_one() {
    let gw = spawn_gateway(settings(json!({}))).await;
    let (status, text) = scrape(&gw.url("/metrics")).await;
    let (_, unknown) = scrape(&gw.url("/no-such-path")).await;
    assert_eq!(status, 404);
    assert_eq!(
        text.replace("/metrics", "PATH"),
        unknown.replace("/no-such-path", "PATH")
    );
}

#[tokio::test]
async fn web_pages_are_refused_even_from_an_allowed_origin() {
    let mock = MockOpenAi::start().await;
    let gw = gateway(&mock, json!({})).await;
    let res = reqwest::Client::new()
        .get(gw.url("/metrics"))
        .header("origin", FRAMER_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("not for web pages"), "{body}");
    assert!(!body.contains("protogate_requests_total"), "{body}");
}

#[tokio::test]
async fn on_the_lan_metrics_need_the_access_token() {
    let s = settings(json!({
        "host": "0.0.0.0",
        "require_access_token": true,
        "metrics": {"enabled": true},
    }));
    let var = protogate::secrets::env_var_name(protogate::secrets::ACCESS_TOKEN_ACCOUNT);
    let gw = spawn_gateway_env(s, &[(var.as_str(), TOKEN)]).await;
    let port = gw.addr.port();
    // From another machine's point of view: this machine's LAN address, when it has one.
    let mut hosts = vec!["127.0.0.1".to_string()];
    hosts.extend(protogate::controller::lan_address().map(|ip| ip.to_string()));
    let client = reqwest::Client::new();
    for host in hosts {
        let url = format!("http://{host}:{port}/metrics");
        let without = client.get(&url).send().await.unwrap();
        assert_eq!(without.status(), 401, "{url}");
        let body = without.text().await.unwrap();
        assert!(body.contains("access token missing"), "{body}");
        assert!(!body.contains("protogate_"), "{body}");
        let wrong = client.get(&url).bearer_auth("nope").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{url}");
        let with = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(with.status(), 200, "{url}");
        let text = with.text().await.unwrap();
        assert!(text.contains("protogate_requests_total"), "{text}");
        assert!(!text.contains(TOKEN), "the token is never shown");
    }
}

#[tokio::test]
async fn a_settings_change_keeps_the_counts_and_turning_metrics_off_removes_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(metrics_on());
    merge(&mut s, json!({"port": 0}));
    let gateway = Controller::new(
        dir.path().join("settings.json"),
        parse_raw_value(s, "test").unwrap(),
        RequestLog::new(None, 1, 100, 200).unwrap(),
        SecretStore::with_environment(Default::default()),
    );
    let url = gateway.start().await.endpoint().expect("running");
    let demo = || async {
        let res = post_json(
            &format!("{url}/api/ai-gateway/stream"),
            None,
            json!({"message": "hi"}),
        )
        .await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap();
    };
    let answered = |text: &str| {
        value(
            text,
            "protogate_requests_total{route=\"/api/ai-gateway/stream\",provider=\"demo\",model=\"protogate-demo\",status=\"200\"}",
        )
    };
    demo().await;
    demo().await;
    // A new state is built for the new settings; the counters carry on.
    gateway
        .approve_origin("https://a-site.framer.app")
        .await
        .unwrap();
    demo().await;
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&format!("{url}/metrics")).await.1;
        if answered(&text) == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(answered(&text), Some(3.0), "{text}");

    let mut off = gateway.settings();
    off.metrics.enabled = false;
    gateway.save_settings(off).await.unwrap();
    assert_eq!(scrape(&format!("{url}/metrics")).await.0, 404);
    gateway.stop().await;
}

/// A Prometheus server on loopback, ended with the test.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping `target` every second; `None` when it is not
    /// installed.
    fn start(target: std::net::SocketAddr) -> Option<Prometheus> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: protogate\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// The value of a PromQL query that returns one number, once it does.
    async fn query(&self, promql: &str) -> Option<f64> {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        let v: Value = res.json().await.ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits for `promql` to be `expected` (Prometheus needs a scrape or two after it
    /// starts), and says what it last returned if it never is.
    async fn until(&self, promql: &str, expected: f64) {
        let mut last = None;
        for _ in 0..300 {
            last = self.query(promql).await;
            if last == Some(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{promql}` returned {last:?}, not {expected}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_prometheus_server_scrapes_the_counts_the_test_caused() {
    let mock = MockOpenAi::start().await;
    let gw = gateway(&mock, json!({})).await;
    traffic(&gw).await;
    let Some(prometheus) = Prometheus::start(gw.addr) else {
        eprintln!(
            "SKIPPED: no `prometheus` binary; scripts/install-deps.sh test installs it \
             (Debian's `prometheus` package)"
        );
        return;
    };
    prometheus.until("up{job=\"protogate\"}", 1.0).await;
    prometheus
        .until(
            "sum(protogate_requests_total{route=\"/api/ai-gateway/stream\",status=\"200\"})",
            3.0,
        )
        .await;
    prometheus
        .until("sum(protogate_errors_total{kind=\"refused\"})", 1.0)
        .await;
    prometheus
        .until(
            "sum(protogate_errors_total{provider=\"mock\",kind=\"upstream_status\"})",
            1.0,
        )
        .await;
    prometheus
        .until("sum(protogate_tokens_total{provider=\"mock\"})", 11.0)
        .await;
    prometheus
        .until(
            "sum(protogate_request_duration_seconds_count{provider=\"demo\"})",
            3.0,
        )
        .await;
    // Its own scrapes are requests too, counted under their route from the next one on.
    prometheus
        .until(
            "count(protogate_requests_total{route=\"/metrics\",status=\"200\"})",
            1.0,
        )
        .await;
}
