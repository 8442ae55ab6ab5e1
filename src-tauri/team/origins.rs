//! Origins approved for the whole team: `<prefix>:origins`, a Redis set of origin
//! patterns (as in `cors.allowed_origins`), which `protogate origins add` writes and
//! every replica reads back every [`REFRESH_EVERY`], beside its settings' own list.
//!
//! The guard never waits on Redis: it asks the copy in memory ([`Redis::approves`]),
//! one atomic load, and only for an origin the settings refuse. While Redis is
//! unreachable a replica keeps the list it last read: what was approved stays approved,
//! and a removal reaches it when Redis returns.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError};
use tokio::sync::OnceCell;

use super::{KindText, Redis};
use crate::config::{OriginPattern, OriginPolicy};
use crate::secrets::SecretStore;

/// How often a replica reads the team's list: an approval applies everywhere within
/// this (plus one Redis round trip).
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// Until the first read succeeds.
const FIRST_READ_EVERY: Duration = Duration::from_millis(100);

/// The team's list as this replica last read it.
pub(super) struct Approved {
    policy: ArcSwap<OriginPolicy>,
    /// The set as stored, to rebuild the policy (and say so) only when it changes.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Default for Approved {
    fn default() -> Self {
        Approved {
            policy: ArcSwap::from_pointee(OriginPolicy::list(vec![])),
            seen: Default::default(),
        }
    }
}

impl Redis {
    /// Whether the team approved `origin` (`protogate origins add`), as last read.
    pub fn approves(&self, origin: &str) -> bool {
        self.approved.policy.load().allows(origin)
    }

    fn origins_key(&self) -> String {
        origins_key(&self.prefix)
    }

    /// Reads the team's list once; the connection's error, if Redis did not answer.
    async fn refresh_origins(&self, connection: &mut ConnectionManager) -> Result<(), RedisError> {
        let mut stored: Vec<String> = connection.smembers(self.origins_key()).await?;
        stored.sort();
        let mut seen = self.approved.seen.lock().expect("approved origins lock");
        if *seen == stored {
            return Ok(());
        }
        let mut patterns = Vec::with_capacity(stored.len());
        for origin in &stored {
            match OriginPattern::parse(origin) {
                Ok(p) => patterns.push(p),
                Err(why) => tracing::warn!("{} in Redis: skipped {why}", self.origins_key()),
            }
        }
        tracing::info!(
            "{} origin(s) approved for the team (in Redis)",
            patterns.len()
        );
        self.approved
            .policy
            .store(Arc::new(OriginPolicy::list(patterns)));
        *seen = stored;
        Ok(())
    }
}

impl Redis {
    /// One request of `origin` (empty for none) against the per-origin limit, for every
    /// replica together: `<prefix>:origin-limit:<origin>`, the provider limit's script
    /// (one round trip). `None`: Redis cannot say, use the local limiter.
    pub async fn origin_pace(
        &self,
        origin: &str,
        per_minute: u32,
        burst: u32,
    ) -> Option<Result<(), Duration>> {
        let interval = (60_000_000 / u64::from(per_minute.max(1))).max(1);
        let key = self.key("origin-limit", origin);
        self.gcra(&key, interval, burst.max(1)).await
    }
}

/// Reads the team's list every [`REFRESH_EVERY`] while the `Redis` lives; at start, as
/// soon as Redis answers, so a new replica knows the list by the time it is ready.
pub(super) async fn refresh(redis: Weak<Redis>) {
    let mut read = false;
    loop {
        let Some(redis) = redis.upgrade() else {
            return;
        };
        if let Some(mut connection) = redis.connection() {
            match redis.refresh_origins(&mut connection).await {
                Ok(()) => read = true,
                Err(e) => redis.failed(&e),
            }
        }
        drop(redis);
        let wait = if read {
            REFRESH_EVERY
        } else {
            FIRST_READ_EVERY
        };
        tokio::time::sleep(wait).await;
    }
}

fn origins_key(prefix: &str) -> String {
    format!("{prefix}:origins")
}

/// The team's list for `protogate origins`, connecting on first use.
pub struct RedisOrigins {
    url: String,
    key: String,
    secrets: SecretStore,
    connection: OnceCell<ConnectionManager>,
}

impl RedisOrigins {
    pub fn new(url: &str, prefix: &str, secrets: &SecretStore) -> Self {
        RedisOrigins {
            url: url.to_string(),
            key: origins_key(prefix),
            secrets: secrets.clone(),
            connection: OnceCell::new(),
        }
    }

    /// Adds `origin` (already checked); `false` when it was there.
    pub async fn add(&self, origin: &str) -> Result<bool, String> {
        let added: u8 = self
            .connection()
            .await?
            .sadd(&self.key, origin)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(added == 1)
    }

    /// `false` when it was not there.
    pub async fn remove(&self, origin: &str) -> Result<bool, String> {
        let removed: u8 = self
            .connection()
            .await?
            .srem(&self.key, origin)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(removed == 1)
    }

    /// Every approved origin, sorted.
    pub async fn list(&self) -> Result<Vec<String>, String> {
        let mut list: Vec<String> = self
            .connection()
            .await?
            .smembers(&self.key)
            .await
            .map_err(|e| self.failed(&e))?;
        list.sort();
        Ok(list)
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let connection = self
            .connection
            .get_or_try_init(|| super::connect(&self.url, &self.secrets))
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(connection.clone())
    }

    /// Where Redis is and what went wrong, in plain words; never a password.
    fn failed(&self, error: &RedisError) -> String {
        format!(
            "Redis at {} did not answer ({})",
            self.url,
            error.kind_text()
        )
    }
}
