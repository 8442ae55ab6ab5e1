//! `protogate secrets` against a real Secret Service (started by `scripts/test.sh`),
//! checked from outside with `secret-tool`; then a whole session searched for leaks.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::mock_anthropic::MockAnthropic;
use common::mock_asap::{self, MockAsapGateway};
use common::mock_openai::MockOpenAi;
use common::*;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

/// Runs `protogate <args>` with `settings` and `stdin`, in its own config and data dirs.
/// It blocks its thread: tests using it run on two workers so the mocks keep serving.
/// A CLI that exits before reading its stdin (an unknown id) closes the pipe; that is no
/// failure of the test, whose verdict is the CLI's output and exit status.
fn protogate(home: &Path, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(home.join("settings.json"))
        .env("XDG_DATA_HOME", home.join("data"))
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {e}"
        );
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn lookup(id: &str) -> String {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "protogate", "username", id])
        .output()
        .expect("secret-tool is installed by scripts/install-deps.sh test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_settings(home: &Path, settings: &Value) {
    std::fs::write(
        home.join("settings.json"),
        serde_json::to_string_pretty(settings).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_set_status_delete_go_through_the_real_keychain() {
    require_secret_service();
    let home = tempfile::tempdir().unwrap();
    let asap = MockAsapGateway::start().await;
    write_settings(
        home.path(),
        &json!({
            "default_provider": "cli-openai",
            "providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "cli-openai", "kind": "openai", "base_url": "https://api.example.invalid/v1", "default_model": "gpt-test"},
                {"id": "cli-gw", "kind": "asap-gateway", "base_url": asap.invoke_url, "default_model": "claude-bedrock",
                 "asap": {"issuer": mock_asap::ISSUER, "key_id": mock_asap::KEY_ID, "audience": mock_asap::AUDIENCE}},
            ],
        }),
    );
    let key = "sk-cli-0123456789-keychain";

    let out = protogate(
        home.path(),
        &["secrets", "set", "cli-openai"],
        &format!("{key}\n"),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        lookup("cli-openai"),
        key,
        "the key really is in the Secret Service"
    );
    assert!(!text(&out).contains(key), "set never prints the key");

    let out = protogate(
        home.path(),
        &["secrets", "set", "cli-gw"],
        include_str!("fixtures/malformed.pem"),
        &[],
    );
    assert!(!out.status.success(), "a broken PEM is refused");
    assert!(
        text(&out).contains("not stored") && !text(&out).contains("bm90IGEga2V5"),
        "{}",
        text(&out)
    );
    assert!(lookup("cli-gw").is_empty());
    let out = protogate(
        home.path(),
        &["secrets", "set", "cli-gw"],
        mock_asap::PRIVATE_KEY,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lookup("cli-gw").trim(), mock_asap::PRIVATE_KEY.trim());

    let out = protogate(home.path(), &["secrets", "set", "nope"], "x", &[]);
    assert!(
        !out.status.success() && text(&out).contains("unknown provider 'nope'"),
        "{}",
        text(&out)
    );

    let out = protogate(home.path(), &["secrets", "status"], "", &[]);
    let status = text(&out);
    assert!(
        status.contains("cli-openai") && status.contains("set (in the keychain)"),
        "{status}"
    );
    assert!(
        status.contains("demo") && status.contains("not needed"),
        "{status}"
    );
    assert!(
        !status.contains(key) && !status.contains("PRIVATE KEY"),
        "{status}"
    );

    // The gateway reads the PEM from the keychain and signs with it.
    let asap_key = lookup("cli-gw");
    assert!(!asap_key.is_empty());
    let out = protogate(home.path(), &["check"], "", &[]);
    let check = text(&out);
    assert!(
        check.contains("demo: ok") && check.contains("cli-gw: ok"),
        "{check}"
    );
    assert!(
        check.contains("cli-openai: could not reach provider 'cli-openai'"),
        "{check}"
    );
    assert_eq!(
        asap.tokens().len(),
        1,
        "check made one call to the ASAP gateway"
    );

    // The environment is reported as the source and wins over the keychain.
    let out = protogate(
        home.path(),
        &["secrets", "status"],
        "",
        &[("PROTOGATE_SECRET_CLI_OPENAI", "sk-env")],
    );
    assert!(
        text(&out).contains("set (from the environment)"),
        "{}",
        text(&out)
    );

    for _ in 0..2 {
        let out = protogate(home.path(), &["secrets", "delete", "cli-openai"], "", &[]);
        assert!(
            out.status.success(),
            "deleting, even twice, succeeds: {}",
            text(&out)
        );
    }
    assert!(lookup("cli-openai").is_empty(), "the key is gone");
    let out = protogate(home.path(), &["secrets", "status"], "", &[]);
    assert!(
        text(&out)
            .lines()
            .any(|l| l.starts_with("cli-openai") && l.ends_with("missing")),
        "{}",
        text(&out)
    );
    let out = protogate(home.path(), &["providers"], "", &[]);
    assert!(
        text(&out).contains("cli-gw") && text(&out).contains("key: set (in the keychain)"),
        "{}",
        text(&out)
    );
    protogate(home.path(), &["secrets", "delete", "cli-gw"], "", &[]);

    // A key left behind by a provider since removed from the settings: listed, and
    // removable by its id.
    let stored = Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "old",
            "service",
            "protogate",
            "username",
            "cli-removed",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"sk-removed-0123456789")?;
            child.wait()
        })
        .unwrap();
    assert!(stored.success());
    let out = protogate(home.path(), &["secrets", "status"], "", &[]);
    assert!(
        text(&out).lines().any(|l| l.starts_with("cli-removed")
            && l.contains("used by no provider")
            && l.contains("protogate secrets delete cli-removed")),
        "status lists keys no provider uses: {}",
        text(&out)
    );
    assert!(!text(&out).contains("sk-removed-0123456789"));
    let out = protogate(home.path(), &["secrets", "delete", "cli-removed"], "", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Removed") && text(&out).contains("not a configured provider"),
        "{}",
        text(&out)
    );
    assert!(
        lookup("cli-removed").is_empty(),
        "the left-behind key is gone"
    );
    let out = protogate(home.path(), &["secrets", "delete", "cli-removed"], "", &[]);
    assert!(
        out.status.success() && text(&out).contains("nothing to remove"),
        "{}",
        text(&out)
    );
}

