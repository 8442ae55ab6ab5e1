//! `protogate tls`: the local certificate authority behind `https://localhost`.

use std::path::{Path, PathBuf};

use super::{load_config, ServeArgs, TlsCommand};
use protogate::secrets::SecretStore;
use protogate::tls::{self, trust};

pub fn run(config_path: Option<PathBuf>, command: TlsCommand) -> Result<(), String> {
    let (config, _) = load_config(config_path, &ServeArgs::default())?;
    let secrets = SecretStore::new().with_cache_ttl(config.keychain_cache);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        match command {
            TlsCommand::Status => {
                let Some(ca) = tls::load(&secrets).await.map_err(|e| e.to_string())? else {
                    println!("No local CA yet: it is made on the first start with HTTPS on, or by `protogate tls trust`.");
                    return Ok(());
                };
                println!("Local CA: {} (name-constrained to localhost, 127.0.0.0/8, ::1)", trust::NICKNAME);
                println!("SHA-256 fingerprint: {}", ca.fingerprint());
                let trusted: Vec<String> = trust::stores()
                    .into_iter()
                    .filter(|s| trust::is_trusted_in(s))
                    .map(|s| s.display().to_string())
                    .collect();
                if trusted.is_empty() {
                    println!("Trusted in: no store of this user yet (run `protogate tls trust`)");
                } else {
                    println!("Trusted in: {}", trusted.join(", "));
                }
                Ok(())
            }
            TlsCommand::Export { path } => {
                let ca = tls::load_or_create(&secrets).await.map_err(|e| e.to_string())?;
                write(&path, ca.cert_pem())?;
                println!("Wrote the CA certificate (public, no key) to {}", path.display());
                Ok(())
            }
            TlsCommand::Trust => {
                let ca = tls::load_or_create(&secrets).await.map_err(|e| e.to_string())?;
                let file = tempfile::Builder::new()
                    .suffix(".pem")
                    .tempfile()
                    .map_err(|e| format!("cannot write a temporary file: {e}"))?;
                write(file.path(), ca.cert_pem())?;
                let stores = trust::trust(file.path())?;
                println!("Trusted “{}” for this user in: {}", trust::NICKNAME, stores.join(", "));
                println!("Restart the browser. For the whole system (curl and others), run:");
                let kept = std::env::temp_dir().join("protogate-local-ca.pem");
                write(&kept, ca.cert_pem())?;
                println!("  {}", trust::system_command(&kept));
                Ok(())
            }
            TlsCommand::Untrust => {
                let stores = trust::untrust()?;
                if stores.is_empty() {
                    println!("The local CA was in none of this user's stores.");
                } else {
                    println!("Removed the local CA from: {}", stores.join(", "));
                }
                Ok(())
            }
        }
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
