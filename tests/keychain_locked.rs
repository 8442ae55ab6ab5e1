//! A locked keychain: reported in plain words for the provider that needs it, while the
//! others keep answering. Runs the gateway in a D-Bus session of its own, with its own
//! gnome-keyring, so locking it does not disturb the other keychain tests.
// Linux only: its own D-Bus session and gnome-keyring, process groups.
#![cfg(target_os = "linux")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// Starts a keyring, stores a key for `remote` with `protogate secrets set`, locks the
/// keyring, runs `protogate check` into `check.txt`, then execs `protogate serve`, whose
/// URL line is the only thing on stdout.
const SCRIPT: &str = r#"
set -eu
export XDG_DATA_HOME="$HOME_DIR/data" XDG_RUNTIME_DIR="$HOME_DIR/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
printf %s test-pass | gnome-keyring-daemon --unlock --components=secrets >&2
printf %s sk-locked-0123456789 | "$PROTOGATE" --config "$HOME_DIR/settings.json" secrets set remote >&2
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
  org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >&2
"$PROTOGATE" --config "$HOME_DIR/settings.json" check > "$HOME_DIR/check.txt" 2>&1 || true
exec "$PROTOGATE" --config "$HOME_DIR/settings.json" serve --port 0
"#;

#[tokio::test]
async fn a_locked_keychain_fails_only_the_provider_that_needs_it() {
    require_secret_service(); // the test tools are installed
    let home = tempfile::tempdir().unwrap();
    let settings = json!({"providers": [
        {"id": "demo", "kind": "demo", "chunk_delay_ms": 1},
        {"id": "remote", "kind": "openai", "base_url": "https://api.example.invalid/v1", "default_model": "m"},
    ]});
    std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
    let mut child = tokio::process::Command::new("dbus-run-session")
        .args(["--", "bash", "-c", SCRIPT])
        .env("HOME_DIR", home.path())
        .env("PROTOGATE", binary())
        .env_remove("PROTOGATE_SECRET_REMOTE")
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

    let health: Value = reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let remote = health["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "remote")
        .unwrap()
        .clone();
    assert_eq!(
        remote["credential"], "unreadable: the system keychain is locked",
        "{health}"
    );

    let res = post_json(
        &format!("{url}/api/ai-gateway/stream"),
        None,
        json!({"message": "hi", "provider": "remote"}),
    )
    .await;
    assert_eq!(res.status(), 503);
    let v: Value = res.json().await.unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("provider 'remote'") && error.contains("the system keychain is locked"),
        "{error}"
    );
    assert!(
        error.contains("PROTOGATE_SECRET_REMOTE"),
        "says how to work around it: {error}"
    );

    let res = post_json(
        &format!("{url}/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200, "the demo provider keeps working");
    assert!(seed_text(&res.text().await.unwrap()).starts_with("[Protogate demo]"));

    // The session's processes form one group: stop them all.
    let group = format!("-{}", child.id().unwrap());
    std::process::Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;

    let check = std::fs::read_to_string(home.path().join("check.txt")).unwrap();
    assert!(
        check.contains("demo: ok"),
        "check: the demo passes: {check}"
    );
    assert!(
        check.contains(
            "remote: cannot read the key for provider 'remote': the system keychain is locked"
        ),
        "{check}"
    );
    assert!(!check.contains("sk-locked-0123456789"));
}
