//! Team mode's shared state (issue #26): two real `protogate serve` processes sharing one
//! real `redis-server` (Debian's, started here on a free loopback port). Without the
//! binary the tests say so and pass; `scripts/install-deps.sh test` installs it.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::team::{RedisServer, Replica, ACCESS_TOKEN, PASSWORD};
use common::{binary, settings};
use serde_json::{json, Value};

/// Settings whose only provider, the demo, may take `per_minute` requests a minute (all
/// at once), with a queue that gives up after a second.
fn limited(per_minute: u32, prefix: &str) -> Value {
    settings(json!({
        "providers": [{"id": "demo", "kind": "demo", "chunk_delay_ms": 1,
            "limits": {"requests_per_minute": per_minute, "burst": per_minute,
                       "queue_timeout_ms": 1000}}],
        "redis": {"key_prefix": prefix},
    }))
}

#[tokio::test]
async fn a_provider_limit_holds_across_two_replicas_in_total() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let settings = limited(3, "limit-test");
    let a = Replica::start(&settings, &redis.url()).await;
    let b = Replica::start(&settings, &redis.url()).await;
    assert_eq!(a.redis_health("ok").await, "ok");
    assert_eq!(b.redis_health("ok").await, "ok");

    let mut served = vec![];
    for replica in [&a, &b, &a, &b, &a] {
        served.push(replica.chat().await);
    }
    let statuses: Vec<u16> = served.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "{served:?}");
    for (_, body) in &served[3..] {
        assert!(
            body.contains("demo's limit of 3 requests per minute: waited 1."),
            "queued, then refused: {body}"
        );
    }
    assert_eq!(redis.keys("limit-test:limit:*"), ["limit-test:limit:demo"]);

    for replica in [&a, &b] {
        let log = replica.log();
        let health = replica.health().await.to_string();
        for text in [log, health] {
            assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        }
    }
}

#[tokio::test]
async fn without_redis_chat_goes_on_with_local_limits_and_both_recover_by_themselves() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let settings = limited(600, "outage-test");
    let a = Replica::start(&settings, &redis.url()).await;
    let b = Replica::start(&settings, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;

    redis.kill();
    for replica in [&a, &b] {
        for _ in 0..3 {
            let (status, body) = replica.chat().await;
            assert_eq!(status, 200, "chat goes on without Redis: {body}");
        }
        let health = replica.redis_health("unreachable since ").await;
        assert!(health.ends_with('Z'), "a UTC time: {health}");
    }
    for replica in [&a, &b] {
        let log = replica.log();
        assert_eq!(
            log.matches("is unreachable").count(),
            1,
            "logged once per outage:\n{log}"
        );
    }

    redis.restart();
    for replica in [&a, &b] {
        replica.redis_health("ok").await;
        let (status, body) = replica.chat().await;
        assert_eq!(status, 200, "{body}");
        assert!(replica.log().contains("answers; limits are shared again"));
    }
    assert_eq!(
        redis.keys("outage-test:limit:*"),
        ["outage-test:limit:demo"],
        "the limit is kept in Redis again"
    );
}

/// `protogate --config SETTINGS members ARGS --redis URL`, as an admin runs it; its
/// standard output and error.
fn members(settings: &Path, redis: &str, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(binary())
        .arg("--config")
        .arg(settings)
        .arg("members")
        .args(args)
        .args(["--redis", redis])
        .env("PROTOGATE_REDIS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "members {args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Asks until `token` gets `status` from `replica`, for up to ten seconds; the last status.
async fn until_token_gets(replica: &Replica, token: &str, status: u16) -> u16 {
    let mut now = 0;
    for _ in 0..100 {
        now = replica.chat_as(Some(token)).await.0;
        if now == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    now
}

#[tokio::test]
async fn a_member_added_with_the_cli_works_on_both_replicas_and_a_revoked_one_on_neither() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let team = settings(
        json!({"require_access_token": true, "keychain_cache_ms": 200,
        "redis": {"key_prefix": "members-test"}}),
    );
    let a = Replica::start(&team, &redis.url()).await;
    let b = Replica::start(&team, &redis.url()).await;
    let admin = tempfile::tempdir().unwrap();
    let path = admin.path().join("settings.json");
    std::fs::write(&path, team.to_string()).unwrap();

    let (token, _) = members(&path, &redis.url(), &["add", "ana"]);
    let token = token.trim();
    assert!(token.starts_with("pgm_"), "{token}");
    for replica in [&a, &b] {
        assert_eq!(until_token_gets(replica, token, 200).await, 200);
        assert_eq!(replica.chat_as(Some("pgm_not-a-member")).await.0, 401);
    }
    let (list, _) = members(&path, &redis.url(), &["list"]);
    assert!(list.contains("ana"), "{list}");
    assert!(
        !list.contains(token),
        "a listing never shows a token: {list}"
    );

    members(&path, &redis.url(), &["revoke", "ana"]);
    for replica in [&a, &b] {
        assert_eq!(until_token_gets(replica, token, 401).await, 401);
        let (status, _) = replica.chat_as(Some(ACCESS_TOKEN)).await;
        assert_eq!(status, 200, "the access token keeps working");
    }
    let stored = redis.keys("members-test:*").join(" ");
    assert!(!stored.contains(token), "{stored}");

    // Without Redis nobody can tell who was revoked: member tokens are refused, the access
    // token still works.
    let (bo, _) = members(&path, &redis.url(), &["add", "bo"]);
    let bo = bo.trim();
    for replica in [&a, &b] {
        assert_eq!(until_token_gets(replica, bo, 200).await, 200);
    }
    redis.kill();
    for replica in [&a, &b] {
        let mut refused = 200;
        for _ in 0..100 {
            refused = replica.chat_as(Some(bo)).await.0;
            if refused != 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!([401, 503].contains(&refused), "{refused}");
        assert_eq!(replica.chat_as(Some(ACCESS_TOKEN)).await.0, 200);
    }
}
