//! Provider credentials: the OS keychain (service `protogate`, account = provider id) or,
//! for headless deployments, `PROTOGATE_SECRET_<ID>`. Values stay `SecretString` from the
//! store to the header that carries them; nothing here can print or serialize one.

mod keychain;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;

/// Keychain service name shared by every Protogate entry.
pub const KEYCHAIN_SERVICE: &str = "protogate";
/// A keychain that waits for an unlock prompt nobody sees must not hang a request.
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Keychain account of the gateway's own access token.
pub const ACCESS_TOKEN_ACCOUNT: &str = "protogate-access-token";
/// Keychain account of the Langfuse secret key (`telemetry.langfuse`).
pub const LANGFUSE_ACCOUNT: &str = "langfuse";

/// Why a secret could not be read. Messages are stable and never carry the value.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the system keychain is not available ({0})")]
    Unavailable(String),
    #[error("the system keychain is locked")]
    Locked,
    #[error("the system keychain failed: {0}")]
    Backend(String),
}

/// Where a secret was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Environment,
    Keychain,
}

/// Where a secret stands, for `protogate secrets status` and `/health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretStatus {
    Environment,
    Keychain,
    Missing,
    Unreadable(SecretError),
}

impl SecretStatus {
    /// Plain words; never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretStatus::Environment => "set (from the environment)".into(),
            SecretStatus::Keychain => "set (in the keychain)".into(),
            SecretStatus::Missing => "missing".into(),
            SecretStatus::Unreadable(e) => format!("unreadable: {e}"),
        }
    }
}

/// The environment variable that may carry `id`'s secret: `PROTOGATE_SECRET_<ID>`,
/// upper-cased, `-` as `_`.
pub fn env_var_name(id: &str) -> String {
    // Built by hand: it is looked up on every forwarded request.
    const PREFIX: &str = "PROTOGATE_SECRET_";
    let mut name = String::with_capacity(PREFIX.len() + id.len());
    name.push_str(PREFIX);
    name.extend(id.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    name
}

/// How long a keychain answer (a key, "none", or a failure) is trusted by default: short
/// enough that a key deleted in Seahorse or Keychain Access stops being used within
/// seconds, long enough that requests do not each wait on D-Bus.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// Reads secrets, environment first, then the keychain through a short-lived cache.
///
/// Every keychain answer (hit, miss, or failure) is kept for the time-to-live, so a
/// locked keychain costs one prompt, not one per request. One read per account is in
/// flight at a time: callers wait for it, and a read that timed out is awaited again
/// rather than started anew, so stuck reads cannot pile up in the blocking pool.
/// Setting or deleting a secret through this store drops its cached answer at once;
/// so does a key the upstream rejects ([`SecretStore::forget`]).
#[derive(Clone)]
pub struct SecretStore {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    accounts: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Replaces the process environment when set (embedding, tests).
    env: Option<HashMap<String, String>>,
}

type Answer = Result<Option<SecretString>, SecretError>;

/// One account's last keychain answer, and the read that may still be running.
#[derive(Default)]
struct Slot {
    answer: Option<(Answer, Instant)>,
    in_flight: Option<tokio::task::JoinHandle<Answer>>,
}

impl Default for SecretStore {
    fn default() -> Self {
        Self::build(DEFAULT_CACHE_TTL, None)
    }
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStore(<redacted>)")
    }
}

