//! Helpers shared by the integration tests: the real gateway on `127.0.0.1:0`, a mock
//! OpenAI upstream that speaks the documented chunk format, and small client helpers.
#![allow(dead_code)]

pub mod desktop;
pub mod mock_anthropic;
pub mod mock_asap;
pub mod mock_brave;
pub mod mock_deepgram;
pub mod mock_flaky;
pub mod mock_openai;
pub mod mock_tavily;
pub mod otel;
pub mod pages;
pub mod serve;
pub mod speech;
pub mod team;
pub mod tray_host;
pub mod voice_world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use protogate::{AppState, RequestLog, SecretStore};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const FRAMER_ORIGIN: &str = "https://project-abc123.framercanvas.com";

/// A gateway running in this process, stopped when dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub log: RequestLog,
    pub log_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits for a finished record of a request to `path`; records are pushed when a
    /// response body ends, a moment after the client has read it.
    pub async fn record_for(&self, path: &str, method: &str) -> protogate::request_log::Record {
        for _ in 0..200 {
            if let Some(r) = self
                .log
                .recent()
                .into_iter()
                .rev()
                .find(|r| r.path == path && r.method == method)
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no record for {method} {path}; have {:?}",
            self.log.recent()
        );
    }

    /// Everything written to the daily log files so far.
    pub async fn log_files_text(&self) -> String {
        self.log.flush();
        let mut text = String::new();
        for entry in std::fs::read_dir(self.log_dir.path()).unwrap() {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        text
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings with the demo provider at full speed, plus `extra` merged on top.
pub fn settings(extra: Value) -> Value {
    let mut base = json!({
        "port": 0,
        "providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 1}],
        "limits": {"first_byte_timeout_ms": 1500, "idle_timeout_ms": 1500},
        // Tests that want https://localhost turn it on with a port of their own.
        "https": {"enabled": false},
    });
    merge(&mut base, extra);
    base
}

/// Merges `extra` into `base`, objects key by key.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, e) => *b = e,
    }
}

/// Starts the real gateway on `127.0.0.1:0` with `settings`.
pub async fn spawn_gateway(settings: Value) -> TestGateway {
    spawn_gateway_env(settings, &[]).await
}

/// Starts the gateway with `env` as its `PROTOGATE_SECRET_*` environment.
pub async fn spawn_gateway_env(settings: Value, env: &[(&str, &str)]) -> TestGateway {
    let log_dir = tempfile::tempdir().unwrap();
    let config = protogate::config::parse(&settings.to_string(), "test settings")
        .expect("valid test settings");
    let log = RequestLog::new(
        Some(log_dir.path()),
        config.log.retention_days,
        config.log.ring_size,
        config.log.max_text_chars,
    )
    .unwrap();
    let listener = protogate::bind(&config).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let secrets = SecretStore::with_environment(env).with_cache_ttl(config.keychain_cache);
    let state = AppState::new(config, log.clone(), secrets);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(protogate::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    TestGateway {
        addr,
        log,
        log_dir,
        stop: Some(stop),
    }
}

/// The key the test gateways hold for provider `id`.
pub fn test_key(id: &str) -> String {
    format!("sk-test-{id}-0123456789abcdef")
}

/// A gateway whose default provider `id` is an OpenAI-compatible server at `base_url`,
/// with [`test_key`] as its key.
pub async fn spawn_with_openai(id: &str, base_url: &str, extra: Value) -> TestGateway {
    spawn_with_openai_key(id, base_url, extra, Some(&test_key(id))).await
}

pub async fn spawn_with_openai_key(
    id: &str,
    base_url: &str,
    extra: Value,
    key: Option<&str>,
) -> TestGateway {
    let mut s = settings(json!({
        "default_provider": id,
        "providers": [
            {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
            {"id": id, "kind": "openai", "base_url": base_url, "default_model": "gpt-test"},
        ],
    }));
    merge(&mut s, extra);
    let var = protogate::secrets::env_var_name(id);
    match key {
        Some(key) => spawn_gateway_env(s, &[(var.as_str(), key)]).await,
        None => spawn_gateway(s).await,
    }
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: ").map(String::from))
        })
        .collect()
}

/// The text a seed client would show: the `text` of every event before `[DONE]`.
pub fn seed_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .take_while(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.get("text").and_then(Value::as_str).map(String::from))
        .collect()
}

/// A POST as a browser on `origin` sends it.
pub async fn post_json(url: &str, origin: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.expect("request reaches the gateway")
}

/// Sends bytes as they are, as a hostile client would (HTTP clients will not send an
/// empty Host, or two), and reads the answer until the server closes.
pub async fn raw_request(addr: SocketAddr, request: impl AsRef<[u8]>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_ref()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of the built `protogate` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_protogate"))
}

/// Runs `protogate ARGS` with `home` as its home and the settings in it, as a person would
/// at a terminal; its standard output, once it has succeeded.
pub fn protogate_in(home: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(binary())
        .arg("--config")
        .arg(home.join("settings.json"))
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "protogate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Keychain tests need the throwaway Secret Service that `scripts/test.sh` starts.
pub fn require_secret_service() {
    assert!(
        std::env::var_os("PROTOGATE_TEST_SECRET_SERVICE").is_some(),
        "this test needs a real Secret Service: run it through scripts/test.sh"
    );
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `protogate serve` with HTTPS on a free port, in `home`, with `extra` settings; the
/// process and its http and https URLs. The CA comes from the test Secret Service.
pub async fn serve_https(
    home: &std::path::Path,
    extra: Value,
) -> (tokio::process::Child, String, String) {
    let mut settings = settings(json!({"https": {"enabled": true, "port": 0}}));
    merge(&mut settings, extra);
    let (child, line) = spawn_serve(home, settings).await;
    (child, url_in(&line, "http://"), url_in(&line, "https://"))
}

/// `protogate serve` over plain http on a free port, in `home`, with `settings` as they
/// are; the process and its URL.
pub async fn serve_process(
    home: &std::path::Path,
    settings: Value,
) -> (tokio::process::Child, String) {
    let (child, line) = spawn_serve(home, settings).await;
    (child, url_in(&line, "http://"))
}

async fn spawn_serve(home: &std::path::Path, settings: Value) -> (tokio::process::Child, String) {
    std::fs::write(home.join("settings.json"), settings.to_string()).unwrap();
    let mut child = tokio::process::Command::new(binary())
        .args(["--config"])
        .arg(home.join("settings.json"))
        .args(["serve", "--port", "0"])
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the gateway starts")
        .unwrap()
        .expect("a URL line");
    (child, line)
}

fn url_in(line: &str, scheme: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with(scheme))
        .unwrap_or_else(|| panic!("a {scheme} URL in {line:?}"))
        .to_string()
}
