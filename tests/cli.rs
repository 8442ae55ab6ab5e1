//! `protogate serve` as a user runs it: the real binary, its output, its exit codes,
//! and its files. Also the end-to-end leak check for a key given by environment.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A `protogate serve` process with its own config and data directories.
struct Served {
    child: Child,
    url: String,
    /// What it printed on stdout: the one line announcing the URL.
    line: String,
    home: tempfile::TempDir,
}

fn command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("PROTOGATE_CONFIG")
        .env_remove("PROTOGATE_PORT")
        .env_remove("PROTOGATE_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts the binary and waits for the line announcing its URL.
async fn serve(args: &[&str], envs: &[(&str, &str)], settings: Option<Value>) -> Served {
    let home = tempfile::tempdir().unwrap();
    if let Some(settings) = settings {
        let dir = home.path().join("config/protogate");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
    }
    let mut cmd = command(home.path(), args);
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let (url, line) = serve::announced(&mut child).await;
    assert!(!url.ends_with(":0"), "the real port is printed: {line}");
    Served {
        child,
        url,
        line,
        home,
    }
}

async fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    err
}

fn terminate(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_prints_its_url_creates_settings_and_stops_on_sigterm() {
    let mut served = serve(&["serve", "--port", "0"], &[], None).await;
    let health: Value = reqwest::get(format!("{}/health", served.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let settings = served.home.path().join("config/protogate/settings.json");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(
        written["default_provider"], "demo",
        "a first run writes the defaults"
    );
    assert_eq!(written["port"], 5711, "--port does not rewrite the file");

    terminate(&served.child);
    let status = tokio::time::timeout(Duration::from_secs(10), served.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let logs = served.home.path().join("data/protogate/logs");
    assert!(
        std::fs::read_dir(&logs).unwrap().next().is_some(),
        "the request log is in the data directory"
    );
}

#[tokio::test]
async fn a_port_in_use_is_a_one_line_error_not_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let home = tempfile::tempdir().unwrap();
    let mut child = command(home.path(), &["serve", "--port", &port])
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    let err = stderr_of(&mut child).await;
    assert!(!status.success());
    assert!(
        err.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn a_bad_settings_file_is_reported_with_path_and_field_and_nothing_starts() {
    for (settings, field) in [
        ("{\"port\": 5711,", "not valid JSON"),
        (
            r#"{"providers": [{"id": "x", "kind": "openia"}]}"#,
            "providers[0].kind",
        ),
        (
            r#"{"cors": {"allowed_origins": ["https://*evil.com"]}}"#,
            "cors.allowed_origins[0]",
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join("custom.json");
        std::fs::write(&path, settings).unwrap();
        let mut child = command(
            home.path(),
            &["serve", "--port", "0", "--config", path.to_str().unwrap()],
        )
        .spawn()
        .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        let err = stderr_of(&mut child).await;
        assert!(!status.success(), "{settings}");
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(field),
            "{settings}: {err}"
        );
        assert!(
            !out.contains("listening"),
            "nothing starts with half a config"
        );
    }
}

#[tokio::test]
async fn a_key_from_the_environment_reaches_the_upstream_and_nothing_else() {
    let secret = "sk-env-0123456789-SECRET-do-not-leak";
    let mock = MockOpenAi::start().await;
    let settings = json!({
        "default_provider": "team-openai",
        "providers": [
            {"id": "demo", "kind": "demo"},
            {"id": "team-openai", "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
    });
    let mut served = serve(
        &["serve", "--port", "0"],
        &[("PROTOGATE_SECRET_TEAM_OPENAI", secret)],
        Some(settings),
    )
    .await;
    let client = reqwest::Client::new();
    let mut bodies = String::new();
    for (path, body) in [
        ("/api/ai-gateway/stream", json!({"message": "hi"})),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "reject-key"}),
        ),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "error500"}),
        ),
        (
            "/v1/chat/completions",
            json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/health", json!(null)),
        ("/v1/models", json!(null)),
    ] {
        let res = if body.is_null() {
            client
                .get(format!("{}{path}", served.url))
                .send()
                .await
                .unwrap()
        } else {
            client
                .post(format!("{}{path}", served.url))
                .json(&body)
                .send()
                .await
                .unwrap()
        };
        bodies.push_str(&format!("{:?}", res.headers()));
        bodies.push_str(&res.text().await.unwrap());
    }
    assert!(
        bodies.contains("Hello world"),
        "the upstream answered: {bodies}"
    );
    let auth = mock.authorizations();
    assert!(!auth.is_empty());
    assert!(
        auth.iter()
            .all(|a| a.as_deref() == Some(&format!("Bearer {secret}"))),
        "{auth:?}"
    );

    terminate(&served.child);
    served.child.wait().await.unwrap();
    let output = format!("{}\n{}", served.line, stderr_of(&mut served.child).await);
    let mut files = String::new();
    for dir in ["config", "data"] {
        for entry in walk(&served.home.path().join(dir)) {
            files.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
        }
    }
    assert!(
        files.contains("\"path\":\"/v1/chat/completions\""),
        "the log files were read"
    );
    for (what, text) in [
        ("responses", &bodies),
        ("stdout and stderr", &output),
        ("config and log files", &files),
    ] {
        assert!(!text.contains(secret), "the key appears in {what}");
        assert!(
            !text.contains("SECRET-do-not-leak"),
            "part of the key appears in {what}"
        );
    }
}
