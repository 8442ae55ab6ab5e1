//! The current user's trust stores, so browsers accept `https://localhost` from
//! Protogate: on Linux the NSS databases Chromium, Chrome and Firefox read (with
//! `certutil` from `libnss3-tools`); on macOS the login keychain (`security`); on Windows
//! the current user's Root store (`certutil -user`). The system-wide store is left to the
//! user: [`system_command`] prints the one command for it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The nickname the CA carries in NSS databases.
pub const NICKNAME: &str = "Protogate local CA";

/// Where the CA is (or would be) trusted, for `tls status`.
pub fn stores() -> Vec<PathBuf> {
    let Some(home) = home() else { return vec![] };
    let mut stores = vec![home.join(".pki/nssdb")];
    let firefox = home.join(".mozilla/firefox");
    if let Ok(profiles) = std::fs::read_dir(firefox) {
        for profile in profiles.flatten() {
            if profile.path().join("cert9.db").exists() {
                stores.push(profile.path());
            }
        }
    }
    stores
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn certutil(args: &[&str]) -> Result<std::process::Output, String> {
    Command::new("certutil").args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "`certutil` is missing: install it (Debian/Ubuntu: sudo apt install libnss3-tools)"
                .into()
        } else {
            format!("cannot run certutil: {e}")
        }
    })
}

fn db(path: &Path) -> String {
    format!("sql:{}", path.display())
}

/// Whether the CA is in the NSS database at `store`.
pub fn is_trusted_in(store: &Path) -> bool {
    certutil(&["-L", "-d", &db(store), "-n", NICKNAME])
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// Adds the CA certificate at `cert` to the user's stores; the stores it went into.
pub fn trust(cert: &Path) -> Result<Vec<String>, String> {
    if cfg!(target_os = "macos") {
        let keychain = home()
            .unwrap_or_default()
            .join("Library/Keychains/login.keychain-db");
        let status = Command::new("security")
            .args(["add-trusted-cert", "-r", "trustRoot", "-k"])
            .arg(&keychain)
            .arg(cert)
            .status()
            .map_err(|e| format!("cannot run security: {e}"))?;
        return if status.success() {
            Ok(vec![keychain.display().to_string()])
        } else {
            Err("macOS did not add the certificate (was the password prompt cancelled?)".into())
        };
    }
    if cfg!(target_os = "windows") {
        let cert = cert.display().to_string();
        let status = Command::new("certutil")
            .args(["-user", "-addstore", "Root", &cert])
            .status()
            .map_err(|e| format!("cannot run certutil: {e}"))?;
        return if status.success() {
            Ok(vec!["the current user's Root store".into()])
        } else {
            Err("Windows did not add the certificate (was the prompt declined?)".into())
        };
    }
    let mut done = vec![];
    for store in stores() {
        if !store.join("cert9.db").exists() {
            std::fs::create_dir_all(&store)
                .map_err(|e| format!("cannot create {}: {e}", store.display()))?;
            let out = certutil(&["-N", "-d", &db(&store), "--empty-password"])?;
            if !out.status.success() {
                return Err(format!(
                    "cannot create the NSS database {}",
                    store.display()
                ));
            }
        }
        let cert = cert.display().to_string();
        let out = certutil(&[
            "-A",
            "-d",
            &db(&store),
            "-t",
            "C,,",
            "-n",
            NICKNAME,
            "-i",
            &cert,
        ])?;
        if !out.status.success() {
            return Err(format!(
                "certutil could not add the CA to {}: {}",
                store.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        done.push(store.display().to_string());
    }
    Ok(done)
}

/// Removes every copy [`trust`] added; the stores it was removed from.
pub fn untrust() -> Result<Vec<String>, String> {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return Err(format!(
            "remove “{NICKNAME}” in Keychain Access (macOS) or certmgr.msc (Windows)"
        ));
    }
    let mut done = vec![];
    for store in stores() {
        while is_trusted_in(&store) {
            certutil(&["-D", "-d", &db(&store), "-n", NICKNAME])?;
            done.push(store.display().to_string());
        }
    }
    Ok(done)
}

/// The one command that trusts the CA for the whole system (curl, other programs).
pub fn system_command(cert: &Path) -> String {
    if cfg!(target_os = "macos") {
        format!("sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {}", cert.display())
    } else if cfg!(target_os = "windows") {
        format!("certutil -addstore Root {}", cert.display())
    } else {
        format!(
            "sudo cp {} /usr/local/share/ca-certificates/protogate-local-ca.crt && sudo update-ca-certificates",
            cert.display()
        )
    }
}
