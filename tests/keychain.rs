//! Provider keys from the real OS keychain: a Secret Service (gnome-keyring, started by
//! `scripts/test.sh`), written and read back with `secret-tool`, the same tool a person
//! would use to check what Protogate stored.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::json;

fn secret_tool(args: &[&str], input: Option<&str>) -> (bool, String) {
    let mut child = Command::new("secret-tool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secret-tool is installed by scripts/install-deps.sh test");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn a_key_in_the_keychain_signs_upstream_requests() {
    require_secret_service();
    let id = "kc-openai";
    let key = "sk-keychain-0123456789-abcdef";
    let (ok, _) = secret_tool(
        &[
            "store",
            "--label",
            "Protogate: kc-openai",
            "service",
            "protogate",
            "username",
            id,
        ],
        Some(key),
    );
    assert!(ok, "secret-tool stored the key");

    let mock = MockOpenAi::start().await;
    // No PROTOGATE_SECRET_* given: the key can only come from the keychain.
    let gw = spawn_with_openai_key(id, &mock.base_url, json!({}), None).await;
    let body = post_json(
        &gw.url("/api/ai-gateway/stream"),
        Some(FRAMER_ORIGIN),
        json!({"message": "hi"}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(seed_text(&body), "Hello world");
    assert_eq!(mock.authorizations(), vec![Some(format!("Bearer {key}"))]);
    assert!(!body.contains(key));

    let (ok, _) = secret_tool(&["clear", "service", "protogate", "username", id], None);
    assert!(ok);
    let (_, found) = secret_tool(&["lookup", "service", "protogate", "username", id], None);
    assert!(found.is_empty(), "the key is gone from the keychain");
    // A local server (as the mock is) takes requests without a key: none is sent now.
    let gw = spawn_with_openai_key(id, &mock.base_url, json!({}), None).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap();
    assert_eq!(
        mock.authorizations().last(),
        Some(&None),
        "a deleted key is not used"
    );
    // A remote server needs one: the error says how to set it.
    let gw = spawn_with_openai_key(id, "https://api.example.invalid/v1", json!({}), None).await;
    let res = post_json(
        &gw.url("/api/ai-gateway/stream"),
        None,
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        !gw.log_files_text().await.contains(key),
        "the log never holds the key"
    );
}
