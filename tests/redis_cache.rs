//! Team mode's shared response cache (issue #26): two real `protogate serve` replicas in
//! front of one mock OpenAI upstream (which counts the calls it gets), sharing one real
//! `redis-server`. An answer one replica fetched is a hit on the other; without Redis each
//! replica's own cache goes on; when Redis is back the sharing resumes. Without the
//! binary the tests say so and pass; `scripts/install-deps.sh test` installs it.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::mock_openai::MockOpenAi;
use common::settings;
use common::team::{RedisServer, Replica, PASSWORD};
use serde_json::{json, Value};

/// Both replicas' settings: the mock as the only provider, the cache on.
fn cached(mock: &MockOpenAi, prefix: &str) -> Value {
    settings(json!({
        "default_provider": "openai",
        "providers": [{"id": "openai", "kind": "openai", "base_url": mock.base_url,
                       "default_model": "gpt-test"}],
        "cache": {"enabled": true},
        "redis": {"key_prefix": prefix},
    }))
}

/// What a client got: the `X-Protogate-Cache` header and the body.
#[derive(Debug, PartialEq)]
struct Got {
    cache: String,
    body: String,
}

/// Asks `replica` on `path` (the seed route, or OpenAI's chat completions, streamed or
/// not) to answer `message`.
async fn ask(replica: &Replica, path: &str, message: &str, stream: bool) -> Got {
    let body = match path {
        "/api/ai-gateway/stream" => json!({"message": message}),
        _ => json!({"model": "openai/gpt-test", "stream": stream,
                    "messages": [{"role": "user", "content": message}]}),
    };
    let res = reqwest::Client::new()
        .post(format!("{}{path}", replica.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path} {message:?}");
    let cache = res
        .headers()
        .get("x-protogate-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Got {
        cache,
        body: res.text().await.unwrap(),
    }
}

/// Waits (up to five seconds) until Redis holds `n` keys under `pattern`; the keys.
fn until_keys(redis: &RedisServer, pattern: &str, n: usize) -> Vec<String> {
    let mut keys = vec![];
    for _ in 0..100 {
        keys = redis.keys(pattern);
        if keys.len() >= n {
            return keys;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("Redis never held {n} keys under {pattern}: {keys:?}");
}

/// The three shapes an answer is kept in: the seed route's stream (replayed from events),
/// an OpenAI stream passed through (replayed from the upstream's own bytes), and an
/// OpenAI whole answer.
const SHAPES: [(&str, bool); 3] = [
    ("/api/ai-gateway/stream", true),
    ("/v1/chat/completions", true),
    ("/v1/chat/completions", false),
];

#[tokio::test]
async fn an_answer_fetched_on_one_replica_is_a_hit_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mock = MockOpenAi::start().await;
    let settings = cached(&mock, "cache-test");
    let a = Replica::start(&settings, &redis.url()).await;
    let b = Replica::start(&settings, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;

    for (i, (path, stream)) in SHAPES.into_iter().enumerate() {
        let first = ask(&a, path, "Say hello", stream).await;
        assert_eq!(first.cache, "miss", "{path} stream={stream}");
        until_keys(&redis, "cache-test:cache:*", i + 1);
        let second = ask(&b, path, "Say hello", stream).await;
        assert_eq!(second.cache, "hit", "{path} stream={stream}: from Redis");
        assert_eq!(second.body, first.body, "the same events, the same bytes");
        assert!(first.body.contains("Hello"), "{}", first.body);
        assert_eq!(mock.bodies().len(), i + 1, "B did not call the upstream");
        let again = ask(&b, path, "Say hello", stream).await;
        assert_eq!(again, second, "now from B's own memory");
    }

    let keys = redis.keys("cache-test:cache:*");
    for key in &keys {
        let hash = key.strip_prefix("cache-test:cache:").unwrap();
        assert!(
            hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
            "a key is the request's hash, not its text: {key}"
        );
    }
    for replica in [&a, &b] {
        let log = replica.log();
        assert!(!log.contains(PASSWORD), "the password leaked: {log}");
    }
}

#[tokio::test]
async fn without_redis_each_replica_caches_alone_and_sharing_resumes_when_it_returns() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let mock = MockOpenAi::start().await;
    let settings = cached(&mock, "cache-outage");
    let a = Replica::start(&settings, &redis.url()).await;
    let b = Replica::start(&settings, &redis.url()).await;
    a.redis_health("ok").await;
    b.redis_health("ok").await;

    redis.kill();
    let mut calls = 0;
    for replica in [&a, &b] {
        for (path, stream) in SHAPES {
            let first = ask(replica, path, "While Redis is down", stream).await;
            assert_eq!(first.cache, "miss", "{path} stream={stream}");
            calls += 1;
            let second = ask(replica, path, "While Redis is down", stream).await;
            assert_eq!(second.cache, "hit", "this replica's own memory");
            assert_eq!(second.body, first.body);
        }
        assert_eq!(
            mock.bodies().len(),
            calls,
            "each replica asked once per shape"
        );
        replica.redis_health("unreachable since ").await;
        let log = replica.log();
        assert_eq!(
            log.matches("is unreachable").count(),
            1,
            "logged once per outage:\n{log}"
        );
    }

    redis.restart();
    a.redis_health("ok").await;
    b.redis_health("ok").await;
    for (i, (path, stream)) in SHAPES.into_iter().enumerate() {
        let first = ask(&a, path, "After Redis came back", stream).await;
        assert_eq!(first.cache, "miss");
        until_keys(&redis, "cache-outage:cache:*", i + 1);
        let second = ask(&b, path, "After Redis came back", stream).await;
        assert_eq!(second.cache, "hit", "{path} stream={stream}: shared again");
        assert_eq!(second.body, first.body);
    }
    assert_eq!(mock.bodies().len(), calls + SHAPES.len());
}
