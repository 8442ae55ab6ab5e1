//! Team mode: answers shared by every replica through Redis, as a second level behind
//! this process's memory. A local miss asks Redis once (`GET <prefix>:cache:<hex key>`);
//! an answer found there is kept here too and served as a hit. A finished upstream answer
//! is written there (`SET … PX ttl`) by a task of its own, never delaying its client.
//!
//! The value is the answer as stored, in the versioned binary form of `form.rs`; one this
//! replica cannot read is a miss. The key is the request's hash, so neither holds a secret
//! or a prompt. Redis unreachable means local misses, nothing more (`Redis::failed` logs
//! the outage once).

use std::sync::Arc;

use super::form::{decode, encode};
use super::key::Key;
use super::store::Answer;
use crate::team::Redis;

/// The answer other replicas stored for `key`, if Redis has one and answers.
pub async fn fetch(redis: &Redis, key: &Key) -> Option<Answer> {
    let mut connection = redis.connection()?;
    let found = redis::cmd("GET")
        .arg(redis.key("cache", &hex(key)))
        .query_async::<Option<Vec<u8>>>(&mut connection)
        .await;
    match found {
        Ok(value) => decode(&value?),
        Err(e) => {
            redis.failed(&e);
            None
        }
    }
}

/// Writes `answer` for every replica, for `ttl_s`, in the background; an answer over
/// `max_bytes` stays local (others would not keep it either).
pub fn publish(redis: &Arc<Redis>, key: Key, answer: Arc<Answer>, ttl_s: u64, max_bytes: u64) {
    if answer.size() as u64 > max_bytes {
        return;
    }
    let Some(mut connection) = redis.connection() else {
        return;
    };
    let redis = redis.clone();
    tokio::spawn(async move {
        let written = redis::cmd("SET")
            .arg(redis.key("cache", &hex(&key)))
            .arg(encode(&answer))
            .arg("PX")
            .arg(ttl_s.saturating_mul(1000))
            .query_async::<()>(&mut connection)
            .await;
        if let Err(e) = written {
            redis.failed(&e);
        }
    });
}

fn hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redis_key_is_the_hash_in_hex() {
        let mut key = [0u8; 32];
        key[0] = 0xab;
        key[31] = 0x01;
        let hex = hex(&key);
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00") && hex.ends_with("01"));
    }
}
