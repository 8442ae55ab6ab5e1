//! The current user's trust stores, so browsers accept `https://localhost` from
//! Protogate: on Linux the NSS databases Chromium, Chrome and Firefox read
//! ([`nss`]); on macOS the login keychain ([`macos`]); on Windows the current user's Root
//! store ([`windows`]). The system-wide store is left to the user: [`system_command`]
//! prints the one command for it. One file per platform; their command lines and names
//! are unit-tested on every platform.

use std::path::{Path, PathBuf};

pub mod macos;
#[cfg_attr(any(target_os = "windows", target_os = "macos"), allow(dead_code))]
mod nss;
pub mod windows;

/// The nickname the CA carries in NSS databases (and its common name).
pub const NICKNAME: &str = "Protogate local CA";

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Where the CA is (or would be) trusted, for `tls status`.
pub fn stores() -> Vec<PathBuf> {
    if cfg!(target_os = "windows") {
        return vec![PathBuf::from(windows::STORE)];
    }
    let Some(home) = home() else { return vec![] };
    if cfg!(target_os = "macos") {
        vec![macos::login_keychain(&home)]
    } else {
        nss::stores(&home)
    }
}

/// Whether the CA is in `store` (one of [`stores`]).
pub fn is_trusted_in(store: &Path) -> bool {
    #[cfg(target_os = "windows")]
    return {
        let _ = store;
        windows::is_trusted()
    };
    #[cfg(target_os = "macos")]
    return macos::run(&macos::find_args(store)).unwrap_or(false);
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    nss::is_trusted_in(store)
}

/// Adds the CA certificate at `cert` (PEM) to the user's stores; the stores it went into.
pub fn trust(cert: &Path) -> Result<Vec<String>, String> {
    #[cfg(target_os = "windows")]
    return {
        let text = std::fs::read_to_string(cert)
            .map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        windows::trust(&windows::der_from_pem(&text)?)?;
        Ok(vec![windows::STORE.into()])
    };
    #[cfg(target_os = "macos")]
    return {
        let keychain = macos::login_keychain(&home().unwrap_or_default());
        if macos::run(&macos::trust_args(&keychain, cert))? {
            Ok(vec![keychain.display().to_string()])
        } else {
            Err("macOS did not add the certificate (was the password prompt cancelled?)".into())
        }
    };
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    nss::trust(stores(), cert)
}

/// Removes every copy [`trust`] added; the stores it was removed from.
pub fn untrust() -> Result<Vec<String>, String> {
    #[cfg(target_os = "windows")]
    return Ok(vec![windows::STORE.to_string(); windows::untrust()?]);
    #[cfg(target_os = "macos")]
    return {
        let keychain = macos::login_keychain(&home().unwrap_or_default());
        let mut done = vec![];
        while macos::run(&macos::find_args(&keychain))? {
            if !macos::run(&macos::untrust_args(&keychain))? {
                return Err(
                    "macOS did not remove the certificate (was the prompt cancelled?)".into(),
                );
            }
            done.push(keychain.display().to_string());
        }
        Ok(done)
    };
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    nss::untrust(stores())
}

/// The one command that trusts the CA for the whole system (curl, other programs).
pub fn system_command(cert: &Path) -> String {
    if cfg!(target_os = "macos") {
        macos::system_command(cert)
    } else if cfg!(target_os = "windows") {
        windows::system_command(cert)
    } else {
        format!(
            "sudo cp {} /usr/local/share/ca-certificates/protogate-local-ca.crt && sudo update-ca-certificates",
            cert.display()
        )
    }
}
