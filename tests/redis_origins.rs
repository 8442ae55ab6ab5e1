//! Team mode, continued (issue #26): origins approved for the whole team, the per-origin
//! limit shared by every replica, `/readyz` while Redis is away, and a member named in
//! every record (WebSocket chats included), in `/metrics` and in the usage summary. Two
//! real `protogate serve` processes on one real `redis-server`; without Debian's
//! `redis-server` the tests say so and pass.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::team::{RedisServer, Replica, ACCESS_TOKEN, PASSWORD};
use common::{binary, settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const SITE: &str = "https://coffee-shop.framer.app";
/// Allowed by default (a local dev server).
const LOCAL_DEV: &str = "http://localhost:3000";

/// `protogate --config SETTINGS COMMAND ARGS --redis URL`, as an admin runs it.
fn protogate(settings: &Path, redis: &str, command: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .arg("--config")
        .arg(settings)
        .arg(command)
        .args(args)
        .args(["--redis", redis])
        .env("PROTOGATE_REDIS_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

/// [`protogate`], which must succeed; its standard output.
fn admin(settings: &Path, redis: &str, command: &str, args: &[&str]) -> String {
    let out = protogate(settings, redis, command, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{command} {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The admin's own copy of the team's settings.
fn admin_settings(team: &Value) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, team.to_string()).unwrap();
    (dir, path)
}

/// A chat completion from a page on `origin`, with `token` if any; status and body.
async fn chat_from(replica: &Replica, origin: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", replica.url))
        .header("origin", origin)
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let res = request.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Asks until a page on `origin` gets `status` from `replica`, for up to ten seconds;
/// the last status and how long it took.
async fn until_origin_gets(replica: &Replica, origin: &str, status: u16) -> (u16, Duration) {
    let start = Instant::now();
    let mut now = 0;
    for _ in 0..100 {
        now = chat_from(replica, origin, None).await.0;
        if now == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (now, start.elapsed())
}

#[tokio::test]
async fn an_origin_approved_with_the_cli_is_allowed_on_both_replicas_until_removed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let team = settings(json!({"redis": {"key_prefix": "origins-test"}}));
    let a = Replica::start(&team, &redis.url()).await;
    let b = Replica::start(&team, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;
    let (_dir, path) = admin_settings(&team);

    let (status, body) = chat_from(&b, SITE, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("protogate origins add"), "{body}");

    let added = admin(
        &path,
        &redis.url(),
        "origins",
        &["add", &format!("{SITE}/")],
    );
    assert!(added.contains("within 2 s"), "{added}");
    for replica in [&b, &a] {
        let (status, took) = until_origin_gets(replica, SITE, 200).await;
        assert_eq!(status, 200, "approved on every replica");
        eprintln!("approval seen after {took:?}");
    }
    assert_eq!(redis.keys("origins-test:origins"), ["origins-test:origins"]);
    let list = admin(&path, &redis.url(), "origins", &["list"]);
    assert!(
        list.contains(&format!("{SITE}  (team, in Redis)")),
        "{list}"
    );
    assert!(list.contains("https://framer.com  (settings)"), "{list}");

    admin(&path, &redis.url(), "origins", &["remove", SITE]);
    for replica in [&a, &b] {
        assert_eq!(until_origin_gets(replica, SITE, 403).await.0, 403);
    }

    let out = protogate(
        &path,
        &redis.url(),
        "origins",
        &["add", "coffee-shop.framer.app"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not an origin"),
        "{stderr}"
    );
    let out = protogate(&path, &redis.url(), "origins", &["remove", SITE]);
    assert!(!out.status.success(), "removing what is not there says so");
}

#[test]
fn without_redis_the_cli_edits_the_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, settings(json!({})).to_string()).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(binary())
            .arg("--config")
            .arg(&path)
            .arg("origins")
            .args(args)
            .env_remove("PROTOGATE_REDIS_URL")
            .output()
            .unwrap()
    };
    assert!(run(&["add", SITE]).status.success());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let origins = saved["cors"]["allowed_origins"].as_array().unwrap();
    assert!(origins.contains(&json!(SITE)), "{saved}");
    let list = String::from_utf8_lossy(&run(&["list"]).stdout).into_owned();
    assert!(list.lines().any(|l| l == SITE), "{list}");
    assert!(run(&["remove", SITE]).status.success());
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(!saved.contains(SITE), "{saved}");
}

#[tokio::test]
async fn a_per_origin_limit_holds_across_two_replicas_in_total() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let team = settings(json!({
        "limits": {"requests_per_minute": 3, "burst": 3},
        "redis": {"key_prefix": "olimit-test"},
    }));
    let a = Replica::start(&team, &redis.url()).await;
    let b = Replica::start(&team, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;

    let mut statuses = vec![];
    for replica in [&a, &b, &a, &b, &a] {
        statuses.push(chat_from(replica, LOCAL_DEV, None).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes, [200, 200, 200, 429, 429], "{statuses:?}");
    assert_eq!(
        chat_from(&b, "http://localhost:4000", None).await.0,
        200,
        "each origin has its own budget"
    );
    // `/health` without an `Origin` counts against the budget of "no origin", the "" key.
    let mut keys = redis.keys("olimit-test:origin-limit:http*");
    keys.sort();
    assert_eq!(
        keys,
        [
            "olimit-test:origin-limit:http://localhost:3000",
            "olimit-test:origin-limit:http://localhost:4000"
        ]
    );
}

/// `GET path` on `replica`: status and body.
async fn probe(replica: &Replica, path: &str) -> (u16, String) {
    let res = reqwest::get(format!("{}{path}", replica.url))
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn without_redis_readyz_says_why_livez_stays_up_and_chat_goes_on() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let team = settings(json!({"redis": {"key_prefix": "ready-test"}}));
    let a = Replica::start(&team, &redis.url()).await;
    a.redis_health("ok").await;
    assert_eq!(probe(&a, "/readyz").await.0, 200);

    redis.kill();
    let mut answer = (0, String::new());
    for _ in 0..100 {
        answer = probe(&a, "/readyz").await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answer;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("Redis does not answer (unreachable since "),
        "{body}"
    );
    assert!(
        !body.contains("127.0.0.1"),
        "no address to strangers: {body}"
    );
    assert_eq!(probe(&a, "/livez").await.0, 200);
    let (status, body) = chat_from(&a, LOCAL_DEV, None).await;
    assert_eq!(status, 200, "chat goes on with local limits: {body}");

    redis.restart();
    a.redis_health("ok").await;
    assert_eq!(probe(&a, "/readyz").await.0, 200);
}

/// One chat on `/ws/chat` with `token` in the URL, read to its `done` frame.
async fn ws_chat(replica: &Replica, token: &str) {
    let url = format!(
        "{}/ws/chat?token={token}",
        replica.url.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_static(LOCAL_DEV));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let chat = json!({"type": "chat", "id": "m1", "message": "hi"});
    socket.send(Message::text(chat.to_string())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(frame["type"], "error", "{frame}");
            if frame["type"] == "done" {
                break;
            }
        }
    }
    let _ = socket.close(None).await;
}

/// The records in the log files under `dir`.
fn records_in(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_member_is_named_in_websocket_records_in_metrics_and_in_usage() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let team = settings(json!({
        "require_access_token": true,
        "keychain_cache_ms": 200,
        "metrics": {"enabled": true},
        "log": {"dir": logs.path()},
        "redis": {"key_prefix": "member-test"},
    }));
    // `/health` wants the token here: the member's first answer says Redis is there.
    let a = Replica::start(&team, &redis.url()).await;
    let (_dir, path) = admin_settings(&team);
    let token = admin(&path, &redis.url(), "members", &["add", "ana"]);
    let token = token.trim();

    let mut status = 0;
    for _ in 0..100 {
        status = chat_from(&a, LOCAL_DEV, Some(token)).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the member's token works");
    ws_chat(&a, token).await;
    assert_eq!(chat_from(&a, LOCAL_DEV, Some(ACCESS_TOKEN)).await.0, 200);

    let mut ws_records = vec![];
    for _ in 0..100 {
        ws_records = records_in(logs.path())
            .into_iter()
            .filter(|r| r["path"] == "/ws/chat" && r["method"] == "WS")
            .collect();
        if !ws_records.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ws_records.len(), 1, "{ws_records:?}");
    assert_eq!(ws_records[0]["member"], "ana", "{}", ws_records[0]);
    assert_eq!(ws_records[0]["status"], 200, "{}", ws_records[0]);

    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", a.url))
        .bearer_auth(ACCESS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ana = "protogate_requests_total{route=\"/v1/chat/completions\",provider=\"demo\",model=\"protogate-demo\",status=\"200\",member=\"ana\"} 1";
    assert!(metrics.contains(ana), "{metrics}");
    let ws = metrics
        .lines()
        .filter(|l| l.starts_with("protogate_requests_total{route=\"/ws/chat\""))
        .find(|l| l.contains("status=\"200\""));
    assert!(
        ws.is_some_and(|l| l.ends_with(",member=\"ana\"} 1")),
        "{metrics}"
    );
    assert!(!metrics.contains(token), "no token in the metrics");

    let usage = std::process::Command::new(binary())
        .arg("--config")
        .arg(&path)
        .arg("usage")
        .output()
        .unwrap();
    let usage = String::from_utf8_lossy(&usage.stdout).into_owned();
    let table = usage.split("\nmember ").nth(1).unwrap_or_default();
    let rows: Vec<&str> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let ana: Vec<&str> = rows
        .first()
        .copied()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        ana.get(..2),
        Some(&["ana", "2"][..]),
        "ana's two chats:\n{usage}"
    );
    assert_eq!(
        rows.len(),
        1,
        "the access token's request has no member:\n{usage}"
    );
}

/// Asks (without an `Origin`, as a script does) until `token` is known on `replica`, for
/// up to ten seconds; a 401 spends no budget.
async fn until_member_known(replica: &Replica, token: &str) {
    for _ in 0..100 {
        match replica.chat_as(Some(token)).await.0 {
            401 => tokio::time::sleep(Duration::from_millis(100)).await,
            status => return assert_eq!(status, 200),
        }
    }
    panic!("the member's token never worked");
}

#[tokio::test]
async fn without_an_origin_each_member_spends_a_budget_of_their_own() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let team = settings(json!({
        "require_access_token": true,
        "keychain_cache_ms": 200,
        "limits": {"requests_per_minute": 3, "burst": 3},
        "redis": {"key_prefix": "member-limit-test"},
    }));
    let a = Replica::start(&team, &redis.url()).await;
    let b = Replica::start(&team, &redis.url()).await;
    let (_dir, path) = admin_settings(&team);
    let ana = admin(&path, &redis.url(), "members", &["add", "ana"]);
    let ben = admin(&path, &redis.url(), "members", &["add", "ben"]);
    let (ana, ben) = (ana.trim(), ben.trim());

    until_member_known(&a, ana).await;
    let mut codes = vec![];
    for replica in [&b, &a, &b] {
        codes.push(replica.chat_as(Some(ana)).await.0);
    }
    assert_eq!(
        codes,
        [200, 200, 429],
        "ana's script: three a minute in all"
    );
    until_member_known(&b, ben).await;
    assert_eq!(a.chat_as(Some(ben)).await.0, 200, "ben's budget is his own");
    let mut keys = redis.keys("member-limit-test:origin-limit:member:*");
    keys.sort();
    assert_eq!(
        keys,
        [
            "member-limit-test:origin-limit:member:ana",
            "member-limit-test:origin-limit:member:ben"
        ]
    );
}
