//! Provider credentials: the OS keychain (service `protogate`, account = provider id) or,
//! for headless deployments, `PROTOGATE_SECRET_<ID>`. Values stay `SecretString` from the
//! store to the header that carries them; nothing here can print or serialize one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

/// Keychain service name shared by every Protogate entry.
pub const KEYCHAIN_SERVICE: &str = "protogate";
/// A keychain that waits for an unlock prompt nobody sees must not hang a request.
const KEYCHAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Keychain account of the gateway's own access token.
pub const ACCESS_TOKEN_ACCOUNT: &str = "protogate-access-token";

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
    format!(
        "PROTOGATE_SECRET_{}",
        id.to_ascii_uppercase().replace('-', "_")
    )
}

/// Reads secrets, environment first, and caches keychain hits: a keychain read is a
/// D-Bus round trip, far too slow for every request. A key the upstream rejects is
/// [forgotten](SecretStore::forget) so a replaced key is picked up on the next request.
#[derive(Clone, Default)]
pub struct SecretStore {
    cache: Arc<Mutex<HashMap<String, SecretString>>>,
    /// Replaces the process environment when set (embedding, tests).
    env: Option<Arc<HashMap<String, String>>>,
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

    /// A store that reads `PROTOGATE_SECRET_*` from `vars` instead of the process
    /// environment, which cannot be changed safely while other threads run.
    pub fn with_environment(vars: HashMap<String, String>) -> Self {
        SecretStore {
            env: Some(Arc::new(vars)),
            ..Self::default()
        }
    }

    fn env_value(&self, name: &str) -> Option<String> {
        match &self.env {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The secret for account `id`, or `None` when it is set nowhere.
    pub async fn get(&self, id: &str) -> Result<Option<(SecretString, SecretSource)>, SecretError> {
        if let Some(value) = self.env_value(&env_var_name(id)) {
            if !value.is_empty() {
                return Ok(Some((SecretString::from(value), SecretSource::Environment)));
            }
        }
        if let Some(hit) = self.cache.lock().expect("cache lock").get(id) {
            return Ok(Some((hit.clone(), SecretSource::Keychain)));
        }
        let account = id.to_string();
        let read = tokio::task::spawn_blocking(move || keychain_get(&account));
        let found = tokio::time::timeout(KEYCHAIN_TIMEOUT, read)
            .await
            .map_err(|_| {
                SecretError::Unavailable("it did not answer; is it waiting to be unlocked?".into())
            })?
            .map_err(|e| SecretError::Backend(e.to_string()))??;
        Ok(found.map(|secret| {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(id.to_string(), secret.clone());
            (secret, SecretSource::Keychain)
        }))
    }

    /// Where `id`'s secret stands, without exposing it.
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
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, id).map_err(map_keyring_error)?;
        entry
            .set_password(value.expose_secret())
            .map_err(map_keyring_error)?;
        self.forget(id);
        Ok(())
    }

    /// Removes `id`'s secret from the keychain; removing a missing one succeeds.
    pub fn delete_blocking(&self, id: &str) -> Result<(), SecretError> {
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, id).map_err(map_keyring_error)?;
        self.forget(id);
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    /// Drops a cached value, e.g. after the upstream refused it.
    pub fn forget(&self, id: &str) {
        self.cache.lock().expect("cache lock").remove(id);
    }
}

fn keychain_get(account: &str) -> Result<Option<SecretString>, SecretError> {
    let entry = keyring::Entry::new(KEYCHAIN_SERVICE, account).map_err(map_keyring_error)?;
    match entry.get_password() {
        Ok(value) => Ok(Some(SecretString::from(value))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(map_keyring_error(e)),
    }
}

/// Turns keyring errors into stable words; platform details may name paths, never values.
fn map_keyring_error(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(_) => SecretError::Locked,
        keyring::Error::NoDefaultStore => {
            SecretError::Unavailable("no Secret Service on this session".into())
        }
        keyring::Error::PlatformFailure(err) => SecretError::Unavailable(err.to_string()),
        // These variants carry secret bytes; never format them.
        keyring::Error::BadEncoding(_) => {
            SecretError::Backend("the stored value is not UTF-8".into())
        }
        keyring::Error::BadDataFormat(..) => {
            SecretError::Backend("the stored value has an unexpected format".into())
        }
        other => SecretError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_documented_rule() {
        assert_eq!(env_var_name("open-router"), "PROTOGATE_SECRET_OPEN_ROUTER");
        assert_eq!(env_var_name("openai"), "PROTOGATE_SECRET_OPENAI");
    }

    #[test]
    fn debug_never_shows_a_cached_secret() {
        let store = SecretStore::new();
        store
            .cache
            .lock()
            .unwrap()
            .insert("x".into(), SecretString::from("sk-hunter2"));
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
