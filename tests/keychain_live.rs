//! The keychain as a running gateway sees it: a key deleted or replaced outside Protogate
//! (Seahorse, Keychain Access, `secret-tool`) stops or starts being used within the cache's
//! time-to-live, with the same gateway running; a keychain that is not up when the gateway
//! starts is found once it is; and an unreadable access token is a 503, not a 401.
// Linux only: the Secret Service (gnome-keyring over D-Bus), process groups.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

fn secret_tool(args: &[&str], input: Option<&str>) -> bool {
    let mut child = Command::new("secret-tool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("secret-tool is installed by scripts/install-deps.sh test");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait().unwrap().success()
}

fn store(id: &str, key: &str) {
    let label = format!("Protogate: {id}");
    let args = [
        "store",
        "--label",
        &label,
        "service",
        "protogate",
        "username",
        id,
    ];
    assert!(secret_tool(&args, Some(key)), "secret-tool stored the key");
}

async fn credential_state(gw: &TestGateway, id: &str) -> String {
    let health: Value = reqwest::get(gw.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .map(|p| p["credential"].as_str().unwrap().to_string())
        .unwrap()
}

/// Polls `/health` until provider `id`'s credential state starts with `want`.
async fn wait_for_state(gw: &TestGateway, id: &str, want: &str) {
    let mut last = String::new();
    for _ in 0..50 {
        last = credential_state(gw, id).await;
        if last.starts_with(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id}: the health page should say `{want}` within seconds; it says `{last}`");
}

#[tokio::test]
async fn a_key_deleted_or_replaced_outside_protogate_is_noticed_by_the_running_gateway() {
    require_secret_service();
    let (id, local) = ("kc-live", "kc-live-local");
    store(id, "sk-live-first-0123456789");
    store(local, "sk-live-local-0123456789");
    let mock = MockOpenAi::start().await;
    let gw = spawn_gateway(settings(json!({
        "keychain_cache_ms": 300,
        "providers": [
            {"id": id, "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test", "needs_key": true},
            {"id": local, "kind": "openai", "base_url": mock.base_url, "default_model": "gpt-test"},
        ],
    })))
    .await;
    let url = gw.url("/api/ai-gateway/stream");
    let ask = |provider: &'static str| {
        post_json(&url, None, json!({"message": "hi", "provider": provider}))
    };

    let res = ask(id).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap();
    assert_eq!(
        mock.authorizations().last().cloned().flatten().as_deref(),
        Some("Bearer sk-live-first-0123456789")
    );
    assert!(
        credential_state(&gw, local)
            .await
            .starts_with("set (in the keychain)"),
        "a key stored for a server on this machine is sent, and /health says so"
    );

    assert!(secret_tool(
        &["clear", "service", "protogate", "username", id],
        None
    ));
    wait_for_state(&gw, id, "missing").await;
    let res = ask(id).await;
    assert_eq!(res.status(), 401, "a deleted key is no longer used");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("secrets set kc-live"),
        "{body}"
    );

    store(id, "sk-live-second-0123456789");
    wait_for_state(&gw, id, "set (in the keychain)").await;
    let res = ask(id).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap();
    assert_eq!(
        mock.authorizations().last().cloned().flatten().as_deref(),
        Some("Bearer sk-live-second-0123456789"),
        "the replacement key is used without a restart"
    );

    assert!(secret_tool(
        &["clear", "service", "protogate", "username", local],
        None
    ));
    wait_for_state(&gw, local, "not needed").await;
    assert!(secret_tool(
        &["clear", "service", "protogate", "username", id],
        None
    ));
}

/// Starts the gateway before any keychain exists; once the test creates `go`, starts an
/// unlocked keychain, stores the access token with `protogate secrets set`, and creates
/// `ready`.
const SCRIPT: &str = r#"
set -eu
export XDG_DATA_HOME="$HOME_DIR/data" XDG_RUNTIME_DIR="$HOME_DIR/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
"$PROTOGATE" --config "$HOME_DIR/settings.json" serve --port 0 &
serve=$!
while [ ! -e "$HOME_DIR/go" ]; do sleep 0.1; done
printf %s test-pass | gnome-keyring-daemon --unlock --components=secrets >&2
printf %s "$TOKEN" | "$PROTOGATE" --config "$HOME_DIR/settings.json" secrets set protogate-access-token >&2
touch "$HOME_DIR/ready"
wait $serve
"#;

#[tokio::test]
async fn a_keychain_that_starts_after_the_gateway_is_used_once_it_is_up() {
    require_secret_service(); // the test tools are installed
    let token = "pg-late-keychain-0123456789";
    let home = tempfile::tempdir().unwrap();
    let settings = json!({
        "require_access_token": true,
        "keychain_cache_ms": 200,
        "providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 1}],
    });
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    std::fs::write(home.path().join("bus.conf"), common::desktop::BUS_CONFIG).unwrap();
    let mut child = tokio::process::Command::new("dbus-run-session")
        .arg(format!(
            "--config-file={}",
            home.path().join("bus.conf").display()
        ))
        .args(["--", "bash", "-c", SCRIPT])
        .env("HOME_DIR", home.path())
        .env("PROTOGATE", binary())
        .env("TOKEN", token)
        .env_remove("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the gateway starts")
        .unwrap()
        .expect("a URL line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let health = || {
        reqwest::Client::new()
            .get(format!("{url}/health"))
            .bearer_auth(token)
            .send()
    };

    let res = health().await.unwrap();
    assert_eq!(
        res.status(),
        503,
        "no keychain to check the token against: Protogate cannot answer, the client did nothing wrong"
    );
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("keychain"),
        "{body}"
    );

    std::fs::write(home.path().join("go"), "").unwrap();
    let mut status = 0;
    for _ in 0..150 {
        if home.path().join("ready").exists() {
            status = health().await.unwrap().status().as_u16();
            if status == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "once the keychain is up, the same gateway reads the token from it"
    );
    let res = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(res.status(), 401, "a request without the token is refused");

    let group = format!("-{}", child.id().unwrap());
    std::process::Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
