//! macOS: the login keychain, through `security`. The command lines are built here as
//! plain data so that every platform's unit tests check them; only macOS runs them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::NICKNAME;

/// The user's login keychain.
pub fn login_keychain(home: &Path) -> PathBuf {
    home.join("Library/Keychains/login.keychain-db")
}

fn args(parts: &[&str], keychain: &Path, cert: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = parts.iter().map(OsString::from).collect();
    args.push(keychain.into());
    if let Some(cert) = cert {
        args.push(cert.into());
    }
    args
}

/// `security add-trusted-cert`: trusted as a root for this user (macOS asks for the
/// login password), in the login keychain.
pub fn trust_args(keychain: &Path, cert: &Path) -> Vec<OsString> {
    args(
        &["add-trusted-cert", "-r", "trustRoot", "-k"],
        keychain,
        Some(cert),
    )
}

/// `security find-certificate`: succeeds when the CA is in `keychain`.
pub fn find_args(keychain: &Path) -> Vec<OsString> {
    args(&["find-certificate", "-c", NICKNAME], keychain, None)
}

/// `security delete-certificate -t`: removes the CA and this user's trust settings for it.
pub fn untrust_args(keychain: &Path) -> Vec<OsString> {
    args(
        &["delete-certificate", "-c", NICKNAME, "-t"],
        keychain,
        None,
    )
}

/// The command that trusts the CA for the whole system (an administrator's password).
pub fn system_command(cert: &Path) -> String {
    format!(
        "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {}",
        cert.display()
    )
}

#[cfg(target_os = "macos")]
pub fn run(args: &[OsString]) -> Result<bool, String> {
    std::process::Command::new("/usr/bin/security")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|status| status.success())
        .map_err(|e| format!("cannot run security: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn the_security_command_lines() {
        let keychain = login_keychain(Path::new("/Users/ana"));
        assert_eq!(
            keychain,
            Path::new("/Users/ana/Library/Keychains/login.keychain-db")
        );
        let cert = Path::new("/tmp/ca.pem");
        assert_eq!(
            strings(trust_args(&keychain, cert)),
            [
                "add-trusted-cert",
                "-r",
                "trustRoot",
                "-k",
                "/Users/ana/Library/Keychains/login.keychain-db",
                "/tmp/ca.pem"
            ]
        );
        assert_eq!(
            strings(find_args(&keychain)),
            [
                "find-certificate",
                "-c",
                NICKNAME,
                "/Users/ana/Library/Keychains/login.keychain-db"
            ]
        );
        assert_eq!(
            strings(untrust_args(&keychain)),
            [
                "delete-certificate",
                "-c",
                NICKNAME,
                "-t",
                "/Users/ana/Library/Keychains/login.keychain-db"
            ]
        );
        assert!(system_command(cert).ends_with("System.keychain /tmp/ca.pem"));
    }
}
