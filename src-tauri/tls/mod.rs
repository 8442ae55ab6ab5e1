//! HTTPS on loopback for Safari: the per-install CA ([`LocalCa`]) kept in the keychain,
//! the TLS acceptor the gateway serves `https://localhost` with, and the user's trust
//! stores ([`trust`]).

mod ca;
pub mod trust;

use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub use ca::{CaError, LocalCa, LEAF_DAYS};

use crate::secrets::{SecretError, SecretStore};

/// The keychain account of the CA (its certificate and key, PEM).
pub const CA_ACCOUNT: &str = "protogate-tls-ca";
/// The names the leaf certificate covers.
pub const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Why HTTPS is off, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the keychain that holds its certificate authority cannot be used: {0}")]
    Keychain(SecretError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("cannot set up TLS: {0}")]
    Rustls(String),
}

/// The CA from the keychain, if one was made.
pub async fn load(secrets: &SecretStore) -> Result<Option<LocalCa>, TlsError> {
    match secrets.get(CA_ACCOUNT).await.map_err(TlsError::Keychain)? {
        Some((secret, _)) => Ok(Some(LocalCa::from_secret(&secret)?)),
        None => Ok(None),
    }
}

/// The CA from the keychain, made and stored on first use.
pub async fn load_or_create(secrets: &SecretStore) -> Result<LocalCa, TlsError> {
    if let Some(ca) = load(secrets).await? {
        return Ok(ca);
    }
    let ca = LocalCa::generate()?;
    let store = secrets.clone();
    let secret = ca.to_secret();
    tokio::task::spawn_blocking(move || store.set_blocking(CA_ACCOUNT, &secret))
        .await
        .map_err(|e| TlsError::Keychain(SecretError::Backend(e.to_string())))?
        .map_err(TlsError::Keychain)?;
    Ok(ca)
}

/// A TLS acceptor with a fresh leaf certificate for `localhost`, `127.0.0.1` and `::1`
/// (issued at each start, so it never outlives [`LEAF_DAYS`] in practice).
pub fn acceptor(ca: &LocalCa) -> Result<TlsAcceptor, TlsError> {
    let (chain, key) = ca.issue(LOCAL_NAMES)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
