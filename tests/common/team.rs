//! Team mode's pieces for the tests: a real `redis-server` (Debian's) on a free loopback
//! port, and `protogate serve --redis` replicas sharing it.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use super::binary;

pub const PASSWORD: &str = "team-redis-password-7f3a";
pub const ACCESS_TOKEN: &str = "pg-team-access-token-0123456789";

/// A `redis-server` on a loopback port of its own, with nothing saved to disk.
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// `None` (and a note) when Debian's `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: no redis-server here; `scripts/install-deps.sh test` installs it");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(port, dir.path());
        Some(RedisServer { child, port, dir })
    }

    pub fn spawn(port: u16, dir: &Path) -> std::process::Child {
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                PASSWORD,
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A fresh, empty server on the same port, as after a restart without persistence.
    pub fn restart(&mut self) {
        self.child = Self::spawn(self.port, self.dir.path());
    }

    /// The keys under `pattern`, as `redis-cli` lists them.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
                "-a",
                PASSWORD,
            ])
            .args(["--scan", "--pattern", pattern])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `protogate serve --redis URL` process, its URL and its stderr so far.
pub struct Replica {
    _child: Child,
    pub url: String,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Replica {
    pub async fn start(settings: &Value, redis: &str) -> Replica {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("settings.json");
        std::fs::write(&path, settings.to_string()).unwrap();
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&path)
            .args(["serve", "--port", "0", "--redis", redis])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("PROTOGATE_REDIS_PASSWORD", PASSWORD)
            .env("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", ACCESS_TOKEN)
            .env("RUST_LOG", "protogate=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = super::serve::collect_stderr(&mut child);
        let (url, _) = super::serve::announced(&mut child).await;
        Replica {
            _child: child,
            url,
            stderr,
            _home: home,
        }
    }

    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/health", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (up to ten seconds) until `/health` shows Redis as `starts`; the value then.
    pub async fn redis_health(&self, starts: &str) -> String {
        let mut now = String::new();
        for _ in 0..100 {
            now = self.health().await["redis"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if now.starts_with(starts) {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("/health never showed redis {starts:?}; it says {now:?}");
    }

    /// A chat completion; its status and body.
    pub async fn chat(&self) -> (u16, String) {
        self.chat_as(None).await
    }

    /// A chat completion with `token` as its bearer token, if any; its status and body.
    pub async fn chat_as(&self, token: Option<&str>) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let res = request.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}
