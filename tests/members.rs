//! Members: `protogate members` against a real Secret Service (started by
//! `scripts/test.sh`), a real `protogate serve` checking their tokens, and a gateway whose
//! members come from the environment.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use protogate::members::{TokenHash, MEMBERS_ACCOUNT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The keychain's member entries are one per session: these tests take turns.
static KEYCHAIN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ACCESS_TOKEN: &str = "pg_access-token-members-test-0123456789";

/// `protogate --config <home>/settings.json <args>`, in `home`.
fn protogate(home: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--config")
        .arg(home.join("settings.json"))
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn all(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// Removes the member entries from the test keychain, as if never used.
fn clear_keychain() {
    for account in [MEMBERS_ACCOUNT, protogate::members::LAST_USED_ACCOUNT] {
        Command::new("secret-tool")
            .args(["clear", "service", "protogate", "username", account])
            .status()
            .expect("secret-tool is installed by scripts/install-deps.sh test");
    }
}

fn keychain_entry(account: &str) -> String {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "protogate", "username", account])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn post(url: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("origin", FRAMER_ORIGIN)
        .json(&json!({"message": "hi"}));
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The lines of every log file under `dir` that are records of requests to `path`.
fn records_in(dir: &Path) -> Vec<Value> {
    walk(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains("logs"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_token_works_names_its_member_and_stops_working_when_revoked() {
    require_secret_service();
    let _turn = KEYCHAIN.lock().await;
    clear_keychain();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let refresh_ms = 1000;
    std::fs::write(
        home.join("settings.json"),
        settings(json!({"require_access_token": true, "keychain_cache_ms": refresh_ms}))
            .to_string(),
    )
    .unwrap();
    let mut seen = String::new();

    let out = protogate(home, &["members", "list"]);
    assert!(out.status.success(), "{}", all(&out));
    assert!(stdout(&out).contains("No members yet"), "{}", all(&out));

    // Added: the token is printed once, alone on stdout; the keychain has only its hash.
    let out = protogate(home, &["members", "add", "ana@example.com"]);
    assert!(out.status.success(), "{}", all(&out));
    let token = stdout(&out).trim().to_string();
    assert!(
        token.starts_with("pgm_") && token.len() >= 4 + 22,
        "{token}"
    );
    assert!(all(&out).contains("shown only this once"), "{}", all(&out));
    let hash = TokenHash::of(&token).encode();
    let stored = keychain_entry(MEMBERS_ACCOUNT);
    assert!(
        stored.contains("ana@example.com") && stored.contains(&hash),
        "{stored}"
    );
    assert!(!stored.contains(&token), "the keychain keeps no token");
    seen.push_str(&String::from_utf8_lossy(&out.stderr));

    let out = protogate(home, &["members", "add", "ana@example.com"]);
    assert!(!out.status.success());
    assert!(all(&out).contains("already exists"), "{}", all(&out));
    assert!(!stdout(&out).contains("pgm_"), "no second token is printed");
    let out = protogate(home, &["members", "add", "two words"]);
    assert!(
        !out.status.success() && all(&out).contains("is not a member name"),
        "{}",
        all(&out)
    );
    let out = protogate(home, &["members", "add", "bo"]);
    assert!(out.status.success(), "{}", all(&out));
    let bo_token = stdout(&out).trim().to_string();

    let out = protogate(home, &["members", "list"]);
    let list = stdout(&out);
    seen.push_str(&all(&out));
    let ana_line = list
        .lines()
        .find(|l| l.starts_with("ana@example.com"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        list.starts_with("NAME") && list.contains("LAST USED"),
        "{list}"
    );
    assert!(ana_line.ends_with("never"), "{ana_line}");
    assert!(ana_line.contains("Z "), "created, in RFC 3339: {ana_line}");

    // A real gateway, the access token from the environment, members from the keychain.
    let mut child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(home.join("settings.json"))
        .args(["serve", "--port", "0"])
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN", ACCESS_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the gateway starts")
        .unwrap()
        .unwrap();
    seen.push_str(&line);
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let stream = format!("{base}/api/ai-gateway/stream");

    let bearer = format!("Bearer {token}");
    let (status, body) = post(&stream, Some(("authorization", &bearer))).await;
    assert_eq!(status, 200, "{body}");
    assert!(seed_text(&body).contains("[Protogate demo]"), "{body}");
    let (status, _) = post(&stream, Some(("x-api-key", &bo_token))).await;
    assert_eq!(status, 200, "X-API-Key works for members too");
    let access = format!("Bearer {ACCESS_TOKEN}");
    let (status, _) = post(&stream, Some(("authorization", &access))).await;
    assert_eq!(status, 200, "the access token keeps working beside members");
    for wrong in ["Bearer pgm_notAMemberToken0123456789", "Bearer pg_wrong"] {
        let (status, body) = post(&stream, Some(("authorization", wrong))).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("access token is wrong"), "{body}");
    }
    let (status, body) = post(&stream, None).await;
    assert!(
        status == 401 && body.contains("access token missing"),
        "{body}"
    );

    // Each request's record names its member; the access token's names none.
    let logs = home.join("data");
    let named = eventually(Duration::from_secs(10), async || {
        let records = records_in(&logs);
        let members: Vec<Option<&str>> = records
            .iter()
            .filter(|r| r["status"] == 200)
            .map(|r| r.get("member").and_then(Value::as_str))
            .collect();
        members == [Some("ana@example.com"), Some("bo"), None]
    })
    .await;
    assert!(named, "{:#?}", records_in(&logs));

    // The gateway notes the use (at most once a minute); `list` shows it.
    let used = eventually(Duration::from_secs(10), async || {
        let list = stdout(&protogate(home, &["members", "list"]));
        list.lines()
            .any(|l| l.starts_with("ana@example.com") && !l.ends_with("never"))
    })
    .await;
    let out = protogate(home, &["members", "list"]);
    seen.push_str(&all(&out));
    assert!(used, "{}", all(&out));

    // Revoked: refused within the refresh interval; bo and the access token still work.
    let out = protogate(home, &["members", "revoke", "ana@example.com"]);
    assert!(out.status.success(), "{}", all(&out));
    assert!(all(&out).contains("within 1 s"), "{}", all(&out));
    let refused = eventually(Duration::from_millis(3 * refresh_ms), async || {
        post(&stream, Some(("authorization", &bearer))).await.0 == 401
    })
    .await;
    assert!(refused, "a revoked token is refused within the interval");
    let (status, body) = post(&stream, Some(("authorization", &bearer))).await;
    assert!(
        status == 401 && body.contains("access token is wrong"),
        "{body}"
    );
    assert_eq!(post(&stream, Some(("x-api-key", &bo_token))).await.0, 200);
    assert_eq!(post(&stream, Some(("authorization", &access))).await.0, 200);
    let out = protogate(home, &["members", "revoke", "ana@example.com"]);
    assert!(
        !out.status.success()
            && all(&out).contains("no member named 'ana@example.com'; members: bo"),
        "{}",
        all(&out)
    );
    let out = protogate(home, &["members", "list"]);
    assert!(!stdout(&out).contains("ana@example.com"), "{}", all(&out));
    assert!(
        !keychain_entry(protogate::members::LAST_USED_ACCOUNT).contains(&hash),
        "a revoked member's last-used time goes with it"
    );

    child.start_kill().unwrap();
    let _ = child.wait().await;
    seen.push_str(&stderr.await.unwrap());
    for file in walk(home) {
        seen.push_str(&String::from_utf8_lossy(&std::fs::read(file).unwrap()));
    }
    let bo_hash = TokenHash::of(&bo_token).encode();
    for (what, secret) in [
        ("ana's token", token.as_str()),
        ("bo's token", bo_token.as_str()),
        ("ana's hash", hash.as_str()),
        ("bo's hash", bo_hash.as_str()),
        ("the access token", ACCESS_TOKEN),
    ] {
        assert!(
            !seen.contains(secret),
            "{what} appears in output, logs or files"
        );
    }
    assert!(
        seen.contains("\"member\":\"bo\""),
        "the search did read the log files"
    );
    clear_keychain();
}

/// Members given as `PROTOGATE_SECRET_PROTOGATE_MEMBERS` (a headless machine without a
/// keychain): with no access token set (the keychain has none), members alone open a
/// gateway serving beyond loopback.
#[tokio::test]
async fn members_alone_open_a_gateway_that_requires_a_token() {
    require_secret_service();
    let _turn = KEYCHAIN.lock().await;
    let (token, hash) = protogate::members::new_token().unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&token).to_string();
    let list =
        json!({"members": [{"name": "ci-bot", "hash": hash.encode(), "created": 1_700_000_000}]});
    let var = protogate::secrets::env_var_name(MEMBERS_ACCOUNT);
    let gw = spawn_gateway_env(
        settings(json!({"host": "0.0.0.0", "require_access_token": true})),
        &[(var.as_str(), &list.to_string())],
    )
    .await;
    let port = gw.addr.port();
    let url = format!("http://127.0.0.1:{port}/api/ai-gateway/stream");

    let (status, body) = post(&url, Some(("authorization", &format!("Bearer {token}")))).await;
    assert_eq!(status, 200, "{body}");
    let record = gw.record_for("/api/ai-gateway/stream", "POST").await;
    assert_eq!(record.member.as_deref(), Some("ci-bot"));

    let (status, body) = post(&url, Some(("authorization", "Bearer pg_guess"))).await;
    assert!(
        status == 401 && body.contains("access token is wrong"),
        "{body}"
    );
    // A WebSocket carries it in the URL or as a subprotocol, as it does the access token.
    let ws = format!("ws://127.0.0.1:{port}/ws/chat");
    for (url, protocols) in [
        (format!("{ws}?token={token}"), None),
        (ws.clone(), Some(format!("protogate, {token}"))),
    ] {
        let mut request = url.into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", FRAMER_ORIGIN.parse().unwrap());
        if let Some(protocols) = protocols {
            headers.insert("sec-websocket-protocol", protocols.parse().unwrap());
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        drop(socket);
    }
    let refused = tokio_tungstenite::connect_async(format!("{ws}?token=pgm_wrong")).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    let refused = gw.record_for("/ws/chat", "GET").await;
    assert_eq!((refused.status, refused.member), (401, None));
    let upgrades: Vec<_> = gw
        .log
        .recent()
        .into_iter()
        .filter(|r| r.path == "/ws/chat" && r.status == 101)
        .map(|r| r.member)
        .collect();
    assert_eq!(
        upgrades,
        [Some("ci-bot".to_string()), Some("ci-bot".to_string())]
    );

    let text = gw.log_files_text().await;
    assert!(text.contains("\"member\":\"ci-bot\""), "{text}");
    assert!(!text.contains(&token) && !text.contains(&hash.encode()));
}

/// No access token in the keychain and no member: the refusal says how to let someone in.
#[tokio::test]
async fn with_nobody_to_let_in_the_refusal_says_how_to_add_someone() {
    require_secret_service();
    let _turn = KEYCHAIN.lock().await;
    let var = protogate::secrets::env_var_name(MEMBERS_ACCOUNT);
    let empty = json!({"members": []}).to_string();
    let gw = spawn_gateway_env(
        settings(json!({"require_access_token": true})),
        &[(var.as_str(), &empty)],
    )
    .await;
    for token in ["pgm_notAMember0123456789", "pg_anything"] {
        let (status, body) = post(
            &gw.url("/api/ai-gateway/stream"),
            Some(("x-api-key", token)),
        )
        .await;
        assert!(
            status == 401 && body.contains("none is set") && body.contains("protogate members add"),
            "{body}"
        );
    }
}
