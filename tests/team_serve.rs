//! `protogate serve` as a team's service runs it (issue #26): the real binary, its probes,
//! its settings followed while it runs (a ConfigMap's symlink swap, `SIGHUP`), and a
//! `SIGTERM` that lets open streams finish. The manifests and the image's command line
//! are checked in `team_deploy.rs`.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{binary, seed_text, settings};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `protogate serve` process, its URL and everything it has written to stderr so far.
struct Served {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Served {
    /// Starts `protogate --config CONFIG serve ARGS` with a home of its own.
    async fn start(config: &Path, args: &[&str]) -> Served {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .args(args)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("RUST_LOG", "protogate=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = common::serve::collect_stderr(&mut child);
        let (url, _) = common::serve::announced(&mut child).await;
        Served {
            child,
            url,
            stderr,
            _home: home,
        }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until stderr holds `needle` at least `times` times; its text then.
    async fn log_says(&self, needle: &str, times: usize) -> String {
        for _ in 0..150 {
            let text = self.stderr.lock().unwrap().clone();
            if text.matches(needle).count() >= times {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = self.stderr.lock().unwrap().clone();
        panic!("the log never said {needle:?} {times} time(s):\n{text}");
    }

    /// The status of a seed-route request from `origin`.
    async fn chat_status(&self, origin: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/api/ai-gateway/stream", self.url))
            .header("origin", origin)
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Asks until a request from `origin` gets `status`, for up to ten seconds.
    async fn until_origin_gets(&self, origin: &str, status: u16) -> u16 {
        let mut now = 0;
        for _ in 0..100 {
            now = self.chat_status(origin).await;
            if now == status {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        now
    }
}

async fn get(url: &str) -> (u16, Value) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

const SITE: &str = "https://coffee-app.framer.app";

fn with_site(base: &Value) -> Value {
    let mut edited = base.clone();
    edited["cors"] = json!({"allowed_origins": ["https://*.framercanvas.com", SITE]});
    edited
}

#[tokio::test]
async fn probes_answer_the_kubelet_without_token_or_host_and_other_routes_still_need_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    let team = settings(json!({"host": "0.0.0.0", "require_access_token": true}));
    std::fs::write(&path, team.to_string()).unwrap();
    let token = "pg-team-token-0123456789abcdef";
    let mut command = Command::new(binary());
    command
        .arg("--config")
        .arg(&path)
        .args(["serve", "--port", "0"])
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = out.next_line().await.unwrap().unwrap();
    let port = line
        .split(':')
        .nth(2)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // As the kubelet asks (the pod's IP as Host), or a load balancer under a name of its
    // own: no token, no Origin.
    let probe = |path: &str, host: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    for host in [format!("10.244.1.7:{port}"), "lb-health.internal".into()] {
        let livez = common::raw_request(addr, probe("/livez", &host)).await;
        assert!(livez.starts_with("HTTP/1.1 200"), "{livez}");
        assert!(livez.ends_with(r#"{"status":"ok"}"#), "{livez}");
        let readyz = common::raw_request(addr, probe("/readyz", &host)).await;
        assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
        assert!(readyz.ends_with(r#"{"status":"ready"}"#), "{readyz}");
        assert!(!readyz.contains(token), "{readyz}");
    }

    let health = common::raw_request(addr, probe("/health", &format!("10.244.1.7:{port}"))).await;
    assert!(
        health.starts_with("HTTP/1.1 401"),
        "other routes need the token: {health}"
    );
    let named = "GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let refused = common::raw_request(addr, named).await;
    assert!(
        refused.starts_with("HTTP/1.1 403"),
        "other routes keep the Host check: {refused}"
    );
    let _ = child.kill().await;
}

/// A directory as the kubelet mounts a ConfigMap: `settings.json` -> `..data/settings.json`,
/// `..data` -> a timestamped directory holding the real file.
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(settings: &str) -> Self {
        let volume = ConfigMapVolume {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        let first = volume.write_generation(1, settings);
        std::os::unix::fs::symlink(&first, volume.dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/settings.json", volume.settings()).unwrap();
        ConfigMapVolume {
            generation: 1,
            ..volume
        }
    }

    fn settings(&self) -> PathBuf {
        self.dir.path().join("settings.json")
    }

    fn write_generation(&self, n: u32, settings: &str) -> String {
        let name = format!("..2026_12_07_10_00_0{n}.00000000{n}");
        std::fs::create_dir(self.dir.path().join(&name)).unwrap();
        std::fs::write(self.dir.path().join(&name).join("settings.json"), settings).unwrap();
        name
    }

    /// The kubelet's update: a new directory, a new `..data` link renamed over the old
    /// one, the old directory removed. The new file is given the old one's modification
    /// time, and neither `settings.json` link changes: only the content tells.
    fn update(&mut self, settings: &str) {
        let old = std::fs::read_link(self.dir.path().join("..data")).unwrap();
        let old_time = std::fs::metadata(self.settings())
            .unwrap()
            .modified()
            .unwrap();
        self.generation += 1;
        let new = self.write_generation(self.generation, settings);
        let file = self.dir.path().join(&new).join("settings.json");
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(old_time).unwrap();
        let staged = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&new, &staged).unwrap();
        std::fs::rename(&staged, self.dir.path().join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
    }
}

#[tokio::test]
async fn a_configmap_update_applies_without_a_restart_and_a_broken_one_keeps_the_running_settings()
{
    let base = settings(json!({}));
    let mut volume = ConfigMapVolume::new(&base.to_string());
    let served = Served::start(&volume.settings(), &[]).await;
    assert_eq!(served.chat_status(SITE).await, 403, "not approved yet");

    volume.update(&with_site(&base).to_string());
    assert_eq!(
        served.until_origin_gets(SITE, 200).await,
        200,
        "the updated ConfigMap applies without a restart"
    );
    served.log_says("applied the settings in", 1).await;

    volume.update("{\"cors\": {\"allowed_origins\": [\"https://*evil\"]}}");
    let log = served.log_says("not applied", 1).await;
    assert!(log.contains("cors.allowed_origins[0]"), "{log}");
    assert_eq!(
        served.chat_status(SITE).await,
        200,
        "a broken update leaves the running settings"
    );

    let mut moved = with_site(&base);
    moved["port"] = json!(served.port() + 1);
    moved["cors"]["allowed_origins"] = json!([SITE]);
    volume.update(&moved.to_string());
    let log = served.log_says("until it is restarted", 1).await;
    assert!(log.contains(&format!(":{}", served.port() + 1)), "{log}");
    assert_eq!(
        served
            .until_origin_gets("https://project-1.framercanvas.com", 403)
            .await,
        403,
        "the rest of that update applies; the gateway stays on its port"
    );
    assert_eq!(get(&format!("{}/livez", served.url)).await.0, 200);
}

#[tokio::test]
async fn sighup_reads_the_settings_again_and_a_broken_file_is_logged_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    let base = settings(json!({}));
    std::fs::write(&path, base.to_string()).unwrap();
    let served = Served::start(&path, &[]).await;

    served.signal("HUP");
    served.log_says("SIGHUP: reading the settings", 1).await;
    assert_eq!(
        get(&format!("{}/livez", served.url)).await.0,
        200,
        "SIGHUP is a reload, not the end of the process"
    );

    replace(&path, "{ \"port\": ");
    served.signal("HUP");
    // Once for the SIGHUP, once for the watcher that saw the file change.
    let log = served.log_says("not applied", 2).await;
    assert!(log.contains("not valid JSON"), "{log}");
    served.signal("HUP");
    served.log_says("not applied", 3).await;
    assert_eq!(get(&format!("{}/readyz", served.url)).await.0, 200);
    assert_eq!(served.chat_status(SITE).await, 403);

    replace(&path, &with_site(&base).to_string());
    served.signal("HUP");
    served.log_says("applied the settings in", 1).await;
    assert_eq!(
        served.chat_status(SITE).await,
        200,
        "the fixed file applies"
    );
}

/// Writes `text` as an editor that saves atomically does, so nothing reads half a file.
fn replace(path: &Path, text: &str) {
    let staged = path.with_extension("tmp");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(staged, path).unwrap();
}

/// The settings of a slow demo answer: about 45 words at `delay_ms` each.
fn slow_demo(dir: &Path, delay_ms: u64) -> PathBuf {
    let path = dir.join("settings.json");
    let slow = settings(json!({
        "providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": delay_ms}],
        "limits": {"first_byte_timeout_ms": 10000, "idle_timeout_ms": 10000},
    }));
    std::fs::write(&path, slow.to_string()).unwrap();
    path
}

/// Opens a seed stream and waits for its first event.
async fn open_stream(url: &str) -> (reqwest::Response, String) {
    let mut res = reqwest::Client::new()
        .post(format!("{url}/api/ai-gateway/stream"))
        .json(&json!({"message": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = res.chunk().await.unwrap().expect("a first event");
    (res, String::from_utf8_lossy(&first).into_owned())
}

async fn read_rest(mut res: reqwest::Response, mut body: String) -> String {
    while let Ok(Some(chunk)) = res.chunk().await {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    body
}

#[tokio::test]
async fn sigterm_lets_an_open_stream_finish_refuses_new_connections_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(20);
    let mut served = Served::start(&slow_demo(dir.path(), 150), &["--grace-period", "20s"]).await;
    let (res, first) = open_stream(&served.url).await;
    let reading = tokio::spawn(read_rest(res, first));

    served.signal("TERM");
    served.log_says("protogate: stopping", 1).await;
    let addr = format!("127.0.0.1:{}", served.port());
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "a new connection is refused once stopping");
    assert!(!reading.is_finished(), "the stream was still open then");

    let body = reading.await.unwrap();
    let text = seed_text(&body);
    assert!(
        text.starts_with("[Protogate demo]") && text.ends_with("with no change to your component."),
        "the whole answer arrived: {text:?}"
    );
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let status = tokio::time::timeout(grace, served.child.wait())
        .await
        .expect("it exits within the grace period")
        .unwrap();
    assert_eq!(status.code(), Some(0), "a drained stop is a clean exit");
    served.log_says("protogate: stopped", 1).await;
}

#[tokio::test]
async fn a_stream_longer_than_the_grace_period_is_cut_and_the_exit_is_still_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(&slow_demo(dir.path(), 400), &["--grace-period", "1s"]).await;
    let (res, first) = open_stream(&served.url).await;
    let reading = tokio::spawn(read_rest(res, first));

    served.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), served.child.wait())
        .await
        .expect("it exits soon after the grace period")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let body = tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .expect("the client sees its stream end")
        .unwrap();
    assert!(
        !body.contains("[DONE]"),
        "the ~18 s answer could not finish in 1 s: {body}"
    );
}
