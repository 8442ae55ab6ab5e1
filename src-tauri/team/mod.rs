//! Team mode's shared state: several gateway replicas agree through one Redis (or
//! Valkey). Chosen once at start from the settings' `redis` section; without it nothing
//! here runs and every limit stays in this process.
//!
//! - [`Redis`]: the connection, whether Redis answers, and since when it has not.
//! - `limit.rs`: a provider's pace decided by Redis for all replicas together.
//! - [`RedisMembers`]: the member list every replica and `protogate members` share.
//! - [`RedisOrigins`]: origins approved for the team, read back by every replica.
//!
//! Redis going away never stops chat: the hot path asks [`Redis::connection`], which says
//! "not now" at the cost of an atomic load while Redis is down, and callers fall back to
//! their local state. A probe a second notices Redis coming back.

mod limit;
mod members;
mod origins;
pub mod threads;

pub use members::RedisMembers;
pub use origins::{RedisOrigins, REFRESH_EVERY as ORIGINS_REFRESH_EVERY};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisError};

use crate::config::RedisSection;
use crate::secrets::SecretStore;

/// The environment variable with Redis's password (else the keychain's account below).
pub const PASSWORD_ENV: &str = "PROTOGATE_REDIS_PASSWORD";
/// The keychain account with Redis's password (also `PROTOGATE_SECRET_REDIS_PASSWORD`).
pub const PASSWORD_ACCOUNT: &str = "redis-password";
/// How often Redis is asked whether it is there.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Longest a connection or a command may take before Redis counts as unreachable.
const TIMEOUT: Duration = Duration::from_millis(500);

/// One Redis for this process's lifetime, shared by every settings reload.
pub struct Redis {
    url: String,
    prefix: String,
    connection: ArcSwapOption<ConnectionManager>,
    up: AtomicBool,
    /// When the current outage began, for `/health`.
    down_since: Mutex<Option<SystemTime>>,
    /// Origins approved for the team, as last read (see `origins.rs`).
    approved: origins::Approved,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.url)
            .field("health", &self.health())
            .finish()
    }
}

/// The process's Redis, by settings: the same one across reloads that keep the section.
static SHARED: Mutex<Option<(RedisSection, Arc<Redis>)>> = Mutex::new(None);

impl Redis {
    /// The Redis these settings ask for, connecting in the background; `None` without a
    /// `redis` section, or outside a Tokio runtime (never the case in `serve`).
    pub fn shared(section: &RedisSection, secrets: &SecretStore) -> Option<Arc<Redis>> {
        let url = section.url.clone()?;
        let mut shared = SHARED.lock().expect("redis handle lock");
        if let Some((known, redis)) = shared.as_ref() {
            if known == section {
                return Some(redis.clone());
            }
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let redis = Arc::new(Redis {
            url,
            prefix: section.key_prefix.clone(),
            connection: ArcSwapOption::empty(),
            up: AtomicBool::new(false),
            down_since: Mutex::new(Some(SystemTime::now())),
            approved: Default::default(),
        });
        runtime.spawn(probe(Arc::downgrade(&redis), secrets.clone()));
        runtime.spawn(origins::refresh(Arc::downgrade(&redis)));
        *shared = Some((section.clone(), redis.clone()));
        Some(redis)
    }

    /// A key under the settings' prefix: `<prefix>:<kind>:<name>`.
    pub fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// The connection while Redis answers; `None` during an outage (use local state).
    pub fn connection(&self) -> Option<ConnectionManager> {
        if !self.up.load(Ordering::Acquire) {
            return None;
        }
        self.connection.load_full().map(|c| (*c).clone())
    }

    /// A command failed: Redis is down until the probe hears from it. Logged once per
    /// outage.
    pub fn failed(&self, error: &RedisError) {
        if self.up.swap(false, Ordering::AcqRel) {
            *self.down_since.lock().expect("redis state lock") = Some(SystemTime::now());
            tracing::warn!(
                "Redis at {} is unreachable ({}); using this replica's own limits until it \
                 returns",
                self.url,
                error.kind_text()
            );
        }
    }

    /// `"ok"`, or `"unreachable since 2026-12-07T18:30:29Z"`, for `/health`.
    pub fn health(&self) -> String {
        match *self.down_since.lock().expect("redis state lock") {
            None => "ok".into(),
            Some(at) => {
                let at = time::OffsetDateTime::from(at)
                    .replace_nanosecond(0)
                    .unwrap_or_else(|_| time::OffsetDateTime::from(at));
                let at = at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                format!("unreachable since {at}")
            }
        }
    }

    /// Why this replica should get no traffic, for `/readyz`: Redis does not answer.
    /// No address, as the probe answers anyone.
    pub fn not_ready(&self) -> Option<String> {
        let health = self.health();
        (health != "ok").then(|| format!("Redis does not answer ({health})"))
    }

    fn recovered(&self) {
        *self.down_since.lock().expect("redis state lock") = None;
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!("Redis at {} answers; limits are shared again", self.url);
        }
    }
}

/// Connects, then pings every second while the `Redis` lives: an outage ends here.
async fn probe(redis: std::sync::Weak<Redis>, secrets: SecretStore) {
    let mut first = true;
    loop {
        let Some(redis) = redis.upgrade() else {
            return;
        };
        let answered = match redis.connection.load_full() {
            Some(c) => ping(&mut (*c).clone()).await,
            None => false,
        };
        if answered {
            redis.recovered();
        } else {
            match connect(&redis.url, &secrets).await {
                Ok(c) => {
                    redis.connection.store(Some(Arc::new(c)));
                    redis.recovered();
                }
                Err(e) if first || redis.up.load(Ordering::Acquire) => {
                    redis.failed_to_connect(&e);
                }
                Err(_) => {}
            }
        }
        first = false;
        drop(redis);
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

impl Redis {
    fn failed_to_connect(&self, error: &RedisError) {
        self.up.store(true, Ordering::Release);
        self.failed(error);
    }
}

async fn ping(connection: &mut ConnectionManager) -> bool {
    redis::cmd("PING")
        .query_async::<String>(connection)
        .await
        .is_ok()
}

/// A connection that reconnects by itself, with the password from the environment or
/// the keychain.
async fn connect(url: &str, secrets: &SecretStore) -> Result<ConnectionManager, RedisError> {
    let mut info = url.into_connection_info()?;
    if let Some(password) = password(secrets).await {
        info.redis.password = Some(password);
    }
    let client = redis::Client::open(info)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(TIMEOUT)
        .set_response_timeout(TIMEOUT)
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config).await
}

async fn password(secrets: &SecretStore) -> Option<String> {
    use secrecy::ExposeSecret;
    if let Ok(value) = std::env::var(PASSWORD_ENV) {
        if !value.is_empty() {
            return Some(value);
        }
    }
    let (secret, _) = secrets.get(PASSWORD_ACCOUNT).await.ok()??;
    Some(secret.expose_secret().to_string())
}

/// A short name for what went wrong, never the command or its arguments.
trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for RedisError {
    fn kind_text(&self) -> String {
        if self.is_connection_refusal() {
            "connection refused".into()
        } else if self.is_timeout() {
            "no answer in time".into()
        } else if self.is_connection_dropped() {
            "connection closed".into()
        } else {
            format!("{:?}", self.kind())
        }
    }
}