/// Every secret and PEM used in a whole session, searched for in everything a user or
/// another program could read afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_session_leaks_no_secret_anywhere() {
    require_secret_service();
    let home = tempfile::tempdir().unwrap();
    let openai = MockOpenAi::start().await;
    let anthropic_key = "sk-ant-leaktest-0123456789";
    let anthropic = MockAnthropic::start("sk-ant-leaktest-0123456789").await;
    let asap = MockAsapGateway::start().await;
    let openai_key = "sk-leak-openai-0123456789";
    write_settings(
        home.path(),
        &json!({
            "port": 0,
            "default_provider": "leak-oai",
            "providers": [
                {"id": "demo", "kind": "demo"},
                {"id": "leak-oai", "kind": "openai", "base_url": openai.base_url, "default_model": "gpt-test"},
                {"id": "leak-claude", "kind": "anthropic", "base_url": anthropic.base_url, "default_model": "claude-test"},
                {"id": "leak-gw", "kind": "asap-gateway", "base_url": asap.invoke_url, "default_model": "claude-bedrock",
                 "asap": {"issuer": mock_asap::ISSUER, "key_id": mock_asap::KEY_ID, "audience": mock_asap::AUDIENCE}},
            ],
        }),
    );
    let mut output = String::new();
    for (id, secret) in [
        ("leak-oai", openai_key),
        ("leak-gw", mock_asap::PRIVATE_KEY),
    ] {
        let out = protogate(home.path(), &["secrets", "set", id], secret, &[]);
        assert!(out.status.success(), "{}", text(&out));
        output.push_str(&text(&out));
    }
    let env = [("PROTOGATE_SECRET_LEAK_CLAUDE", anthropic_key)];

    let mut child = tokio::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(home.path().join("settings.json"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    output.push_str(&line);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();

    let client = reqwest::Client::new();
    let mut responses = String::new();
    let messages = json!([{"role": "user", "content": "hi"}]);
    for (path, body) in [
        ("/api/ai-gateway/stream", json!({"message": "hi"})),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "leak-claude/claude-test"}),
        ),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "leak-gw/claude-bedrock"}),
        ),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "leak-oai/reject-key"}),
        ),
        (
            "/api/ai-gateway/stream",
            json!({"message": "hi", "model": "leak-claude/overloaded"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "leak-claude/claude-test", "messages": messages}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "leak-gw/claude-bedrock", "stream": true, "messages": messages}),
        ),
        (
            "/v1/messages",
            json!({"model": "leak-oai/gpt-test", "max_tokens": 9, "messages": messages}),
        ),
        (
            "/v1/messages",
            json!({"model": "leak-claude/claude-test", "max_tokens": 9, "stream": true, "messages": messages}),
        ),
        (
            "/v1/messages",
            json!({"model": "leak-claude/rate-limited", "max_tokens": 9, "messages": messages}),
        ),
    ] {
        let res = client
            .post(format!("{url}{path}"))
            .header("origin", FRAMER_ORIGIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        responses.push_str(&format!("{:?}", res.headers()));
        responses.push_str(&res.text().await.unwrap());
    }
    for path in ["/health", "/v1/models"] {
        responses.push_str(
            &client
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    assert!(
        responses.contains("Hello world"),
        "the providers answered: {responses}"
    );
    assert!(
        responses.contains("rejected the API key"),
        "the bad key was tried"
    );
    assert_eq!(
        anthropic.keys()[0],
        anthropic_key,
        "the environment key reached Anthropic"
    );
    assert_eq!(asap.rejections(), Vec::<String>::new());
    assert_eq!(
        openai.authorizations()[0].as_deref(),
        Some(format!("Bearer {openai_key}").as_str())
    );

    for args in [
        &["check"][..],
        &["providers"][..],
        &["secrets", "status"][..],
    ] {
        output.push_str(&text(&protogate(home.path(), args, "", &env)));
    }
    let pid = child.id().unwrap().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let finished = child.wait_with_output().await.unwrap();
    output.push_str(&String::from_utf8_lossy(&finished.stderr));

    let mut files = String::new();
    for path in walk(home.path()) {
        files.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
    }
    assert!(
        files.contains("\"path\":\"/v1/messages\""),
        "the request log was written and read"
    );
    let pem_body = mock_asap::PRIVATE_KEY.lines().nth(1).unwrap();
    for (what, haystack) in [
        ("responses", &responses),
        ("stdout/stderr", &output),
        ("config and log files", &files),
    ] {
        for (name, secret) in [
            ("OpenAI key", openai_key),
            ("Anthropic key", anthropic_key),
            ("PEM line", pem_body),
            ("a JWT", "bearer ey"),
        ] {
            assert!(!haystack.contains(secret), "the {name} appears in {what}");
        }
        assert!(
            !haystack.contains("0123456789"),
            "part of a key appears in {what}"
        );
    }
    for id in ["leak-oai", "leak-gw"] {
        protogate(home.path(), &["secrets", "delete", id], "", &[]);
    }
}
