//! The OS keychain through keyring-core: macOS Keychain, Windows Credential Manager, the
//! Secret Service on Linux. The store is opened on first use and opened again after it
//! failed (an app started at login may run before the keychain daemon is up), unlike
//! keyring's `v1` wrapper, which keeps its first failure for the life of the process.
//! Every call blocks (a D-Bus round trip on Linux): call from a blocking thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry, Error};
use secrecy::{ExposeSecret, SecretString};

use super::{SecretError, KEYCHAIN_SERVICE};

/// The platform store, once it could be opened.
static STORE: Mutex<Option<Arc<CredentialStore>>> = Mutex::new(None);

fn open_platform_store() -> Result<Arc<CredentialStore>, Error> {
    #[cfg(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ))]
    let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
    #[cfg(target_os = "macos")]
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    #[cfg(target_os = "windows")]
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
    #[cfg(not(any(unix, target_os = "windows")))]
    let store: Arc<CredentialStore> = return Err(Error::NoDefaultStore);
    Ok(store)
}

/// The open store, or a fresh attempt to open it.
fn store() -> Result<Arc<CredentialStore>, SecretError> {
    let mut slot = STORE.lock().expect("keychain store lock");
    if let Some(store) = slot.as_ref() {
        return Ok(store.clone());
    }
    let store = open_platform_store().map_err(map_error)?;
    *slot = Some(store.clone());
    Ok(store)
}

/// A failure that may mean the connection to the keychain is gone: the next call
/// opens it again.
fn reset_if_gone(e: &SecretError) {
    if matches!(e, SecretError::Unavailable(_)) {
        STORE.lock().expect("keychain store lock").take();
    }
}

fn entry(account: &str) -> Result<Entry, SecretError> {
    store()?
        .build(KEYCHAIN_SERVICE, account, None)
        .map_err(map_error)
}

fn checked<T>(result: Result<T, SecretError>) -> Result<T, SecretError> {
    if let Err(e) = &result {
        reset_if_gone(e);
    }
    result
}

/// `account`'s secret, `None` when there is none.
pub fn get(account: &str) -> Result<Option<SecretString>, SecretError> {
    checked(entry(account).and_then(|entry| match entry.get_password() {
        Ok(value) => Ok(Some(SecretString::from(value))),
        Err(Error::NoEntry) => Ok(None),
        Err(e) => Err(map_error(e)),
    }))
}

pub fn set(account: &str, value: &SecretString) -> Result<(), SecretError> {
    checked(
        entry(account)
            .and_then(|entry| entry.set_password(value.expose_secret()).map_err(map_error)),
    )
}

/// Removes `account`'s secret; whether there was one.
pub fn delete(account: &str) -> Result<bool, SecretError> {
    checked(
        entry(account).and_then(|entry| match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(Error::NoEntry) => Ok(false),
            Err(e) => Err(map_error(e)),
        }),
    )
}

/// What each store's search takes to find Protogate's entries: the Secret Service
/// matches attributes; the Windows Credential Manager takes only a regular expression
/// over target names, which it builds as `<account>.<service>`.
fn search_spec() -> HashMap<&'static str, String> {
    if cfg!(target_os = "windows") {
        HashMap::from([("pattern", windows_target_pattern(KEYCHAIN_SERVICE))])
    } else {
        HashMap::from([("service", KEYCHAIN_SERVICE.to_string())])
    }
}

/// The Credential Manager's target name for `account` (windows-native-keyring-store's
/// default delimiters), as `cmdkey /list` and Control Panel show it.
#[cfg_attr(not(test), allow(dead_code))]
pub fn windows_target_name(account: &str) -> String {
    format!("{account}.{KEYCHAIN_SERVICE}")
}

/// A regular expression matching every target name [`windows_target_name`] makes.
fn windows_target_pattern(service: &str) -> String {
    let escaped: String = service
        .chars()
        .flat_map(|c| {
            let special = !c.is_ascii_alphanumeric() && c != '_' && c != '-';
            special.then_some('\\').into_iter().chain([c])
        })
        .collect();
    format!("^.+\\.{escaped}$")
}

/// The accounts under Protogate's service, where the store can list them (the Secret
/// Service and the Credential Manager can; elsewhere this is `Ok(None)`).
pub fn accounts() -> Result<Option<Vec<String>>, SecretError> {
    let store = store()?;
    let owned = search_spec();
    let spec: HashMap<&str, &str> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let found = match store.search(&spec) {
        Ok(found) => found,
        Err(Error::NotSupportedByStore(_)) => return Ok(None),
        Err(e) => return checked(Err(map_error(e))),
    };
    let mut accounts: Vec<String> = found
        .iter()
        .filter_map(|entry| {
            // (service, account) where the store knows them (Windows), else attributes.
            if let Some((service, account)) = entry.get_specifiers() {
                return (service == KEYCHAIN_SERVICE).then_some(account);
            }
            let attributes = entry.get_attributes().ok()?;
            attributes
                .get("username")
                .or_else(|| attributes.get("user"))
                .cloned()
        })
        .collect();
    accounts.sort();
    accounts.dedup();
    Ok(Some(accounts))
}

/// Turns keyring errors into stable words; platform details may name paths, never values.
fn map_error(e: Error) -> SecretError {
    match e {
        Error::NoStorageAccess(_) => SecretError::Locked,
        Error::NoDefaultStore => {
            SecretError::Unavailable("no Secret Service on this session".into())
        }
        Error::PlatformFailure(err) => SecretError::Unavailable(err.to_string()),
        // These variants carry secret bytes; never format them.
        Error::BadEncoding(_) => SecretError::Backend("the stored value is not UTF-8".into()),
        Error::BadDataFormat(..) => {
            SecretError::Backend("the stored value has an unexpected format".into())
        }
        other => SecretError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_target_names_and_their_pattern() {
        assert_eq!(windows_target_name("openai"), "openai.protogate");
        assert_eq!(windows_target_pattern("protogate"), "^.+\\.protogate$");
        assert_eq!(windows_target_pattern("a.b"), "^.+\\.a\\.b$");
    }

    #[test]
    fn the_search_spec_is_what_this_platform_store_takes() {
        let spec = search_spec();
        if cfg!(target_os = "windows") {
            assert_eq!(spec["pattern"], "^.+\\.protogate$");
        } else {
            assert_eq!(spec["service"], KEYCHAIN_SERVICE);
        }
    }
}
