//! The commands besides `serve`: keys in the keychain, the provider list, and a check
//! that calls every provider once. They print states and errors, never a secret.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::{load_config, SecretsCommand, ServeArgs};
use protogate::config::{Config, ProviderKind};
use protogate::providers::{AsapSigner, Registry, Upstream};
use protogate::secrets::{SecretStore, ACCESS_TOKEN_ACCOUNT, KEYCHAIN_SERVICE, LANGFUSE_ACCOUNT};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn registry(config: &Config, secrets: &SecretStore) -> Registry {
    Registry::new(
        config,
        &Upstream::new(config.limits.clone(), secrets.clone()),
    )
}

pub fn secrets(config_path: Option<PathBuf>, command: SecretsCommand) -> Result<(), String> {
    let (config, _) = load_config(config_path, &ServeArgs::default())?;
    let store = SecretStore::new().with_cache_ttl(config.keychain_cache);
    match command {
        SecretsCommand::Set { id } => {
            let kind = account_kind(&config, &id)?;
            let value = read_secret(&id)?;
            if kind == Some(ProviderKind::AsapGateway) {
                let asap = config
                    .provider(&id)
                    .and_then(|p| p.asap.clone())
                    .expect("validated");
                AsapSigner::new(asap).token(&value).map_err(|e| {
                    format!("not stored: the ASAP private key for '{id}' cannot be used: {e}")
                })?;
            }
            store
                .set_blocking(&id, &value)
                .map_err(|e| format!("not stored: {e}"))?;
            println!(
                "Stored the secret for '{id}' in the system keychain \
                 (service \"{KEYCHAIN_SERVICE}\", account \"{id}\")."
            );
            Ok(())
        }
        // Any id: the key of a provider removed from the settings must still be removable.
        SecretsCommand::Delete { id } => {
            let existed = store.delete_blocking(&id).map_err(|e| e.to_string())?;
            let reserved = id == ACCESS_TOKEN_ACCOUNT || id == LANGFUSE_ACCOUNT;
            let note = if !reserved && config.provider(&id).is_none() {
                format!(" ('{id}' is not a configured provider)")
            } else {
                String::new()
            };
            if existed {
                println!("Removed the secret for '{id}' from the system keychain{note}.");
            } else {
                println!("No secret for '{id}' in the system keychain; nothing to remove{note}.");
            }
            Ok(())
        }
        SecretsCommand::Status => runtime()?.block_on(async {
            let registry = registry(&config, &store);
            for p in registry.all() {
                let state = p.key_state(&store).await;
                println!("{:<24} {:<14} {state}", p.id(), p.kind().to_string());
            }
            if config.require_access_token {
                let state = store.status(ACCESS_TOKEN_ACCOUNT).await.describe();
                println!("{ACCESS_TOKEN_ACCOUNT:<24} {:<14} {state}", "access token");
            }
            if config.telemetry.langfuse.is_some() {
                let state = store.status(LANGFUSE_ACCOUNT).await.describe();
                println!("{LANGFUSE_ACCOUNT:<24} {:<14} {state}", "traces");
            }
            print_unused_keys(&config, &store);
            Ok(())
        }),
    }
}

/// Keys stored under Protogate's keychain service that no provider uses any more, so
/// they can be found and removed.
fn print_unused_keys(config: &Config, store: &SecretStore) {
    let accounts = match store.accounts_blocking() {
        Ok(Some(accounts)) => accounts,
        Ok(None) => return, // this keychain cannot list its entries
        Err(e) => {
            println!("(cannot list the keychain's other entries: {e})");
            return;
        }
    };
    for id in accounts {
        let reserved = id == ACCESS_TOKEN_ACCOUNT
            || id == protogate::tls::CA_ACCOUNT
            || (id == LANGFUSE_ACCOUNT && config.telemetry.langfuse.is_some())
            || id == protogate::members::MEMBERS_ACCOUNT
            || id == protogate::members::LAST_USED_ACCOUNT;
        if !reserved && config.provider(&id).is_none() {
            println!(
                "{id:<24} {:<14} set (in the keychain), used by no provider; remove it with \
                 `protogate secrets delete {id}`",
                "not configured"
            );
        }
    }
}

/// The kind of provider `id` names; `None` for the access token and the Langfuse secret
/// key. Unknown ids are refused so a typo does not store a key nobody reads.
fn account_kind(config: &Config, id: &str) -> Result<Option<ProviderKind>, String> {
    if id == ACCESS_TOKEN_ACCOUNT || id == LANGFUSE_ACCOUNT {
        return Ok(None);
    }
    match config.provider(id) {
        Some(p) if p.kind == ProviderKind::Demo => Err(format!(
            "provider '{id}' is the built-in demo and takes no key"
        )),
        Some(p) => Ok(Some(p.kind)),
        None => {
            let ids: Vec<_> = config.providers.iter().map(|p| p.id.as_str()).collect();
            Err(format!(
                "unknown provider '{id}'; configured providers: {} (or {ACCESS_TOKEN_ACCOUNT}, \
                 or {LANGFUSE_ACCOUNT} for the Langfuse secret key)",
                ids.join(", ")
            ))
        }
    }
}

/// Reads a secret from a hidden prompt, or all of stdin when it is piped (a PEM file).
fn read_secret(id: &str) -> Result<SecretString, String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Secret for '{id}' (input hidden): "))
            .map_err(|e| format!("cannot read the secret: {e}"))?
    } else {
        let mut value = String::new();
        std::io::stdin()
            .read_to_string(&mut value)
            .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
        value
    };
    let value = SecretString::from(value.trim().to_string());
    if value.expose_secret().is_empty() {
        return Err("nothing was given; the secret is read from stdin or a prompt".into());
    }
    Ok(value)
}

pub fn providers(config_path: Option<PathBuf>) -> Result<(), String> {
    let (config, _) = load_config(config_path, &ServeArgs::default())?;
    let store = SecretStore::new();
    runtime()?.block_on(async {
        for p in registry(&config, &store).all() {
            let c = p.config();
            let key = p.key_state(&store).await;
            let defaults: Vec<&str> = config.defaults_of(&c.id).iter().map(|c| c.name()).collect();
            let default = if defaults.is_empty() {
                String::new()
            } else {
                format!(" (default for {})", defaults.join(", "))
            };
            let can: Vec<&str> = c.capabilities().iter().map(|c| c.name()).collect();
            let url = c
                .base_url
                .as_ref()
                .map(|u| u.as_str())
                .unwrap_or("built in");
            println!(
                "{}{default}\n  kind {}, model {}, {url}\n  does: {}\n  key: {key}",
                c.id,
                c.kind,
                c.default_model,
                can.join(", ")
            );
        }
    });
    Ok(())
}

/// One small call per provider (see `Provider::check`); non-zero exit when any fails.
pub fn check(config_path: Option<PathBuf>) -> Result<(), String> {
    let (config, path) = load_config(config_path, &ServeArgs::default())?;
    println!("settings {}: ok", path.display());
    let store = SecretStore::new();
    let failures = runtime()?.block_on(async {
        let mut failures = 0;
        for p in registry(&config, &store).all() {
            match p.check().await {
                Ok(said) => {
                    let said: String = said.chars().take(120).collect();
                    println!("{}: ok ({})", p.id(), said.trim())
                }
                Err(e) => {
                    failures += 1;
                    println!("{}: {e}", p.id());
                }
            }
        }
        failures
    });
    match failures {
        0 => Ok(()),
        n => Err(format!("{n} provider(s) failed the check")),
    }
}