impl SecretStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn build(ttl: Duration, env: Option<HashMap<String, String>>) -> Self {
        SecretStore {
            inner: Arc::new(Inner {
                ttl,
                accounts: Mutex::default(),
                env,
            }),
        }
    }

    /// A store that reads `PROTOGATE_SECRET_*` from `vars` instead of the process
    /// environment, which cannot be changed safely while other threads run.
    pub fn with_environment(vars: HashMap<String, String>) -> Self {
        Self::build(DEFAULT_CACHE_TTL, Some(vars))
    }

    /// The same store, with keychain answers kept for `ttl` (`keychain_cache_ms`).
    #[must_use]
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        Self::build(ttl, self.inner.env.clone())
    }

    fn env_value(&self, name: &str) -> Option<String> {
        match &self.inner.env {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut accounts = self.inner.accounts.lock().expect("secret cache lock");
        if let Some(slot) = accounts.get(id) {
            return Arc::clone(slot);
        }
        accounts.entry(id.to_string()).or_default().clone()
    }

    /// The secret for account `id`, or `None` when it is set nowhere.
    pub async fn get(&self, id: &str) -> Result<Option<(SecretString, SecretSource)>, SecretError> {
        if let Some(value) = self.env_value(&env_var_name(id)) {
            if !value.is_empty() {
                return Ok(Some((SecretString::from(value), SecretSource::Environment)));
            }
        }
        let answer = self.keychain_answer(id).await?;
        Ok(answer.map(|secret| (secret, SecretSource::Keychain)))
    }

    async fn keychain_answer(&self, id: &str) -> Answer {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        if let Some((answer, at)) = &slot.answer {
            if at.elapsed() < self.inner.ttl {
                return answer.clone();
            }
        }
        let mut read = match slot.in_flight.take() {
            Some(read) => read,
            None => {
                let account = id.to_string();
                tokio::task::spawn_blocking(move || keychain::get(&account))
            }
        };
        let answer = match tokio::time::timeout(KEYCHAIN_TIMEOUT, &mut read).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(join)) => Err(SecretError::Backend(join.to_string())),
            Err(_) => {
                slot.in_flight = Some(read);
                Err(SecretError::Unavailable(
                    "it did not answer; is it waiting to be unlocked?".into(),
                ))
            }
        };
        slot.answer = Some((answer.clone(), Instant::now()));
        answer
    }

    /// Where `id`'s secret stands, without exposing it; true within the time-to-live.
    pub async fn status(&self, id: &str) -> SecretStatus {
        match self.get(id).await {
            Ok(Some((_, SecretSource::Environment))) => SecretStatus::Environment,
            Ok(Some((_, SecretSource::Keychain))) => SecretStatus::Keychain,
            Ok(None) => SecretStatus::Missing,
            Err(e) => SecretStatus::Unreadable(e),
        }
    }

    /// Stores `value` as `id`'s secret in the keychain, replacing any earlier one.
    /// Blocking: a D-Bus round trip on Linux.
    pub fn set_blocking(&self, id: &str, value: &SecretString) -> Result<(), SecretError> {
        let result = keychain::set(id, value);
        self.forget(id);
        result
    }

    /// Removes `id`'s secret from the keychain and says whether there was one;
    /// removing a missing one succeeds. Blocking.
    pub fn delete_blocking(&self, id: &str) -> Result<bool, SecretError> {
        let result = keychain::delete(id);
        self.forget(id);
        result
    }

    /// Every account under Protogate's keychain service, where the keychain can list
    /// them (`None` where it cannot). Blocking.
    pub fn accounts_blocking(&self) -> Result<Option<Vec<String>>, SecretError> {
        keychain::accounts()
    }

    /// Drops `id`'s cached answer (e.g. the upstream refused the key), so the next
    /// request reads the keychain again.
    pub fn forget(&self, id: &str) {
        let mut accounts = self.inner.accounts.lock().expect("secret cache lock");
        accounts.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn env_names_follow_the_documented_rule() {
        assert_eq!(env_var_name("open-router"), "PROTOGATE_SECRET_OPEN_ROUTER");
        assert_eq!(env_var_name("openai"), "PROTOGATE_SECRET_OPENAI");
    }

    #[tokio::test]
    async fn debug_never_shows_a_cached_secret() {
        let store = SecretStore::new();
        let slot = store.slot("x");
        slot.lock().await.answer =
            Some((Ok(Some(SecretString::from("sk-hunter2"))), Instant::now()));
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_cached_answer_is_used_within_its_time_to_live_and_forgotten_on_demand() {
        let store = SecretStore::new().with_cache_ttl(Duration::from_secs(60));
        let slot = store.slot("acct");
        slot.lock().await.answer = Some((Ok(Some(SecretString::from("k1"))), Instant::now()));
        let (got, source) = store.get("acct").await.unwrap().expect("cached");
        assert_eq!(
            (got.expose_secret(), source),
            ("k1", SecretSource::Keychain)
        );
        store.forget("acct");
        assert!(
            store.inner.accounts.lock().unwrap().get("acct").is_none(),
            "a forgotten account is read again next time"
        );
    }
}
