//! Linux: the NSS databases Chromium, Chrome and Firefox read, through `certutil` from
//! `libnss3-tools`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::NICKNAME;

/// The user's NSS databases: Chromium's shared one and every Firefox profile's.
pub fn stores(home: &Path) -> Vec<PathBuf> {
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

/// Adds the CA at `cert` to every store in `stores`, creating a missing database.
pub fn trust(stores: Vec<PathBuf>, cert: &Path) -> Result<Vec<String>, String> {
    let mut done = vec![];
    for store in stores {
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

/// Removes every copy of the CA from `stores`.
pub fn untrust(stores: Vec<PathBuf>) -> Result<Vec<String>, String> {
    let mut done = vec![];
    for store in stores {
        while is_trusted_in(&store) {
            certutil(&["-D", "-d", &db(&store), "-n", NICKNAME])?;
            done.push(store.display().to_string());
        }
    }
    Ok(done)
}
