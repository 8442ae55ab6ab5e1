//! Members in Redis, so every replica (and `protogate members --redis`) sees one list:
//! `<prefix>:members`, a hash of token hash (base64url) -> `{"name", "created"}`, and
//! `<prefix>:members:last_used`, token hash -> Unix seconds. Each change is one script,
//! atomic across replicas; a revocation reaches every gateway at its next refresh
//! (`keychain_cache_ms`). While Redis is unreachable a listing fails and the gateway
//! refuses member tokens (it cannot know who was revoked) until Redis answers again.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::members::{Member, MemberError, MemberStore, StoreFuture, TokenHash};
use crate::secrets::SecretStore;

/// Adds ARGV[2] under hash ARGV[1] unless a member is named ARGV[3]: 1 added, 0 taken.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, stored in ipairs(redis.call('HVALS', KEYS[1])) do
  if cjson.decode(stored).name == ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
",
    )
});

/// Removes the member named ARGV[1] and its last-used time: 1 removed, 0 none.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).name == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('HDEL', KEYS[2], all[i])
    return 1
  end
end
return 0
",
    )
});

/// ARGV: hash, time, hash, time...: notes each time for a member still there, never
/// replacing a newer one.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    local known = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
    if tonumber(ARGV[i + 1]) > known then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  end
end
return 0
",
    )
});

/// Both hashes as one pipelined read gives them: members by token hash, and last uses.
type Listed = (Vec<(String, String)>, HashMap<String, u64>);

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    created: u64,
}

/// The Redis-backed [`MemberStore`], connecting on first use.
pub struct RedisMembers {
    url: String,
    members_key: String,
    last_used_key: String,
    secrets: SecretStore,
    connection: OnceCell<ConnectionManager>,
}

impl RedisMembers {
    pub fn new(url: &str, prefix: &str, secrets: &SecretStore) -> Self {
        RedisMembers {
            url: url.to_string(),
            members_key: format!("{prefix}:members"),
            last_used_key: format!("{prefix}:members:last_used"),
            secrets: secrets.clone(),
            connection: OnceCell::new(),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, MemberError> {
        let connection = self
            .connection
            .get_or_try_init(|| super::connect(&self.url, &self.secrets))
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(connection.clone())
    }

    /// The error as a person reads it: where Redis is, what went wrong, no secret.
    fn failed(&self, error: &redis::RedisError) -> MemberError {
        use super::KindText;
        MemberError::Backend(format!(
            "Redis at {} did not answer ({})",
            self.url,
            error.kind_text()
        ))
    }
}

impl MemberStore for RedisMembers {
    fn add(&self, member: Member) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let stored = Stored {
                name: member.name.clone(),
                created: member.created,
            };
            let json = serde_json::to_string(&stored).expect("a member serializes");
            let mut invocation = ADD.key(&self.members_key);
            invocation
                .arg(member.hash.encode())
                .arg(json)
                .arg(&member.name);
            let added: u8 = invocation
                .invoke_async(&mut self.connection().await?)
                .await
                .map_err(|e| self.failed(&e))?;
            match added {
                1 => Ok(()),
                _ => Err(MemberError::Exists(member.name)),
            }
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Member>> {
        Box::pin(async move {
            let mut connection = self.connection().await?;
            let (stored, last_used): Listed = redis::pipe()
                .hgetall(&self.members_key)
                .hgetall(&self.last_used_key)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.failed(&e))?;
            stored
                .into_iter()
                .map(|(hash, json)| {
                    let corrupt = || MemberError::Corrupt(format!("{} in Redis", self.members_key));
                    let stored: Stored = serde_json::from_str(&json).map_err(|_| corrupt())?;
                    let last_used = last_used.get(&hash).copied();
                    Ok(Member {
                        name: stored.name,
                        hash: TokenHash::decode(&hash).ok_or_else(corrupt)?,
                        created: stored.created,
                        last_used,
                    })
                })
                .collect()
        })
    }

    fn revoke<'a>(&'a self, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut invocation = REVOKE.key(&self.members_key);
            invocation.key(&self.last_used_key).arg(name);
            let removed: u8 = invocation
                .invoke_async(&mut self.connection().await?)
                .await
                .map_err(|e| self.failed(&e))?;
            Ok(removed == 1)
        })
    }

    fn touch(&self, used: Vec<(TokenHash, u64)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if used.is_empty() {
                return Ok(());
            }
            let mut invocation = TOUCH.key(&self.members_key);
            invocation.key(&self.last_used_key);
            for (hash, at) in used {
                invocation.arg(hash.encode()).arg(at);
            }
            invocation
                .invoke_async::<()>(&mut self.connection().await?)
                .await
                .map_err(|e| self.failed(&e))
        })
    }

    fn verify<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let hash = TokenHash::of(token).encode();
            let json: Option<String> = self
                .connection()
                .await?
                .hget(&self.members_key, hash)
                .await
                .map_err(|e| self.failed(&e))?;
            Ok(json
                .and_then(|j| serde_json::from_str::<Stored>(&j).ok())
                .map(|s| s.name))
        })
    }
}
